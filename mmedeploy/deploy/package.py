"""``python -m mmedeploy.deploy.package --stage STAGE [--out build/STAGE]`` (``make package``).

Builds what ``aws cloudformation package`` uploads and deploys, in ``build/STAGE/``:

- ``sam.yaml``: Chalice's SAM template with ``infra/template.yaml`` merged in, every artifact a
  literal path next to it (:func:`mmedeploy.deploy.template.make_packageable`);
- ``deployment.zip``: the Chalice app (API handler, authorizer, ``on_model_uploaded``), from
  ``chalice package``;
- ``functions.zip``: the stage Lambdas (``functions/``, ``chalicelib/`` and
  ``functions/requirements.txt``), see :mod:`mmedeploy.deploy.lambda_zip`;
- the state machines' ASL files.

The folder is assembled beside its final place and swapped in only when complete, so a failed
build leaves the previous one as it was. Exit 0 with a summary; 1 with a one-line reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mmedeploy.deploy.lambda_zip import (
    LambdaZipError,
    ZipResult,
    dependency_files,
    install_dependencies,
    lambda_target,
    merge_files,
    tree_files,
    write_zip,
)
from mmedeploy.deploy.template import (
    FUNCTIONS_ZIP,
    Packageable,
    TemplateError,
    dump_template,
    load_template,
    make_packageable,
    missing_artifacts,
    resources,
)

ROOT = Path(__file__).resolve().parents[2]
MERGE_TEMPLATE = Path("infra/template.yaml")
FUNCTIONS_REQUIREMENTS = Path("functions/requirements.txt")
APP_TREES = ("functions", "chalicelib")
TEMPLATE_NAME = "sam.yaml"
CHALICE_ZIP = "deployment.zip"
DEFAULT_REGION = "us-east-1"  # chalice package needs a region to name ARNs; no credentials


class PackageError(Exception):
    """The build failed; the message says why, on one line."""


@dataclasses.dataclass(frozen=True)
class BuildResult:
    out: Path
    template: Packageable
    functions_zip: ZipResult
    chalice_zip: Path
    runtime: str


def stages(root: Path = ROOT) -> list[str]:
    config = root / ".chalice" / "config.json"
    try:
        return sorted(json.loads(config.read_text())["stages"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"cannot read the stages from {config}: {exc}") from exc


def run_chalice_package(stage: str, out: Path, root: Path = ROOT) -> None:
    """``chalice package --stage STAGE --merge-template infra/template.yaml OUT`` in this venv."""
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


def build_functions_zip(template: Packageable, out: Path, cache_dir: Path, root: Path = ROOT) -> tuple[ZipResult, str]:
    """``out/functions.zip`` for the template's stage functions, and the runtime it targets."""
    functions = {lid: resources(template.template)[lid] for lid in template.stage_functions}
    target = lambda_target(template.template, functions)
    site = install_dependencies(root / FUNCTIONS_REQUIREMENTS, target, cache_dir)
    app = [tree_files(root / tree, f"{tree}/") for tree in APP_TREES]
    return write_zip(merge_files(dependency_files(site), *app), out / FUNCTIONS_ZIP), str(target)


def _replace_dir(partial: Path, out: Path) -> None:
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / TEMPLATE_NAME).is_file()):
            raise PackageError(f"{out} exists and is not an earlier package output; remove it or pick another --out")
        shutil.rmtree(out)
    partial.rename(out)


def build(stage: str, out: Path, *, cache_dir: Path | None = None, root: Path = ROOT) -> BuildResult:
    """Build ``out`` (see the module's docstring); :class:`PackageError` on any failure."""
    known = stages(root)
    if stage not in known:
        raise PackageError(f"unknown stage {stage!r}: .chalice/config.json has {', '.join(known)}")
    out = out.resolve()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        run_chalice_package(stage, partial, root)
        chalice_output = load_template(partial / TEMPLATE_NAME)
        packageable = make_packageable(chalice_output, source_root=root, functions_zip=f"./{FUNCTIONS_ZIP}")
        # Chalice names its functions mmedeploy-STAGE*; the template's names and log-group grants
        # use the Stage parameter: a package defaults it to its own stage so the two agree.
        stage_parameter = packageable.template.get("Parameters", {}).get("Stage")
        if isinstance(stage_parameter, dict):
            stage_parameter["Default"] = stage
        if not packageable.stage_functions:
            raise PackageError(f"{MERGE_TEMPLATE} declares no stage functions (Handler: functions.<name>.handler)")
        functions_zip, runtime = build_functions_zip(packageable, partial, cache_dir or root / "build" / ".cache", root)
        for name, source in packageable.copies.items():
            shutil.copyfile(source, partial / name)
        (partial / TEMPLATE_NAME).write_text(dump_template(packageable.template))
        missing = missing_artifacts(packageable.template, partial)
        if missing:
            raise PackageError(f"artifacts missing next to {TEMPLATE_NAME}: {', '.join(missing)}")
        _replace_dir(partial, out)
    except (TemplateError, LambdaZipError) as exc:
        raise PackageError(str(exc)) from exc
    except OSError as exc:
        raise PackageError(f"{exc.filename or 'I/O'}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return BuildResult(
        out=out,
        template=packageable,
        functions_zip=dataclasses.replace(functions_zip, path=out / FUNCTIONS_ZIP),
        chalice_zip=out / CHALICE_ZIP,
        runtime=runtime,
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(result: BuildResult, stage: str) -> str:
    template = result.template.template
    counts = Counter(str(resource.get("Type")) for resource in resources(template).values())
    out = _shown(result.out)
    lines = [f"{out}/{TEMPLATE_NAME}: {sum(counts.values())} resources"]
    lines += [f"  {count:3d} {kind}" for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    zipped = result.functions_zip
    chalice_size = _mb(result.chalice_zip.stat().st_size)
    functions = len(result.template.stage_functions)
    lines += [
        f"{out}/{CHALICE_ZIP}  {chalice_size:>9}  the Chalice app (API, authorizer, upload trigger)",
        f"{out}/{FUNCTIONS_ZIP}   {_mb(zipped.zipped_bytes):>9}  {functions} stage functions ({result.runtime}; "
        f"{zipped.files} files, {_mb(zipped.unzipped_bytes)} unzipped of Lambda's 250 MB)",
    ]
    if result.template.copies:
        lines.append(f"{out}/: {', '.join(sorted(result.template.copies))} (state machine definitions)")
    lines += [
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
    args = parser.parse_args(argv)
    try:
        result = build(args.stage, args.out or ROOT / "build" / args.stage, cache_dir=args.cache_dir)
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
