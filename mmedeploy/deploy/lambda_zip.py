"""The Lambda zips: application files on top of a cached, precompiled dependency layer.

The dependencies (a requirements file) are installed by pip as Lambda's runtime needs them: binary
wheels for the functions' Python and architecture, read from the template (the functions'
``Runtime`` and ``Architectures``, or ``Globals.Function``'s). The installed tree is compiled to
bytecode and zipped once, and both are cached under ``build/.cache``, keyed by the requirements
file's bytes and the target, so a later build runs no pip, compiles only the application's own
modules, and copies the dependency zip before appending those (:func:`write_zip` ``base``).

Bytecode ships in every zip (``__pycache__/*.cpython-3XX.pyc``, unchecked-hash, so it is valid
whatever the files' timestamps): Lambda's task root is read-only, so without it every cold start
compiles every module it imports. It is compiled by the packaging Python, which must be the
runtime's version (the Makefile's one Python).

A zip is deterministic: a fixed order (the dependency layer's sorted names, then the application's
sorted names), one fixed timestamp, modes reduced to 644/755, bytecode compiled with a fixed hash
seed, so identical input gives identical bytes (and an unchanged package is not re-uploaded by
``aws cloudformation package``, which names objects by content hash).
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
CACHE_FORMAT = "2"  # bump to invalidate every cached dependency layer

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
    """A Lambda zip cannot be built; the message says why, on one line."""


@dataclass(frozen=True)
class LambdaPlatform:
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


def lambda_platform(template: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]) -> LambdaPlatform:
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
        raise LambdaZipError(f"functions that share one zip have not one runtime/architecture ({found})")
    ((runtime, architecture),) = targets
    return LambdaPlatform(runtime, architecture)


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip() and "is ignored: it is neither" not in line]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


@dataclass(frozen=True)
class DependencyLayer:
    """A requirements file installed for a target, compiled, and zipped (all cached)."""

    site: Path  # the installed tree, bytecode included
    zip: Path  # its deterministic zip, the base of every artifact built from it
    files: int
    unzipped_bytes: int


def install_dependencies(requirements: Path, target: LambdaPlatform, cache_dir: Path, label: str) -> DependencyLayer:
    """``requirements`` installed for ``target``, compiled and zipped; from the cache when it can.

    ``label`` names the cache entry (``app``, ``functions``) so the folder says what it holds."""
    try:
        digest = hashlib.sha256(
            b"\0".join([CACHE_FORMAT.encode(), str(target).encode(), requirements.read_bytes()])
        ).hexdigest()
    except OSError as exc:
        raise LambdaZipError(f"cannot read {requirements}: {exc.strerror or exc}") from exc
    site = cache_dir / f"{label}-{target.runtime}-{target.architecture}-{digest[:16]}"
    layer = site.with_name(site.name + ".zip")
    if not site.is_dir():
        _install(requirements, target, cache_dir, site)
    if not layer.is_file():
        partial = layer.with_name(f"{layer.name}.{os.getpid()}.partial")
        write_zip(dependency_files(site), partial)
        partial.replace(layer)
    with zipfile.ZipFile(layer) as archive:
        infos = archive.infolist()
    return DependencyLayer(site, layer, len(infos), sum(info.file_size for info in infos))


def _install(requirements: Path, target: LambdaPlatform, cache_dir: Path, site: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f"{site.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    # --no-deps: the file pins every package, transitive ones too (make lock); nothing else comes in
    command += ["--no-deps", "--no-compile", "--only-binary=:all:", "--implementation", "cp"]
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
        compile_bytecode(dependency_files(partial, bytecode=False), target, partial)
        partial.rename(site)
    except LambdaZipError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except OSError:  # a concurrent build cached the same tree first
        shutil.rmtree(partial, ignore_errors=True)


# Compiles (source, zip name, pyc) triples read from stdin, one tab-separated triple per line.
# Unchecked-hash pycs are valid whatever the timestamps; the zip name as the recorded file name
# keeps local paths out of the bytes. A module that does not compile gets no pyc (it would not
# import either): that is its package's business, not the build's.
_COMPILE_SCRIPT = """
import py_compile, sys
for line in sys.stdin.read().splitlines():
    source, name, pyc = line.split("\\t")
    try:
        py_compile.compile(source, cfile=pyc, dfile=name, doraise=True, optimize=0,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        pass
"""


def bytecode_name(name: str, target: LambdaPlatform) -> str:
    """Where the runtime looks for ``name``'s bytecode: ``a/__pycache__/b.cpython-312.pyc``."""
    folder, _, module = name.rpartition("/")
    tag = "cpython-" + target.python_version.replace(".", "")
    return f"{folder + '/' if folder else ''}__pycache__/{module.removesuffix('.py')}.{tag}.pyc"


def compile_bytecode(files: Mapping[str, Path], target: LambdaPlatform, out: Path) -> dict[str, Path]:
    """Compile the ``*.py`` of ``files`` (``{zip name: source}``) for ``target`` under ``out``;
    ``{zip name of the pyc: its path}`` of those that compiled."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != target.python_version:
        raise LambdaZipError(
            f"bytecode for {target.runtime} needs the packaging Python to be {target.python_version}, "
            f"not {running}: run make with PYTHON=/path/to/python{target.python_version}"
        )
    jobs = {bytecode_name(name, target): (name, path) for name, path in files.items() if name.endswith(".py")}
    fields = [(str(path), name, str(out / pyc)) for pyc, (name, path) in sorted(jobs.items())]
    odd = [triple[0] for triple in fields if any("\t" in field or "\n" in field for field in triple)]
    if odd:
        raise LambdaZipError(f"{odd[0]}: a tab or newline in its path; it cannot be compiled")
    lines = ["\t".join(triple) for triple in fields]
    # Only a fixed hash seed in the environment (not -I, which would ignore it): whatever is
    # hashed while compiling cannot vary the bytes, and nothing of the caller's Python leaks in.
    done = subprocess.run(
        [sys.executable, "-s", "-c", _COMPILE_SCRIPT],
        input="\n".join(lines),
        text=True,
        capture_output=True,
        env={"PYTHONHASHSEED": "0"},
    )
    if done.returncode != 0:
        raise LambdaZipError(f"compiling bytecode failed: {_last_error(done.stderr)}")
    return {pyc: out / pyc for pyc in jobs if (out / pyc).is_file()}


def tree_files(
    root: Path, prefix: str = "", *, excluded_dirs: Iterable[str] = EXCLUDED_DIRS, bytecode: bool = False
) -> dict[str, Path]:
    """``{name in the zip: path}`` of the regular files under ``root``, without excluded folders or
    ``*.pyc`` (unless ``bytecode``: then ``__pycache__/*.pyc`` are kept); a symlink or other special
    file is refused (Lambda would not get what it points to)."""
    skip = frozenset(excluded_dirs)
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in skip]
        for name in filenames:
            path = Path(dirpath, name)
            if name.endswith((".pyc", ".pyo")) and not (bytecode and path.parent.name == "__pycache__"):
                continue
            if not stat.S_ISREG(path.lstat().st_mode):
                raise LambdaZipError(f"{path} is a link or special file; only regular files can be packaged")
            files[prefix + path.relative_to(root).as_posix()] = path
    return files


def dependency_files(site: Path, *, bytecode: bool = True) -> dict[str, Path]:
    """The installed dependencies (with their bytecode unless told not to): everything but
    ``bin/`` (their ``tests`` stay: some packages import their own test helpers)."""
    files = tree_files(site, excluded_dirs=() if bytecode else {"__pycache__"}, bytecode=bytecode)
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


def write_zip(
    files: Mapping[str, Path], out: Path, *, base: DependencyLayer | None = None, limit: int = LAMBDA_UNZIPPED_LIMIT
) -> ZipResult:
    """Write ``files`` to ``out`` deterministically, after the entries of ``base`` when given;
    :class:`LambdaZipError` before writing anything if they unzip to more than ``limit`` bytes or
    a name is in both."""
    sizes = {name: path.stat().st_size for name, path in files.items()}
    count, total = len(files) + (base.files if base else 0), sum(sizes.values()) + (base.unzipped_bytes if base else 0)
    if base is not None:
        with zipfile.ZipFile(base.zip) as layer:
            clash = sorted(set(layer.namelist()) & set(files))
        if clash:
            raise LambdaZipError(f"{len(clash)} file(s) are both a dependency and the app's, e.g. {clash[0]}")
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
    if base is not None:
        shutil.copyfile(base.zip, partial)
    with zipfile.ZipFile(partial, "a" if base else "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
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
    return ZipResult(out, count, out.stat().st_size, total)
