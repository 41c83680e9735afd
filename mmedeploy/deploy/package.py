"""``python -m mmedeploy.deploy.package --stage STAGE [--out build/STAGE]`` (``make package``).

Builds what ``aws cloudformation package`` uploads and deploys, in ``build/STAGE/``:

- ``sam.yaml``: Chalice's SAM template with ``infra/template.yaml`` merged in, every artifact a
  literal path next to it (:func:`mmedeploy.deploy.template.make_packageable`);
- one zip per group of functions that share code (:data:`ARTIFACTS`): ``deployment.zip`` for
  Chalice's functions (the API, its authorizer, ``on_model_uploaded``: ``requirements.txt``) and
  ``functions.zip`` for the stage Lambdas (``functions/requirements.txt``). Each holds its handler
  modules and only the project modules they import (:mod:`mmedeploy.deploy.app_modules`), on its
  dependency layer, with bytecode (:mod:`mmedeploy.deploy.lambda_zip`);
- the state machines' ASL files;
- ``build-inputs.json``: a digest of the inputs of each part, so :func:`ensure_built` rebuilds only
  the parts whose inputs changed (``chalice package`` runs only when the template's did).

The folder is assembled beside its final place and swapped in only when complete, so a failed
build leaves the previous one as it was. Exit 0 with a summary; 1 with a one-line reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mmedeploy.deploy.app_modules import AppModuleError, app_files
from mmedeploy.deploy.lambda_zip import (
    LambdaZipError,
    compile_bytecode,
    install_dependencies,
    lambda_platform,
    merge_files,
    write_zip,
)
from mmedeploy.deploy.template import (
    FUNCTIONS_ZIP,
    SERVERLESS_FUNCTION,
    Template,
    TemplateError,
    dump_template,
    load_template,
    make_packageable,
    missing_artifacts,
    properties,
    resources,
    resources_of_type,
)
from mmedeploy.project_files import distribution_metadata, project, version

MERGE_TEMPLATE = Path("infra/template.yaml")
TEMPLATE_NAME = "sam.yaml"
CHALICE_ZIP = "deployment.zip"
MANIFEST = "build-inputs.json"
DEFAULT_REGION = "us-east-1"  # chalice package needs a region to name ARNs; no credentials
# The project's own bound on each artifact, unzipped (Lambda's is 250 MB): small zips deploy and
# cold-start fast. The tests hold every artifact to it; the summary shows each against it.
ARTIFACT_BUDGET_BYTES = 60_000_000


@dataclasses.dataclass(frozen=True)
class ArtifactSpec:
    """One zip: the functions whose ``CodeUri`` names it share its dependencies and code."""

    name: str  # the zip's file name next to sam.yaml
    requirements: Path  # relative to the project's root (generated from requirements/lock.txt: make lock)
    packages: tuple[str, ...]  # the project's packages its handlers import from (followed)
    role: str  # what it serves, for the summary
    chalice_runtime: bool = False  # Chalice's own runtime module (chalice/app.py), as chalice package adds


ARTIFACTS = (
    ArtifactSpec(
        CHALICE_ZIP,
        Path("requirements.txt"),
        ("chalicelib",),
        "the Chalice app (API, authorizer, upload trigger)",
        chalice_runtime=True,
    ),
    ArtifactSpec(FUNCTIONS_ZIP, Path("functions/requirements.txt"), ("chalicelib", "functions"), "the stage Lambdas"),
)
# What the template part is made from, beyond the ASL files it copies (chalice package imports
# app.py, and with it chalicelib, to read the routes and the upload rule).
TEMPLATE_INPUTS = ("infra", "app.py", "chalicelib", ".chalice/config.json", ".chalice/policy-logs.json")
PACKAGER = Path("mmedeploy/deploy")  # a change to the packager itself rebuilds everything


class PackageError(Exception):
    """The build failed; the message says why, on one line."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A zip next to sam.yaml and the functions it serves."""

    path: Path
    functions: tuple[str, ...]  # logical ids whose CodeUri it is
    files: int
    zipped_bytes: int
    unzipped_bytes: int
    rebuilt: bool  # False: reused from the previous build, its inputs unchanged

    @property
    def name(self) -> str:
        return self.path.name


