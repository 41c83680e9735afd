"""Archive safety: every hostile or broken tarball gets its specific finding, never an exception."""

from __future__ import annotations

import hashlib
import io
import tarfile
import tracemalloc
import zlib

import pytest

from chalicelib.domain.validation.limits import ArchiveLimits
from testkit.tarballs import codes, gz, info, pack, raw_tar, single_python_repo, tar_bytes, validate_bytes

MODEL_PY = single_python_repo()["simple/1/model.py"]
assert MODEL_PY is not None


def repo_with(*entries: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]) -> bytes:
    """The valid single-model repo followed by hand-made entries."""
    base = [
        (info(name), data) if data is not None else info(name, tarfile.DIRTYPE)
        for name, data in single_python_repo().items()
    ]
    return gz(raw_tar([*base, *entries]))


def test_the_base_repository_is_valid() -> None:
    report = validate_bytes(repo_with())
    assert report.valid, report.findings


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ((info("../evil.py"), b"x"), "MEMBER_PATH_TRAVERSAL"),
        ((info("simple/1/../../../evil.py"), b"x"), "MEMBER_PATH_TRAVERSAL"),
        ((info("/etc/cron.d/evil"), b"x"), "MEMBER_PATH_ABSOLUTE"),
        ((info("simple\\1\\evil.py"), b"x"), "MEMBER_PATH_INVALID"),
        (info("simple/1/labels.txt", tarfile.SYMTYPE, "/etc/passwd"), "MEMBER_SYMLINK"),
        (info("simple/1/labels.txt", tarfile.LNKTYPE, "simple/1/model.py"), "MEMBER_HARDLINK"),
        (info("simple/1/tty", tarfile.CHRTYPE), "MEMBER_DEVICE"),
        (info("simple/1/disk", tarfile.BLKTYPE), "MEMBER_DEVICE"),
        (info("simple/1/pipe", tarfile.FIFOTYPE), "MEMBER_FIFO"),
        ((info("simple/1/contiguous", tarfile.CONTTYPE), b"x"), "MEMBER_TYPE_UNSUPPORTED"),
        ((info("simple/1/model.py"), b"print('shadow')"), "MEMBER_DUPLICATE"),
        ((info("simple/1/model.py/inner"), b"x"), "MEMBER_DUPLICATE"),
        (info("simple/1/model.py", tarfile.DIRTYPE), "MEMBER_DUPLICATE"),
    ],
)
def test_hostile_members_are_rejected(entry: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes], code: str) -> None:
    # GIVEN a valid repository with one hostile member appended
    # WHEN it is validated
    report = validate_bytes(repo_with(entry))
    # THEN it is invalid with that member's specific finding
    assert not report.valid
    assert code in codes(report)


def test_a_file_later_used_as_a_directory_is_a_duplicate() -> None:
    report = validate_bytes(gz(raw_tar([(info("a"), b"x"), (info("a/b"), b"y")])))
    assert "MEMBER_DUPLICATE" in codes(report)


def test_second_gzip_member_hiding_a_member_is_rejected() -> None:
    # GIVEN a valid tarball followed by a second gzip stream carrying another member
    hidden = gz(tar_bytes({"simple/1/evil.py": b"import os; os.system('id')"}))
    data = pack(single_python_repo()) + hidden
    # THEN tarfile's stream mode would not even see the member, and we refuse the file
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as stream:
        assert "simple/1/evil.py" not in [m.name for m in stream]
    report = validate_bytes(data)
    assert codes(report) >= {"ARCHIVE_MULTIPLE_GZIP_MEMBERS"}
    assert not report.valid


def test_trailing_bytes_after_the_gzip_stream_are_rejected() -> None:
    report = validate_bytes(pack(single_python_repo()) + b"appended garbage")
    assert "ARCHIVE_TRAILING_BYTES" in codes(report)


def test_members_after_the_tar_end_marker_are_rejected() -> None:
    # GIVEN two tar streams concatenated: tarfile stops at the first end marker
    data = gz(tar_bytes(single_python_repo()) + tar_bytes({"simple/1/evil.py": b"x"}))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert "simple/1/evil.py" not in tar.getnames()
    # THEN the hidden member is an error, not silently ignored
    assert "TAR_DATA_AFTER_END" in codes(validate_bytes(data))


@pytest.mark.parametrize("cut", [10, 100, 0.5, -9, -1])
def test_truncated_archives_are_a_finding(cut: float) -> None:
    data = pack(single_python_repo())
    end = int(len(data) * cut) if isinstance(cut, float) else cut
    report = validate_bytes(data[:end])
    assert not report.valid
    assert codes(report) & {"ARCHIVE_TRUNCATED", "ARCHIVE_CORRUPT"}


def test_truncated_tar_inside_complete_gzip_is_a_finding() -> None:
    tar = tar_bytes(single_python_repo())
    report = validate_bytes(gz(tar[:700]))  # cut inside the first member's data
    assert "ARCHIVE_TRUNCATED" in codes(report)


def test_not_gzip_empty_and_corrupt_are_findings() -> None:
    assert "ARCHIVE_NOT_GZIP" in codes(validate_bytes(tar_bytes(single_python_repo())))
    assert "ARCHIVE_EMPTY" in codes(validate_bytes(b""))
    assert "ARCHIVE_NOT_GZIP" in codes(validate_bytes(b"\x1f"))
    assert "ARCHIVE_CORRUPT" in codes(validate_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4))


