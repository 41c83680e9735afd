"""``functions.zip``: the stage Lambdas' code (``functions/``, ``chalicelib/``) and their dependencies.

The dependencies (``functions/requirements.txt``) are installed by pip as Lambda's runtime needs
them: binary wheels for the functions' Python and architecture, read from the template (the stage
functions' ``Runtime`` and ``Architectures``, or ``Globals.Function``'s). The installed tree is
cached under ``build/.cache``, keyed by the requirements file's bytes and the target, so a second
build runs no pip at all and works offline.

The zip is deterministic: sorted names, one fixed timestamp, modes reduced to 644/755, no
``__pycache__`` or ``*.pyc``, so identical input gives identical bytes (and an unchanged package
is not re-uploaded by ``aws cloudformation package``, which names objects by content hash).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmedeploy.deploy.template import effective_property

# Lambda's quota on a function's code, unzipped, layers included: 250 MB.
LAMBDA_UNZIPPED_LIMIT = 262_144_000
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
EXCLUDED_DIRS = frozenset({"__pycache__", "tests"})  # for the application trees
EXCLUDED_DEPENDENCY_TOPS = frozenset({"bin"})  # pip --target's console scripts: local shebangs, unused
CACHE_FORMAT = "1"  # bump to invalidate every cached dependency tree

# The glibc of each Python runtime's OS (Amazon Linux 2: 2.26, Amazon Linux 2023: 2.34): pip may
# take any manylinux wheel up to it. https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
RUNTIME_GLIBC_MINOR: Mapping[str, int] = {
    "python3.9": 26,
    "python3.10": 26,
    "python3.11": 26,
    "python3.12": 34,
    "python3.13": 34,
    "python3.14": 34,
}
ARCHITECTURE_MACHINE: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}


class LambdaZipError(Exception):
    """The stage Lambdas' package cannot be built; the message says why, on one line."""


@dataclass(frozen=True)
class LambdaTarget:
    runtime: str  # python3.12
    architecture: str  # x86_64 | arm64

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    def pip_platforms(self) -> list[str]:
        """Every manylinux tag the runtime's glibc can load, newest first (pip does not widen
        ``manylinux_2_X`` to older tags by itself; ``manylinux2014`` it widens to 2010 and 1)."""
        machine = ARCHITECTURE_MACHINE[self.architecture]
        newest = RUNTIME_GLIBC_MINOR[self.runtime]
        return [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 4, -1)] + [f"manylinux2014_{machine}"]

    def __str__(self) -> str:
        return f"{self.runtime} {self.architecture}"