@dataclasses.dataclass(frozen=True)
class BuildResult:
    out: Path
    template: Template  # sam.yaml as data
    artifacts: tuple[Artifact, ...]
    definitions: tuple[str, ...]  # the state machines' ASL files next to sam.yaml
    rebuilt: tuple[str, ...]  # the parts this call built (sam.yaml and/or zip names); () = all reused
    seconds: float

    @property
    def template_path(self) -> Path:
        return self.out / TEMPLATE_NAME

    def artifact(self, name: str) -> Artifact:
        return next(artifact for artifact in self.artifacts if artifact.name == name)


def _root(root: Path | None) -> Path:
    """The tree a build is made from: the one given (tests), else the project's
    (:func:`mmedeploy.project_files.project`: the clone, or the installed files)."""
    return root if root is not None else project().root


def stages(root: Path | None = None) -> list[str]:
    config = _root(root) / ".chalice" / "config.json"
    try:
        return sorted(json.loads(config.read_text())["stages"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"cannot read the stages from {config}: {exc}") from exc


def run_chalice_package(stage: str, out: Path, root: Path | None = None) -> None:
    """``chalice package --stage STAGE --merge-template infra/template.yaml OUT`` in this venv."""
    root = _root(root)
    env = dict(os.environ)
    if not env.get("AWS_DEFAULT_REGION") and not env.get("AWS_REGION"):
        env["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    command = [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())"]
    command += ["--project-dir", str(root), "package", "--stage", stage]
    command += ["--merge-template", str(root / MERGE_TEMPLATE), str(out)]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (out / TEMPLATE_NAME).is_file():
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise PackageError(f"chalice package failed: {lines[-1] if lines else f'exit {done.returncode}'}")


# -- the inputs' digests ------------------------------------------------------------------------


def _input_files(root: Path, name: str) -> Iterator[Path]:
    path = root / name
    if path.is_file():
        yield path
    elif path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            yield from (Path(dirpath, f) for f in sorted(filenames) if not f.endswith((".pyc", ".partial")))


def _digest(root: Path, names: Sequence[str], *extra: str) -> str:
    """SHA-256 over the files under ``names`` (relative paths and bytes) and ``extra`` strings."""
    digest = hashlib.sha256("\0".join(extra).encode())
    for name in sorted(names):
        for path in _input_files(root, name):
            digest.update(b"\0" + path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def input_digests(stage: str, root: Path | None = None) -> dict[str, str]:
    """``{part: digest of what it is made from}`` for ``sam.yaml`` and each zip. A zip's digest
    includes the template's (its functions, runtime and architecture come from it) and the
    version the zips carry (:func:`mmedeploy.project_files.distribution_metadata`)."""
    root = _root(root)
    tools = f"python {sys.version_info.major}.{sys.version_info.minor}; mmedeploy {version()}"
    definitions = [p.relative_to(root).as_posix() for p in sorted((root / "functions").glob("*.json"))]
    template = _digest(root, [*TEMPLATE_INPUTS, *definitions, PACKAGER.as_posix()], stage, tools, _chalice_version())
    digests = {TEMPLATE_NAME: template}
    for spec in ARTIFACTS:
        trees = [spec.requirements.as_posix(), PACKAGER.as_posix(), *spec.packages]
        trees += ["app.py"] if spec.chalice_runtime else []
        digests[spec.name] = _digest(root, trees, template, tools)
    return digests


def _chalice_version() -> str:
    import chalice

    return f"chalice {chalice.__version__}"


# -- building the parts -------------------------------------------------------------------------


def _build_template(stage: str, partial: Path, root: Path) -> tuple[Template, tuple[str, ...]]:
    """sam.yaml and the ASL files in ``partial``; the template and the ASL file names."""
    run_chalice_package(stage, partial, root)
    (partial / CHALICE_ZIP).unlink(missing_ok=True)  # Chalice's own zip: ours replaces it
    packageable = make_packageable(
        load_template(partial / TEMPLATE_NAME), source_root=root, functions_zip=f"./{FUNCTIONS_ZIP}"
    )
    template = packageable.template
    # Chalice names its functions mmedeploy-STAGE*; the template's names and log-group grants
    # use the Stage parameter: a package defaults it to its own stage so the two agree.
    stage_parameter = template.get("Parameters", {}).get("Stage")
    if isinstance(stage_parameter, dict):
        stage_parameter["Default"] = stage
    if not packageable.stage_functions:
        raise PackageError(f"{MERGE_TEMPLATE} declares no stage functions (Handler: functions.<name>.handler)")
    for name, source in packageable.copies.items():
        shutil.copyfile(source, partial / name)
    (partial / TEMPLATE_NAME).write_text(dump_template(template))
    return template, tuple(sorted(packageable.copies))


def _functions_of(template: Template, zip_name: str) -> dict[str, dict[str, Any]]:
    return {
        lid: resource
        for lid, resource in resources_of_type(template, SERVERLESS_FUNCTION).items()
        if properties(resource).get("CodeUri") == f"./{zip_name}"
    }


def _chalice_runtime_files() -> dict[str, Path]:
    """chalice/__init__.py and chalice/app.py of the installed Chalice, as ``chalice package`` adds them."""
    import chalice

    folder = Path(chalice.__file__).parent
    return {"chalice/__init__.py": folder / "__init__.py", "chalice/app.py": folder / "app.py"}


def build_artifact(
    spec: ArtifactSpec, template: Template, out: Path, cache_dir: Path, root: Path | None = None
) -> Artifact:
    """``out/<spec.name>``: the dependency layer, then the handler modules and what they import,
    with their bytecode, and mmedeploy's ``.dist-info`` (its version, for ``GET /v2``)."""
    root = _root(root)
    functions = _functions_of(template, spec.name)
    if not functions:
        raise PackageError(f"no function of the template has CodeUri ./{spec.name}")
    target = lambda_platform(template, functions)
    layer = install_dependencies(root / spec.requirements, target, cache_dir, Path(spec.name).stem)
    handlers = sorted({str(properties(f).get("Handler", "")).rpartition(".")[0] for f in functions.values()})
    code = app_files(root, handlers, spec.packages)
    if spec.chalice_runtime:
        code = merge_files(code, _chalice_runtime_files())
    with tempfile.TemporaryDirectory(prefix="bytecode-") as tmp:
        metadata = {}
        for name, data in distribution_metadata().items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
            metadata[name] = Path(tmp) / name
        bytecode = compile_bytecode(code, target, Path(tmp))
        written = write_zip(merge_files(code, bytecode, metadata), out / spec.name, base=layer)
    return Artifact(written.path, tuple(functions), written.files, written.zipped_bytes, written.unzipped_bytes, True)


def _existing_artifact(spec: ArtifactSpec, template: Template, path: Path, rebuilt: bool = False) -> Artifact:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    functions = tuple(_functions_of(template, spec.name))
    return Artifact(path, functions, len(infos), path.stat().st_size, sum(i.file_size for i in infos), rebuilt)


def _definitions(template: Template) -> tuple[str, ...]:
    names = {
        properties(resource).get("DefinitionUri")
        for resource in resources(template).values()
        if resource.get("Type") == "AWS::Serverless::StateMachine"
    }
    return tuple(sorted(name for name in names if isinstance(name, str)))


def _read_manifest(out: Path) -> dict[str, str]:
    try:
        found = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _replace_dir(partial: Path, out: Path) -> None:
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / TEMPLATE_NAME).is_file()):
            raise PackageError(f"{out} exists and is not an earlier package output; remove it or pick another --out")
        shutil.rmtree(out)
    partial.rename(out)


