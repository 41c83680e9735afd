"""Where mmedeploy's own files are: the clone it runs from, or the installed package.

Beside its code, the CLI reads the project's deployable files: the template
(``infra/template.yaml``), the Chalice app (``app.py``, ``.chalice/``), the stage Lambdas and
their state machines (``functions/``), the deployed library (``chalicelib/``), the Lambdas'
requirement files, and the examples. Every reader asks :func:`project` where they are:

- **a clone** (an editable install, or ``PYTHONPATH`` pointing at one): the clone itself, and its
  ``build/`` for what is built there (``make package``, the local stack's artifacts);
- **an installed wheel** (``pipx install 'mmedeploy[local]'``): the files ship in the package as
  ``mmedeploy/_project`` (:data:`SHIPPED`, copied there by ``setup.py``) and are laid out, with
  the installed ``chalicelib``, in the user's cache directory (``MMEDEPLOY_CACHE_DIR``, else the
  platform's, e.g. ``~/.cache/mmedeploy``): ``project/`` is that tree (Chalice writes beside the
  app, the examples' binaries are generated in it) and ``build/`` what is built from it.

The version is read from one place, ``pyproject.toml``: in a clone from the file itself, installed
from the package's metadata (:func:`version`).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

DISTRIBUTION = "mmedeploy"
PACKAGE_DIR = Path(__file__).resolve().parent
CLONE = PACKAGE_DIR.parent
SHIPPED_DIR = PACKAGE_DIR / "_project"  # in a wheel: what setup.py copied there
# What ships in the wheel, relative to the clone (files, or folders taken whole less EXCLUDED).
SHIPPED = (
    "app.py",
    ".chalice/config.json",
    ".chalice/policy-logs.json",
    "requirements.txt",
    "infra/template.yaml",
    "functions",
    "examples",
)
# Never shipped: bytecode, and what examples/build_examples.py generates (made on first use).
EXCLUDED = (
    "*/__pycache__/*",
    "*.pyc",
    "*.partial",
    "examples/dist/*",
    "examples/models/idcheck/idcheck_inferencer/1/model.onnx",
    "examples/models/idcheck/idcheck_preprocessing/python_env.tar.gz",
    "examples/models/idcheck/tests/*",
)
# In the laid-out tree: the installed deployed library, beside the shipped files.
LIBRARY = "chalicelib"
# Folders of the laid-out tree replaced whole on each sync (a file gone from the package goes);
# elsewhere what was written there (Chalice's deployments, the examples' binaries) is kept.
SYNCED_WHOLE = ("chalicelib", "functions", "infra")


# The modules of the ``[local]`` extra that the local stack imports (pyproject.toml).
LOCAL_MODULES = ("moto", "chalice", "pytriton", "onnxruntime", "numpy", "tritonclient", "onnx", "aws_lambda_powertools")


def missing_local_modules() -> list[str]:
    """The modules of the ``[local]`` extra this install lacks ([] when it has them all)."""
    import importlib.util

    return [name for name in LOCAL_MODULES if importlib.util.find_spec(name) is None]


class ProjectFilesMissing(RuntimeError):
    """Neither a clone nor an installed package with its files: the install is broken."""


@dataclass(frozen=True)
class Project:
    root: Path  # app.py, .chalice/, chalicelib/, functions/, infra/, requirements.txt, examples/
    build: Path  # writable: build/<stage>, .cache, .runtime, .lambda-tasks
    installed: bool  # True: an installed wheel's files laid out in the cache directory

    @property
    def template(self) -> Path:
        return self.root / "infra" / "template.yaml"

    @property
    def examples(self) -> Path:
        """``examples/models``: one model repository per folder."""
        return self.root / "examples" / "models"

    def built_examples(self) -> Path:
        """``examples/models`` with the binary parts ``examples/build_examples.py`` generates
        (the ONNX model, the test cases), generated here first if missing. Needs numpy and onnx
        (the ``[local]`` extra)."""
        if not (self.examples / "idcheck" / "idcheck_inferencer" / "1" / "model.onnx").is_file():
            import importlib.util

            script = self.root / "examples" / "build_examples.py"
            spec = importlib.util.spec_from_file_location("_mmedeploy_build_examples", script)
            if spec is None or spec.loader is None:
                raise ProjectFilesMissing(f"{script} is missing")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.build()
        return self.examples

    def shown(self, path: Path) -> str:
        """``path`` as a person would type it here: relative to the working directory when under
        it, relative to the clone in a clone, otherwise absolute."""
        for base in (Path.cwd(), *([] if self.installed else [self.root])):
            try:
                return path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                continue
        return str(path)


def is_clone(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "app.py").is_file() and (path / "infra").is_dir()


def shipped_files(root: Path) -> Iterator[PurePosixPath]:
    """The files of :data:`SHIPPED` under ``root``, relative, less :data:`EXCLUDED`, sorted."""
    for name in SHIPPED:
        path = root / name
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in found:
            relative = PurePosixPath(file.relative_to(root).as_posix())
            if not any(fnmatch.fnmatch(str(relative), pattern) for pattern in EXCLUDED):
                yield relative


def cache_dir() -> Path:
    configured = os.environ.get("MMEDEPLOY_CACHE_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir(DISTRIBUTION, appauthor=False))


@functools.cache
def project() -> Project:
    """Where the project's files are, for this process (see the module's docstring)."""
    if SHIPPED_DIR.is_dir():
        cache = cache_dir()
        root = cache / "project"
        _lay_out(root)
        return Project(root=root, build=cache / "build", installed=True)
    if is_clone(CLONE):
        return Project(root=CLONE, build=CLONE / "build", installed=False)
    raise ProjectFilesMissing(
        f"mmedeploy's project files are missing: {PACKAGE_DIR} is neither in a clone nor an installed package "
        "with its files (reinstall it: pipx install --force 'mmedeploy[local]')"
    )


def _lay_out(root: Path) -> None:
    """The installed files and chalicelib copied to ``root``, rewriting only what differs."""
    import chalicelib

    sources: dict[str, Path] = {str(p): SHIPPED_DIR / p for p in shipped_files(SHIPPED_DIR)}
    library = Path(chalicelib.__file__).resolve().parent
    for path in sorted(library.rglob("*")):
        relative = path.relative_to(library.parent).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and not relative.endswith(".pyc"):
            sources[relative] = path
    for whole in SYNCED_WHOLE:
        folder = root / whole
        if folder.is_dir():
            for path in folder.rglob("*"):
                relative = path.relative_to(root).as_posix()
                if path.is_file() and relative not in sources and "__pycache__" not in path.parts:
                    path.unlink()
    for relative, source in sources.items():
        target = root / relative
        data = source.read_bytes()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        shutil.copymode(source, partial)
        partial.replace(target)


@functools.cache
def version() -> str:
    """mmedeploy's version: ``pyproject.toml``'s in a clone, else the installed package's."""
    if not SHIPPED_DIR.is_dir() and is_clone(CLONE):
        with open(CLONE / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def distribution_metadata() -> dict[str, bytes]:
    """``{zip name: bytes}`` of a minimal ``.dist-info`` naming mmedeploy and its version: what
    the Lambda zips carry so the deployed code's ``importlib.metadata.version("mmedeploy")``
    (``GET /v2``) answers the version that was packaged."""
    number = version()
    info = f"{DISTRIBUTION}-{number}.dist-info"
    return {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: {number}\n".encode()}