def lambda_target(template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]) -> LambdaTarget:
    """The one runtime and architecture all of ``functions`` run on (they share one zip)."""
    targets: dict[tuple[str, str], list[str]] = {}
    for lid, resource in functions.items():
        runtime = effective_property(template, resource, "Runtime")
        architectures = effective_property(template, resource, "Architectures") or ["x86_64"]
        if not isinstance(runtime, str) or runtime not in RUNTIME_GLIBC_MINOR:
            raise LambdaZipError(f"{lid}: Runtime {runtime!r} is not one of {', '.join(RUNTIME_GLIBC_MINOR)}")
        if architectures not in ([arch] for arch in ARCHITECTURE_MACHINE):
            raise LambdaZipError(f"{lid}: Architectures {architectures!r} is not [x86_64] or [arm64]")
        targets.setdefault((runtime, architectures[0]), []).append(lid)
    if len(targets) != 1:
        found = "; ".join(f"{runtime} {arch}: {', '.join(ids)}" for (runtime, arch), ids in targets.items())
        raise LambdaZipError(f"the stage functions share functions.zip but not one runtime/architecture ({found})")
    ((runtime, architecture),) = targets
    return LambdaTarget(runtime, architecture)


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip() and "is ignored: it is neither" not in line]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def install_dependencies(requirements: Path, target: LambdaTarget, cache_dir: Path) -> Path:
    """The folder holding ``requirements`` installed for ``target``, from the cache when it can."""
    try:
        digest = hashlib.sha256(
            b"\0".join([CACHE_FORMAT.encode(), str(target).encode(), requirements.read_bytes()])
        ).hexdigest()
    except OSError as exc:
        raise LambdaZipError(f"cannot read {requirements}: {exc.strerror or exc}") from exc
    site = cache_dir / f"functions-{target.runtime}-{target.architecture}-{digest[:16]}"
    if site.is_dir():
        return site
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f"{site.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    command += ["--no-compile", "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", target.python_version]
    for platform in target.pip_platforms():
        command += ["--platform", platform]
    command += ["--target", str(partial), "-r", str(requirements)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        reason = _last_error(done.stderr + done.stdout)
        glibc = f"2.{RUNTIME_GLIBC_MINOR[target.runtime]}"
        raise LambdaZipError(
            f"pip found no Lambda-compatible wheels of {requirements.parent.name}/{requirements.name} for {target} "
            f"(glibc {glibc}: manylinux wheels up to manylinux_{glibc.replace('.', '_')}): {reason}"
        )
    try:
        partial.rename(site)
    except OSError:  # a concurrent build cached the same tree first
        shutil.rmtree(partial, ignore_errors=True)
    return site


def tree_files(root: Path, prefix: str = "", *, excluded_dirs: Iterable[str] = EXCLUDED_DIRS) -> dict[str, Path]:
    """``{name in the zip: path}`` of the regular files under ``root``, without excluded folders or
    ``*.pyc``; a symlink or other special file is refused (Lambda would not get what it points to)."""
    skip = frozenset(excluded_dirs)
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in skip]
        for name in filenames:
            path = Path(dirpath, name)
            if name.endswith((".pyc", ".pyo")):
                continue
            if not stat.S_ISREG(path.lstat().st_mode):
                raise LambdaZipError(f"{path} is a link or special file; only regular files can be packaged")
            files[prefix + path.relative_to(root).as_posix()] = path
    return files


def dependency_files(site: Path) -> dict[str, Path]:
    """The installed dependencies: everything but ``bin/`` and caches (their ``tests`` stay: some
    packages import their own test helpers)."""
    files = tree_files(site, excluded_dirs={"__pycache__"})
    return {name: path for name, path in files.items() if name.split("/", 1)[0] not in EXCLUDED_DEPENDENCY_TOPS}


def merge_files(*parts: Mapping[str, Path]) -> dict[str, Path]:
    """One mapping of zip names; the same name from two parts (an app module shadowing a
    dependency, say) is an error rather than a silent overwrite."""
    merged: dict[str, Path] = {}
    for part in parts:
        clash = sorted(set(merged) & set(part))
        if clash:
            raise LambdaZipError(f"{len(clash)} file(s) come from two places, e.g. {clash[0]}")
        merged.update(part)
    return merged


@dataclass(frozen=True)
class ZipResult:
    path: Path
    files: int
    zipped_bytes: int
    unzipped_bytes: int


def write_zip(files: Mapping[str, Path], out: Path, *, limit: int = LAMBDA_UNZIPPED_LIMIT) -> ZipResult:
    """Write ``files`` to ``out`` deterministically; :class:`LambdaZipError` before writing
    anything if they unzip to more than ``limit`` bytes."""
    sizes = {name: path.stat().st_size for name, path in files.items()}
    total = sum(sizes.values())
    if total > limit:
        by_top: Counter[str] = Counter()
        for name, size in sizes.items():
            by_top[name.split("/", 1)[0]] += size
        largest = ", ".join(f"{top} {size / 1e6:.0f} MB" for top, size in by_top.most_common(4))
        raise LambdaZipError(
            f"{out.name} would unzip to {total / 1e6:.1f} MB, over Lambda's {limit / 1e6:.0f} MB limit "
            f"(largest: {largest})"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in sorted(files):
            path = files[name]
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the modes below are honoured
            executable = path.stat().st_mode & 0o111
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            with path.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    partial.replace(out)
    return ZipResult(out, len(files), out.stat().st_size, total)