class _Lock:
    """An exclusive lock beside ``out`` for one build at a time (``make test`` and ``mmedeploy up``
    may ask for the same build)."""

    def __init__(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self._path = out.with_name(f".{out.name}.lock")
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def ensure_built(
    stage: str, out: Path, *, cache_dir: Path | None = None, root: Path | None = None, force: bool = False
) -> BuildResult:
    """``out`` built for ``stage`` from the tree at ``root``: reused as it is when the digests of
    its inputs match those it was built from, otherwise rebuilt part by part (``sam.yaml`` with
    ``chalice package``, each zip on its cached dependency layer), keeping the parts whose inputs
    are unchanged. ``force`` rebuilds every part. :class:`PackageError` on any failure, ``out``
    then left as it was."""
    started = time.monotonic()
    cache = cache_dir or (project().build if root is None else root / "build") / ".cache"
    root = _root(root)
    known = stages(root)
    if stage not in known:
        raise PackageError(f"unknown stage {stage!r}: .chalice/config.json has {', '.join(known)}")
    out = out.resolve()
    try:
        with _Lock(out):
            return _ensure_built(stage, out, cache, root, force, started)
    except (TemplateError, LambdaZipError, AppModuleError) as exc:
        raise PackageError(str(exc)) from exc
    except OSError as exc:
        raise PackageError(f"{exc.filename or 'I/O'}: {exc.strerror or exc}") from exc


def _ensure_built(stage: str, out: Path, cache: Path, root: Path, force: bool, started: float) -> BuildResult:
    digests = input_digests(stage, root)
    previous = {} if force else _read_manifest(out)
    keep = {part for part, digest in digests.items() if previous.get(part) == digest and (out / part).is_file()}
    if TEMPLATE_NAME not in keep:
        keep.clear()  # the zips' digests include the template's; this only guards a missing sam.yaml
    if keep == set(digests):
        template = load_template(out / TEMPLATE_NAME)
        reused = tuple(_existing_artifact(spec, template, out / spec.name) for spec in ARTIFACTS)
        return BuildResult(out, template, reused, _definitions(template), (), time.monotonic() - started)
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if TEMPLATE_NAME in keep:
            template = load_template(out / TEMPLATE_NAME)
            definitions = _definitions(template)
            for name in (TEMPLATE_NAME, *definitions):
                shutil.copyfile(out / name, partial / name)
        else:
            template, definitions = _build_template(stage, partial, root)
        artifacts: list[Artifact] = []
        for spec in ARTIFACTS:
            if spec.name in keep:
                shutil.copyfile(out / spec.name, partial / spec.name)
                artifacts.append(_existing_artifact(spec, template, partial / spec.name))
            else:
                artifacts.append(build_artifact(spec, template, partial, cache, root))
        missing = missing_artifacts(template, partial)
        if missing:
            raise PackageError(f"artifacts missing next to {TEMPLATE_NAME}: {', '.join(missing)}")
        (partial / MANIFEST).write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
        _replace_dir(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    moved = tuple(dataclasses.replace(a, path=out / a.name) for a in artifacts)
    rebuilt = tuple(part for part in digests if part not in keep)
    return BuildResult(out, template, moved, definitions, rebuilt, time.monotonic() - started)


def build(stage: str, out: Path, *, cache_dir: Path | None = None, root: Path | None = None) -> BuildResult:
    """Build every part of ``out`` afresh (see :func:`ensure_built`)."""
    return ensure_built(stage, out, cache_dir=cache_dir, root=root, force=True)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(result: BuildResult, stage: str) -> str:
    template = result.template
    counts = Counter(str(resource.get("Type")) for resource in resources(template).values())
    out = _shown(result.out)
    lines = [f"{out}/{TEMPLATE_NAME}: {sum(counts.values())} resources"]
    lines += [f"  {count:3d} {kind}" for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    roles = {spec.name: spec.role for spec in ARTIFACTS}
    width = max(len(artifact.name) for artifact in result.artifacts)
    for artifact in result.artifacts:
        budget = "" if artifact.unzipped_bytes <= ARTIFACT_BUDGET_BYTES else "  OVER THE BUDGET"
        lines.append(
            f"{out}/{artifact.name:<{width}} {_mb(artifact.zipped_bytes):>9}  {roles.get(artifact.name, '')}: "
            f"{len(artifact.functions)} functions, {artifact.files} files, {_mb(artifact.unzipped_bytes)} unzipped "
            f"(budget {_mb(ARTIFACT_BUDGET_BYTES)}; Lambda's limit 250 MB){budget}"
        )
    if result.definitions:
        lines.append(f"{out}/: {', '.join(result.definitions)} (state machine definitions)")
    built = ", ".join(result.rebuilt) if result.rebuilt else "nothing: the inputs are unchanged"
    lines += [
        f"built {built} in {result.seconds:.1f} s",
        "next:",
        f"  aws cloudformation package --template-file {out}/{TEMPLATE_NAME} --s3-bucket ARTIFACT_BUCKET "
        f"--output-template-file {out}/packaged.yaml",
        f"  aws cloudformation deploy --template-file {out}/packaged.yaml --stack-name mmedeploy-{stage} "
        "--capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND "
        f"--parameter-overrides Stage={stage}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmedeploy.deploy.package", description="build build/STAGE/ for `aws cloudformation package`"
    )
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json (dev, staging, prod)")
    parser.add_argument("--out", type=Path, help="output folder (default: build/STAGE)")
    parser.add_argument("--cache-dir", type=Path, help="dependency cache (default: build/.cache)")
    parser.add_argument("--force", action="store_true", help="rebuild every part, even with unchanged inputs")
    args = parser.parse_args(argv)
    try:
        out = args.out or project().build / args.stage
        result = ensure_built(args.stage, out, cache_dir=args.cache_dir, force=args.force)
    except PackageError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("package: interrupted", file=sys.stderr)
        return 130
    print(summary(result, args.stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
