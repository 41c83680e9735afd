"""Property: for any bytes, the validator returns a report, and it never calls an archive valid
whose members differ from what ``tarfile`` (non-stream mode, the reference reader) reads."""

from __future__ import annotations

import hashlib
import io
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.validation.archive import scan_archive
from chalicelib.domain.validation.limits import ArchiveLimits
from testkit.tarballs import gz, pack, single_python_repo, tar_bytes, validate_bytes

FILES = {**single_python_repo(), "simple/1/" + "long" * 40 + ".txt": b"pax long name\n", "simple/labels.txt": b"a\nb\n"}
TAR = tar_bytes(FILES)
TAR_GNU = tar_bytes(FILES, tarfile.GNU_FORMAT)
GZ = pack(FILES)
EXTRA = tar_bytes({"simple/1/evil.py": b"import os\n"})


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "splice", "append", "delete", "zero"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            piece = draw(st.sampled_from([EXTRA, EXTRA[:512], gz(EXTRA), bytes(512), draw(st.binary(max_size=64))]))
            data[pos:pos] = piece
        elif op == "append":
            data += draw(st.sampled_from([EXTRA, gz(EXTRA), b"\x00" * 1024, draw(st.binary(min_size=1, max_size=64))]))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 600))]
        elif op == "zero":
            data[pos : pos + 512] = bytes(len(data[pos : pos + 512]))
    return bytes(data)


def _reference_members(data: bytes) -> dict[str, tuple[str, int, str | None]]:
    members: dict[str, tuple[str, int, str | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            path = "/".join(p for p in member.name.split("/") if p not in ("", "."))
            if not path:
                continue
            digest = None
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                digest = hashlib.sha256(handle.read()).hexdigest()
            assert path not in members, f"duplicate {path} in an archive called valid"
            members[path] = (
                "dir" if member.isdir() else "file" if member.isfile() else member.type.decode(),
                member.size if member.isfile() else 0,
                digest,
            )
    return members


def _check(data: bytes) -> None:
    report = validate_bytes(data)  # must not raise, whatever the bytes
    assert report.findings or report.valid
    if not report.valid:
        return
    scan = scan_archive(io.BytesIO(data), ArchiveLimits())
    ours = {p: (m.kind, m.size if m.kind == "file" else 0, m.sha256) for p, m in scan.members.items()}
    assert ours == _reference_members(data)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(mutated(GZ))
def test_mutated_compressed_bytes(data: bytes) -> None:
    _check(data)


@SETTINGS
@given(st.one_of(mutated(TAR), mutated(TAR_GNU)))
def test_mutated_tar_bytes_recompressed(data: bytes) -> None:
    _check(gz(data))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    validate_bytes(data)
    validate_bytes(b"\x1f\x8b\x08\x00" + data)


def test_the_unmutated_archives_are_valid_and_agree_with_tarfile() -> None:
    for data in (GZ, gz(TAR_GNU)):
        assert validate_bytes(data).valid
        _check(data)
