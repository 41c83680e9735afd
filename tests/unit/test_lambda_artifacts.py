"""What ships is what imports: every handler the packaged template names imports from its own
artifact, alone, as Lambda's runtime imports it.

Each ``AWS::Serverless::Function`` of ``build/staging/sam.yaml`` (the ``staging_package`` fixture)
names a ``Handler`` and a ``CodeUri`` zip. The zip is unzipped into a task root and the handler is
imported in a clean interpreter of the function's ``Runtime`` (``python3.12 -I -S -B``: only the
task root on ``sys.path``, the task root as working directory, the function's template
environment plus what Lambda sets; see :mod:`mmedeploy.deploy.cold_start`).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from mmedeploy.deploy.cold_start import (
    ImportResult,
    PackagedFunction,
    clean_import,
    interpreter,
    lambda_environment,
    packaged_functions,
    unpack,
)
from mmedeploy.deploy.package import ARTIFACT_BUDGET_BYTES, CHALICE_ZIP, BuildResult
from mmedeploy.deploy.template import FUNCTIONS_ZIP

# with pytest-xdist (make test-unit), on one worker: they share build/staging (the staging_package fixture)
pytestmark = pytest.mark.xdist_group("staging_package")

# What the Chalice app (API, authorizer, upload trigger) must neither ship nor import: the
# validator, the warm-up's smoke tests and their dependencies.
NOT_IN_THE_APP = (
    "chalicelib/domain/validation/validator.py",
    "chalicelib/domain/validation/archive.py",
    "chalicelib/stages/smoke_test.py",
    "chalicelib/stage_composition.py",
    "functions/",
    "isal/",
    "google/protobuf/",
)
# What no artifact ships: nothing in a Lambda computes on tensors or speaks gRPC, and no X-Ray SDK
# (Lambda's active tracing records each invocation without it).
NOWHERE = (
    "aws_xray_sdk/",
    "numpy/",
    "onnx/",
    "grpc/",
    "tritonclient/",
    "ml_dtypes/",
    "tests/",
    "mmedeploy/",
    "examples/",
)


@pytest.fixture(scope="module")
def task_roots(staging_package: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each artifact unzipped once: ``{CodeUri: task root}``."""
    folder = tmp_path_factory.mktemp("task-roots")
    codes = sorted({function.code_uri for function in packaged_functions(staging_package.template)})
    return {code: unpack(staging_package.out / code, folder / Path(code).stem) for code in codes}


def _import(function: PackagedFunction, root: Path, code: str | None = None) -> ImportResult:
    python = interpreter(function.runtime)
    if python is None:
        pytest.fail(f"{function.logical_id}: no {function.runtime} interpreter to import it with", pytrace=False)
    return clean_import(code or function.import_code(), root, lambda_environment(function, root), python)


def test_every_packaged_handler_imports_from_its_artifact_alone(
    staging_package: BuildResult, task_roots: dict[str, Path]
) -> None:
    functions = packaged_functions(staging_package.template)
    assert {f.code_uri for f in functions} == {f"./{CHALICE_ZIP}", f"./{FUNCTIONS_ZIP}"}
    assert len(functions) == 14  # the API, its authorizer, the upload trigger, ten stage Lambdas, the reconciler

    failures = []
    for function in functions:
        assert function.runtime == "python3.12", f"{function.logical_id}: Runtime {function.runtime}"
        result = _import(function, task_roots[function.code_uri])
        if not result.ok:
            failures.append(f"{function.logical_id} ({function.handler} from {function.code_uri}):\n{result.error}")
        elif result.foreign:
            failures.append(f"{function.logical_id}: loaded from outside its artifact: {', '.join(result.foreign)}")
    assert not failures, "\n".join(failures)


def test_the_clean_interpreter_sees_nothing_but_the_artifact(
    staging_package: BuildResult, task_roots: dict[str, Path], tmp_path: Path
) -> None:
    # The control: with a dependency taken out of a copy of the API's task root, the handler no
    # longer imports, although the test's own environment has that dependency installed.
    (api,) = [f for f in packaged_functions(staging_package.template) if f.handler == "app.app"]
    root = tmp_path / "task"
    shutil.copytree(task_roots[api.code_uri], root)
    shutil.rmtree(root / "pydantic_settings")

    result = _import(api, root)

    assert not result.ok
    assert "ModuleNotFoundError: No module named 'pydantic_settings'" in result.error


def test_the_chalice_app_ships_and_imports_only_what_serves_requests(
    staging_package: BuildResult, task_roots: dict[str, Path]
) -> None:
    with zipfile.ZipFile(staging_package.out / CHALICE_ZIP) as archive:
        names = archive.namelist()
    assert "app.py" in names and "chalice/app.py" in names and "chalicelib/composition.py" in names
    shipped = sorted(name for name in names if name.startswith(NOT_IN_THE_APP + NOWHERE))
    assert not shipped, f"{CHALICE_ZIP} holds what only the stage Lambdas use: {shipped[:5]}"

    (api,) = [f for f in packaged_functions(staging_package.template) if f.handler == "app.app"]
    probe = (
        f"{api.import_code()}; import sys; "
        "_heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('slack_sdk', 'aws_xray_sdk', 'isal', 'google')"
        " or m.startswith(('chalicelib.domain.validation.validator', 'chalicelib.stages.smoke_test')) "
        "or 'idempotency' in m); assert not _heavy, _heavy"
    )
    result = _import(api, task_roots[api.code_uri], probe)
    assert result.ok, f"the API's cold start imports what it does not serve requests with:\n{result.error}"
    # AND what the API builds on first use only (the reconciler, for a decision whose task is gone)
    # ships too: an import inside a function fails on AWS only when it is first needed
    later = (
        f"{api.import_code()}; from chalicelib import composition; composition.execution_ended; import chalicelib.sweep"
    )
    built = _import(api, task_roots[api.code_uri], later)
    assert built.ok, f"the API's artifact lacks what it builds on first use:\n{built.error}"


def test_the_stage_lambdas_ship_the_validator_without_tensor_libraries(staging_package: BuildResult) -> None:
    with zipfile.ZipFile(staging_package.out / FUNCTIONS_ZIP) as archive:
        names = set(archive.namelist())
    assert {
        "functions/validate.py",
        "chalicelib/domain/validation/validator.py",
        "chalicelib/domain/validation/schemas/model_config_pb2.py",
        "chalicelib/domain/validation/schemas/onnx_interface_pb2.py",
        "isal/__init__.py",
        "google/protobuf/__init__.py",
    } <= names
    assert not sorted(name for name in names if name.startswith(NOWHERE))
    own = {name for name in names if name.startswith(("chalicelib/", "functions/"))}
    assert not {name for name in own if not name.endswith((".py", ".pyc"))}, "only modules of the app's own code"


def test_every_artifact_is_within_the_budget_and_ships_its_bytecode(staging_package: BuildResult) -> None:
    for artifact in staging_package.artifacts:
        assert artifact.unzipped_bytes <= ARTIFACT_BUDGET_BYTES, (
            f"{artifact.name}: {artifact.unzipped_bytes / 1e6:.1f} MB unzipped, over the "
            f"{ARTIFACT_BUDGET_BYTES / 1e6:.0f} MB budget"
        )
        with zipfile.ZipFile(artifact.path) as archive:
            names = set(archive.namelist())
        sources = [n for n in names if n.endswith(".py") and n.startswith(("app.py", "chalicelib/", "functions/"))]
        assert sources
        for source in sources:
            folder, _, module = source.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{module[:-3]}.cpython-312.pyc"
            assert pyc in names, f"{artifact.name}: {source} has no bytecode ({pyc})"
