"""Import a packaged Lambda handler from its artifact, as Lambda's runtime would, and time it.

For the handler-import test (tests/unit/test_lambda_artifacts.py) and ``make bench-cold-start``:
each ``AWS::Serverless::Function`` of the packaged template names a ``Handler`` and a ``CodeUri``
zip; :func:`unpack` extracts the zip into a task root, and :func:`clean_import` imports the
handler there in a fresh interpreter of the function's ``Runtime``: ``python3.X -I -S -B`` (no user
site, no site-packages, no environment of the caller's Python, no bytecode written), with only the
task root on ``sys.path``, the task root as the working directory, and as environment exactly the
function's template ``Environment`` (resolved, with placeholders where only a deployment knows the
value) plus what Lambda sets itself. It reports the import's duration and any module loaded from
outside the task root and the standard library, which would be a dependency the artifact lacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mmedeploy.deploy.template import (
    SERVERLESS_FUNCTION,
    Template,
    effective_property,
    properties,
    resources_of_type,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
# Lambda's baseline for "import time": the SDK and one client, in the same interpreter and task root.
BASELINE = 'import boto3; boto3.client("dynamodb")'
_PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}

# Runs in the clean interpreter: argv = task root, then code to time; prints one JSON line.
_PROBE = """
import json, sys, time
root = sys.argv[1]
sys.path[:0] = [root]
started = time.perf_counter()
exec(sys.argv[2])
seconds = time.perf_counter() - started
allowed = (root + "/", sys.argv[3] + "/")
foreign = sorted(
    name for name, module in list(sys.modules.items())
    if isinstance(getattr(module, "__file__", None), str) and not module.__file__.startswith(allowed)
)
print(json.dumps({"seconds": seconds, "foreign": foreign, "modules": len(sys.modules)}))
"""


@dataclass(frozen=True)
class PackagedFunction:
    logical_id: str
    handler: str  # module.attribute
    code_uri: str  # relative to the template's folder
    runtime: str  # python3.12
    memory_mb: int
    environment: dict[str, str]  # the template's Environment, resolved

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]

    def import_code(self) -> str:
        """What Lambda's runtime does with ``Handler``: import the module, look the callable up."""
        return (
            f"import importlib; _h = getattr(importlib.import_module({self.module!r}), {self.attribute!r}); "
            "assert callable(_h), 'the handler is not callable'"
        )


def resolve(value: Any, template: Template) -> str:
    """A template value as a string: parameters by their default, pseudo parameters as in
    ``us-east-1`` of account 123456789012, anything else (a resource's name, an ARN) as a
    placeholder that names it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Ref" and isinstance(inner, str):
            return _ref(inner, template)
        if key == "Fn::GetAtt":
            parts = inner.split(".", 1) if isinstance(inner, str) else [str(part) for part in inner]
            return "-".join(parts).lower()
        if key == "Fn::Sub":
            text, local = (inner[0], inner[1]) if isinstance(inner, list) else (inner, {})
            out = str(text)
            for name, sub in (local or {}).items():
                out = out.replace("${" + name + "}", resolve(sub, template))
            while "${" in out:
                start = out.index("${")
                end = out.index("}", start)
                name = out[start + 2 : end]
                out = out[:start] + _ref(name.split(".", 1)[0], template) + out[end + 1 :]
            return out
    return "placeholder"


def _ref(name: str, template: Template) -> str:
    if name in _PSEUDO:
        return _PSEUDO[name]
    parameter = template.get("Parameters", {}).get(name)
    if isinstance(parameter, dict) and "Default" in parameter:
        return resolve(parameter["Default"], template)
    return name.lower()


def packaged_functions(template: Template) -> list[PackagedFunction]:
    """Every serverless function of the packaged template, in template order."""
    found = []
    for lid, resource in resources_of_type(template, SERVERLESS_FUNCTION).items():
        props = properties(resource)
        environment = dict(
            (effective_property(template, {}, "Environment") or {}).get("Variables", {}),
            **(props.get("Environment") or {}).get("Variables", {}),
        )
        found.append(
            PackagedFunction(
                logical_id=lid,
                handler=str(props.get("Handler")),
                code_uri=str(props.get("CodeUri")),
                runtime=str(effective_property(template, resource, "Runtime")),
                memory_mb=int(effective_property(template, resource, "MemorySize") or 128),
                environment={name: resolve(value, template) for name, value in environment.items()},
            )
        )
    return found


def unpack(artifact: Path, task_root: Path) -> Path:
    """Extract ``artifact`` into ``task_root`` (emptied first) with the zip's file modes."""
    shutil.rmtree(task_root, ignore_errors=True)
    task_root.mkdir(parents=True)
    with zipfile.ZipFile(artifact) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise ValueError(f"{artifact}: unsafe member {info.filename}")
            archive.extract(info, task_root)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                (task_root / name).chmod(mode)
    return task_root


def lambda_environment(function: PackagedFunction, task_root: Path) -> dict[str, str]:
    """The function's template environment and what Lambda sets itself; nothing of the caller's."""
    name = f"mmedeploy-{function.logical_id}"
    return {
        **function.environment,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIAPLACEHOLDER",
        "AWS_SECRET_ACCESS_KEY": "placeholder",
        "AWS_SESSION_TOKEN": "placeholder",
        "_HANDLER": function.handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(task_root),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


def interpreter(runtime: str) -> str | None:
    """An interpreter of ``runtime`` (``python3.12``): this one when it is that version, else one
    on PATH; None when there is none."""
    if runtime == f"python{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    return shutil.which(runtime)


@dataclass(frozen=True)
class ImportResult:
    ok: bool
    seconds: float
    error: str  # the failure's last lines when not ok
    foreign: tuple[str, ...]  # modules loaded from outside the task root and the standard library
    modules: int


def clean_import(code: str, task_root: Path, environment: Mapping[str, str], python: str) -> ImportResult:
    """Run ``code`` (an import) in ``python -I -S -B`` with only ``task_root`` on the path."""
    stdlib = sysconfig.get_paths()["stdlib"] if python == sys.executable else _stdlib_of(python)
    done = subprocess.run(
        [python, "-I", "-S", "-B", "-c", _PROBE, str(task_root.resolve()), code, stdlib],
        cwd=task_root,
        env=dict(environment),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return ImportResult(False, 0.0, "\n".join(lines[-3:]) or f"exit {done.returncode}", (), 0)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return ImportResult(True, float(report["seconds"]), "", tuple(report["foreign"]), int(report["modules"]))


def _stdlib_of(python: str) -> str:
    done = subprocess.run(
        [python, "-I", "-S", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    return done.stdout.strip()
