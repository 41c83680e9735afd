"""``mmedeploy package``: a Triton model repository folder -> ``NAME_VERSION.tar.gz``.

The output is byte-identical for identical input (sorted members, fixed owners, modes and
mtimes, a gzip header without name or time), so a re-package of unchanged files never looks like
a new artifact. The tarball is validated before it is given its final name: an invalid one is
never written.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from isal import igzip

from chalicelib.domain.naming import ARTIFACT_PATTERN, ArtifactName
from chalicelib.domain.validation.report import ValidationReport
from chalicelib.domain.validation.triton_release import DEFAULT_TRITON, TritonVersion
from chalicelib.domain.validation.validator import VERSION_FILE, validate_tarball

# 2000-01-01T00:00:00Z: a fixed, plausible mtime (GNU tar warns about 1970 timestamps).
FIXED_MTIME = 946684800
EXCLUDED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "__pycache__", ".ipynb_checkpoints", ".git", ".gitkeep"}
COMPRESS_LEVEL = 2  # isal's default: near zlib -6 ratio at many times the speed


class PackagingError(Exception):
    """The source folder cannot be packaged; the message says what to change."""


class InvalidPackage(PackagingError):
    """The packaged tarball failed validation and was not written."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(f"{len(report.errors)} validation error(s); nothing was written")
        self.report = report


@dataclass(frozen=True)
class PackageResult:
    path: Path
    report: ValidationReport


def _excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.startswith("._") or name.endswith(".pyc")


def _is_previous_output(root: Path, path: Path) -> bool:
    # `mmedeploy package . -o .` must not pack its own earlier tarballs (or a partial one).
    return path.parent == root and (ARTIFACT_PATTERN.match(path.name) is not None or path.name.endswith(".partial"))


def _walk(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """Sorted (archive name, path, lstat) of everything to pack; refuses links and specials."""
    entries: list[tuple[str, Path, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d))
        for name in sorted([*dirnames, *(f for f in filenames if not _excluded(f))]):
            path = Path(dirpath, name)
            if _is_previous_output(root, path):
                continue
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                raise PackagingError(
                    f"'{rel}' is a symbolic link; SageMaker would not follow it safely: copy the file in instead"
                )
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise PackagingError(f"'{rel}' is neither a file nor a directory; remove it")
            entries.append((rel, path, info))
    entries.sort(key=lambda e: e[0])
    return entries


def _tarinfo(name: str, size: int, directory: bool, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode = 0o755 if directory or executable else 0o644
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tarball(source: Path, artifact: ArtifactName, target: Path) -> None:
    """Write the deterministic tarball of ``source`` (plus model_version.txt) to ``target``."""
    entries = _walk(source)
    version_bytes = f"{artifact.version}\n".encode()
    existing = source / VERSION_FILE
    if existing.is_file():
        recorded = existing.read_text(errors="replace").strip()
        if recorded != artifact.version:
            raise PackagingError(
                f"{existing} says version '{recorded}' but --version is '{artifact.version}'; "
                "fix or delete the file (package writes it)"
            )
        entries = [e for e in entries if e[0] != VERSION_FILE]
    with (
        open(target, "wb") as raw,
        igzip.GzipFile(  # type: ignore[no-untyped-call]  # isal ships no annotations for it
            filename="", mode="wb", fileobj=raw, compresslevel=COMPRESS_LEVEL, mtime=0
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_tarinfo(VERSION_FILE, len(version_bytes), False, False), io.BytesIO(version_bytes))
        for name, path, info in entries:
            directory = stat.S_ISDIR(info.st_mode)
            tarinfo = _tarinfo(name, info.st_size, directory, bool(info.st_mode & stat.S_IXUSR))
            if directory:
                tar.addfile(tarinfo)
            else:
                with open(path, "rb") as handle:
                    tar.addfile(tarinfo, handle)


def package(
    source: Path, name: str, version: str, output_dir: Path, triton_version: TritonVersion = DEFAULT_TRITON
) -> PackageResult:
    """Package, validate (against the endpoints' ``triton_version``), and only then move the tarball
    to ``output_dir/NAME_VERSION.tar.gz``."""
    artifact = ArtifactName.build(name, version)
    if not source.is_dir():
        raise PackagingError(f"{source} is not a directory")
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / artifact.filename
    partial = output_dir / f".{artifact.filename}.partial"
    try:
        write_tarball(source, artifact, partial)
        with open(partial, "rb") as handle:
            report = validate_tarball(handle, artifact.filename, triton_version=triton_version)
        if not report.valid:
            raise InvalidPackage(report)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return PackageResult(path=final, report=report)