def test_a_flipped_byte_breaks_the_checksum() -> None:
    data = bytearray(pack(single_python_repo()))
    data[-6] ^= 0xFF  # inside the CRC32 trailer
    assert "ARCHIVE_CORRUPT" in codes(validate_bytes(bytes(data)))


def test_bad_tar_header_checksum_is_rejected() -> None:
    tar = bytearray(tar_bytes(single_python_repo()))
    tar[0] ^= 0x01  # first header's name changes, its checksum no longer matches
    assert "TAR_HEADER_INVALID" in codes(validate_bytes(gz(bytes(tar))))


def test_member_count_size_and_total_are_bounded() -> None:
    data = pack(single_python_repo())
    assert "LIMIT_MEMBER_COUNT" in codes(validate_bytes(data, limits=ArchiveLimits(max_members=2)))
    assert "LIMIT_MEMBER_SIZE" in codes(validate_bytes(data, limits=ArchiveLimits(max_member_bytes=16)))
    assert "LIMIT_TOTAL_SIZE" in codes(validate_bytes(data, limits=ArchiveLimits(max_total_bytes=300)))


def test_an_oversized_pax_header_is_refused_before_it_is_buffered() -> None:
    long_name = "simple/1/" + "x" * 5000
    data = gz(raw_tar([(info(long_name), b"x")]))
    report = validate_bytes(data, limits=ArchiveLimits(max_tar_metadata_bytes=1024))
    assert "LIMIT_MEMBER_SIZE" in codes(report)


def _bomb(uncompressed: int) -> bytes:
    """A tarball whose one member is ``uncompressed`` zero bytes (about 1000:1 compression)."""
    header = tarfile.TarInfo("simple/1/weights.bin")
    header.size = uncompressed
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(header.tobuf(tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 24)
    for _ in range(uncompressed // len(chunk)):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return b"".join(parts)


def test_a_gzip_bomb_stops_early_in_bounded_memory() -> None:
    # GIVEN 1 GiB of zeros compressed to about 1 MB
    bomb = _bomb(1 << 30)
    # WHEN it is validated
    tracemalloc.start()
    report = validate_bytes(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # THEN the ratio bound trips after a few MB of output, reading a fraction of the input
    assert "LIMIT_COMPRESSION_RATIO" in codes(report)
    assert report.uncompressed_size < 64 << 20
    assert peak < 48 << 20
    assert report.sha256 is None  # not read to the end


def test_names_from_every_tar_dialect_are_read_alike() -> None:
    long_dir = "simple/1/" + "d" * 120
    files = {**single_python_repo(), f"{long_dir}/labels.txt": b"a\nb\n"}
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        report = validate_bytes(pack(files, fmt))
        assert report.valid, (fmt, report.findings)
        assert report.member_count == len(files)
    ustar = {**single_python_repo(), "simple/1/" + "p" * 90 + "/labels.txt": b"a"}  # needs the ustar prefix field
    assert validate_bytes(pack(ustar, tarfile.USTAR_FORMAT)).valid


def test_dot_slash_names_and_a_root_entry_are_accepted() -> None:
    # `tar czf x.tar.gz -C repo .` writes './' and './simple/...'
    files: dict[str, bytes | None] = {"./": None}
    files.update({f"./{k}": v for k, v in single_python_repo().items()})
    report = validate_bytes(pack(files))
    assert report.valid, report.findings


def test_os_clutter_is_a_warning_only() -> None:
    report = validate_bytes(pack({**single_python_repo(), "simple/._config.pbtxt": b"\x00\x05", ".DS_Store": b"x"}))
    assert report.valid
    assert "MEMBER_OS_METADATA" in codes(report)


class _OneWayStream(io.RawIOBase):
    """A non-seekable stream, like an S3 StreamingBody, that counts how often it is read."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data, self._pos, self.reads, self._fail_after = data, 0, 0, fail_after

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError("connection reset by peer")
        end = len(self._data) if size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos : end], min(end, len(self._data))
        return chunk


def test_one_pass_over_a_non_seekable_stream_hashes_the_whole_object() -> None:
    from chalicelib.domain.validation.validator import validate_tarball

    data = pack(single_python_repo())
    stream = _OneWayStream(data)
    report = validate_tarball(stream, "simple_1.tar.gz")  # type: ignore[arg-type]
    assert report.valid
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.size == len(data)


def test_a_transport_error_mid_read_is_a_finding() -> None:
    from chalicelib.domain.validation.validator import validate_tarball

    data = pack(single_python_repo())
    report = validate_tarball(_OneWayStream(data, fail_after=0), "simple_1.tar.gz")  # type: ignore[arg-type]
    assert "ARCHIVE_READ_ERROR" in codes(report)
    assert "connection reset" in report.findings[-1].message


def test_an_extended_header_without_its_member_is_truncation() -> None:
    # GIVEN a pax header for a long name, and the stream ends before the member it describes
    tar = raw_tar([(info("simple/1/" + "n" * 150), b"x")])
    pax_header_and_data = tar[:1024]
    # THEN the archive is cut short, not silently complete
    assert "ARCHIVE_TRUNCATED" in codes(validate_bytes(gz(pax_header_and_data)))
