"""One streaming pass over an untrusted model tarball: safety checks and the members' facts.

Nothing is written to disk. Each member's bytes go to the sinks it needs: a SHA-256, a small
in-memory copy (configs, ``model.py``, ``model_version.txt``, ``rollout.json``, smoke-test cases)
or the ONNX probe. A fatal problem (bomb, truncation, bad header) stops the pass at once.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import BinaryIO

from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.gzip_stream import ArchiveStreamError, GzipInflater
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.onnx_probe import OnnxProbe, OnnxSummary
from chalicelib.domain.validation.tar_stream import MemberSink, TarEntry, TarStreamParser

KEPT_BASENAMES = {"config.pbtxt", "model_version.txt"}
KEPT_ROOT_FILES = {"rollout.json"}  # the model's rollout policy (chalicelib/domain/rollout/tarball_policy.py)
OS_CLUTTER = {".DS_Store", "Thumbs.db", "desktop.ini"}
KIND_FINDINGS = {
    "symlink": (Code.MEMBER_SYMLINK, "is a symbolic link (to '{link}'); replace it with the file itself"),
    "hardlink": (Code.MEMBER_HARDLINK, "is a hard link (to '{link}'); store the file itself"),
    "chardev": (Code.MEMBER_DEVICE, "is a character device; only files and directories are allowed"),
    "blockdev": (Code.MEMBER_DEVICE, "is a block device; only files and directories are allowed"),
    "fifo": (Code.MEMBER_FIFO, "is a FIFO; only files and directories are allowed"),
}


@dataclass(frozen=True)
class MemberInfo:
    path: str  # normalised: no leading './', no trailing '/'
    kind: str  # file | dir
    size: int
    sha256: str | None = None


@dataclass
class ArchiveScan:
    """What one pass learned about a tarball."""

    findings: list[Finding] = field(default_factory=list)
    members: dict[str, MemberInfo] = field(default_factory=dict)
    small_files: dict[str, bytes] = field(default_factory=dict)
    onnx: dict[str, OnnxSummary] = field(default_factory=dict)
    sha256: str | None = None
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    complete: bool = False  # read to the end with no fatal problem

    @property
    def files(self) -> dict[str, MemberInfo]:
        return {p: m for p, m in self.members.items() if m.kind == "file"}

    def directories(self) -> set[str]:
        """Explicit directories and the parents every file implies."""
        dirs = {p for p, m in self.members.items() if m.kind == "dir"}
        for path in self.members:
            parent = posixpath.dirname(path)
            while parent:
                dirs.add(parent)
                parent = posixpath.dirname(parent)
        return dirs


class _MemberSink:
    """Hashes a member and, when asked, keeps a bounded copy and/or probes it as ONNX."""

    def __init__(self, scan: ArchiveScan, info: MemberInfo, keep: bool, probe: OnnxProbe | None) -> None:
        self._scan, self._info, self._probe = scan, info, probe
        self._hash = hashlib.sha256()
        self._kept: bytearray | None = bytearray() if keep else None

    def write(self, data: memoryview) -> None:
        self._hash.update(data)
        if self._kept is not None:
            self._kept += data
        if self._probe is not None:
            self._probe.write(data)

    def close(self) -> None:
        info = self._info
        self._scan.members[info.path] = MemberInfo(info.path, info.kind, info.size, self._hash.hexdigest())
        if self._kept is not None:
            self._scan.small_files[info.path] = bytes(self._kept)
        if self._probe is not None:
            self._probe.close()
            self._scan.onnx[info.path] = self._probe.summary


class _MemberPolicy:
    """Decides, per tar entry, whether it is acceptable and which sink reads its bytes."""

    def __init__(self, scan: ArchiveScan, limits: ArchiveLimits, archive_path: str) -> None:
        self._scan, self._limits, self._archive_path = scan, limits, archive_path
        self._declared_total = 0
        self._explicit_dirs: set[str] = set()
        self._parents_of_files: set[str] = set()

    def __call__(self, entry: TarEntry) -> MemberSink | None:
        findings = self._scan.findings
        path = self._normalise(entry)
        if path is None:
            return None
        if entry.kind not in ("file", "dir"):
            code, text = KIND_FINDINGS.get(
                entry.kind,
                (Code.MEMBER_TYPE_UNSUPPORTED, f"is a {entry.kind} member; only files and directories are allowed"),
            )
            findings.append(Finding.of(code, path, f"'{path}' " + text.format(link=entry.linkname)))
            return None
        self._check_bounds(entry, path)
        if not self._register(path, entry.kind):
            return None
        base = posixpath.basename(path)
        if base in OS_CLUTTER or base.startswith("._") or path.split("/", 1)[0] == "__MACOSX":
            findings.append(
                Finding.of(
                    Code.MEMBER_OS_METADATA,
                    path,
                    f"'{path}' is operating-system clutter; exclude it (mmedeploy package does, "
                    "or set COPYFILE_DISABLE=1 when using tar on macOS)",
                )
            )
        info = MemberInfo(path, entry.kind, entry.size)
        if entry.kind == "dir":
            self._scan.members[path] = info
            return None
        keep = entry.size <= self._limits.max_small_member_bytes and _is_kept(path)
        probe = OnnxProbe() if path.endswith(".onnx") else None
        return _MemberSink(self._scan, info, keep, probe)

    def _normalise(self, entry: TarEntry) -> str | None:
        name, findings = entry.name, self._scan.findings
        if "\\" in name or "\x00" in name:
            findings.append(
                Finding.of(Code.MEMBER_PATH_INVALID, name, f"'{name}' contains a backslash or NUL; use '/' separators")
            )
            return None
        if name.startswith("/"):
            findings.append(
                Finding.of(
                    Code.MEMBER_PATH_ABSOLUTE,
                    name,
                    f"'{name}' is an absolute path; archive paths must be relative to the repository root",
                )
            )
            return None
        path = clean_member_path(name)
        if ".." in path.split("/"):
            findings.append(
                Finding.of(
                    Code.MEMBER_PATH_TRAVERSAL,
                    name,
                    f"'{name}' contains '..', which would write outside the model directory",
                )
            )
            return None
        if not path and entry.kind != "dir":
            findings.append(Finding.of(Code.MEMBER_PATH_INVALID, name, f"member '{name}' has an empty path"))
            return None
        return path or None  # '.' and './' name the root itself

    def _check_bounds(self, entry: TarEntry, path: str) -> None:
        limits = self._limits
        if entry.size > limits.max_member_bytes:
            raise ArchiveStreamError(
                Finding.of(
                    Code.LIMIT_MEMBER_SIZE,
                    path,
                    f"'{path}' is {entry.size} bytes, over the {limits.max_member_bytes}-byte bound per member",
                )
            )
        self._declared_total += entry.size
        if self._declared_total > limits.max_total_bytes:
            raise ArchiveStreamError(
                Finding.of(
                    Code.LIMIT_TOTAL_SIZE,
                    path,
                    f"members add up to more than {limits.max_total_bytes} bytes uncompressed",
                )
            )

    def _register(self, path: str, kind: str) -> bool:
        """Record a path; False (with a finding) if it collides with an earlier member."""
        members = self._scan.members
        clash = (
            path in members
            or (kind == "dir" and path in self._explicit_dirs)
            or (kind == "file" and path in self._parents_of_files)
            or any(members.get(parent) and members[parent].kind == "file" for parent in _parents(path))
        )
        if clash:
            self._scan.findings.append(
                Finding.of(
                    Code.MEMBER_DUPLICATE,
                    path,
                    f"'{path}' appears more than once (or as both a file and a directory); "
                    "extraction would silently keep only one",
                )
            )
            return False
        if kind == "dir":
            self._explicit_dirs.add(path)
        else:
            self._parents_of_files.update(_parents(path))
            # Reserve the path now: the sink records the full entry when its data has streamed.
            members[path] = MemberInfo(path, kind, 0)
        return True


def clean_member_path(name: str) -> str:
    """A member's path as the scan records it: no empty or '.' parts (``.//a/./b`` is ``a/b``).
    Whoever extracts a scanned archive must name members the same way."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _is_kept(path: str) -> bool:
    base = posixpath.basename(path)
    if base in KEPT_BASENAMES or base.endswith(".py") or path in KEPT_ROOT_FILES:
        return True
    return path.startswith("tests/") and path.endswith(".json")


def scan_archive(stream: BinaryIO, limits: ArchiveLimits, archive_path: str = "") -> ArchiveScan:
    """Read ``stream`` once: hash it, inflate it, parse and police every member."""
    scan = ArchiveScan()
    inflater = GzipInflater(stream, limits, archive_path)
    parser = TarStreamParser(_MemberPolicy(scan, limits, archive_path), limits, archive_path)
    try:
        for chunk in inflater.chunks():
            parser.feed(chunk)
        parser.close()
    except ArchiveStreamError as exc:
        scan.findings.append(exc.finding)
    else:
        scan.complete = True
        if not parser.saw_end_marker:
            scan.findings.append(
                Finding.of(
                    Code.TAR_NO_END_MARKER,
                    archive_path,
                    "the tar stream has no end-of-archive marker; re-create it with 'mmedeploy package' or tar",
                )
            )
    scan.sha256 = inflater.sha256
    scan.compressed_bytes = inflater.compressed_bytes
    scan.uncompressed_bytes = inflater.uncompressed_bytes
    return scan
