"""The local stack runs what ships: the packaged artifacts under AWS's runtime client, each
function under its own role with IAM enforced, one request per execution environment."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmedeploy.deploy.package import ensure_built
from mmedeploy.local.stack import StackInfo
from testkit.stack_process import ROOT, start_stack, stop_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_concurrent_clients_each_get_the_answer_to_their_own_request(local_stack: StackInfo) -> None:
    # GIVEN four clients asking at once about four different models
    names = [f"model-{i}" for i in range(4)]
    wrong: list[str] = []

    def client(name: str) -> None:
        for version in range(1, 11):
            status, _, body = _get(f"{local_stack.api_url}/models/{name}/versions/{version}", local_stack.api_token)
            # THEN every answer is about its own request (none is another's)
            if status != 404 or body != {"error": f"model {name} has no version {version}"}:
                wrong.append(f"{name} {version}: {status} {body}")

    threads = [threading.Thread(target=client, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_call_outside_the_functions_role_is_refused_by_the_emulator(
    aws: Callable[[str], Any], make_function: Callable[[str, str], str]
) -> None:
    # GIVEN a function whose role allows only its own bucket (conftest.SEAM_POLICY)
    make_function("seam-outside-role", "write_elsewhere")
    # WHEN it writes to another bucket
    answer = aws("lambda").invoke(FunctionName="seam-outside-role", Payload=b'{"bucket": "mmedeploy-production"}')
    payload = json.loads(answer["Payload"].read())
    # THEN the emulator refuses it as AWS would, and the function fails with that error
    assert answer.get("FunctionError") == "Unhandled"
    assert "(AccessDenied) when calling the PutObject operation" in payload["errorMessage"]


def test_the_functions_log_group_holds_its_invocations(local_stack: StackInfo, aws: Callable[[str], Any]) -> None:
    assert _get(f"{local_stack.api_url}/health")[0] == 200
    logs = aws("logs")

    def reports() -> list[str]:
        found = logs.filter_log_events(logGroupName="/aws/lambda/mmedeploy-dev-APIHandler")["events"]
        return [event["message"] for event in found if event["message"].startswith("REPORT RequestId:")]

    from tests.integration.conftest import wait_for

    assert wait_for(reports, timeout=10, what="the API function's REPORT lines in CloudWatch Logs")


def _tree_without(tmp_path: Path, requirement: str) -> Path:
    """A copy of what the package is built from, with one line dropped from requirements.txt."""
    tree = tmp_path / "tree"
    for name in ("app.py", "chalicelib", "functions", ".chalice", "infra", "mmedeploy/deploy", "requirements.txt"):
        source, target = ROOT / name, tree / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "deployments", "venv"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if not line.lower().startswith(requirement)]
    assert len(kept) == len(lines) - 1, f"requirements.txt has no single {requirement} line"
    (tree / "requirements.txt").write_text("\n".join(kept) + "\n")
    return tree


def test_an_api_artifact_missing_a_dependency_answers_502_with_import_module_error(tmp_path: Path) -> None:
    # GIVEN the package built from a tree whose API requirements lack Powertools (which app.py imports)
    tree = _tree_without(tmp_path, "aws-lambda-powertools")
    package = ensure_built("dev", tmp_path / "build", cache_dir=ROOT / "build" / ".cache", root=tree).out
    state = tmp_path / ".mmedeploy"
    info = start_stack(state, extra=("--package-dir", str(package)))
    try:
        # WHEN a client calls the API
        status, headers, body = _get(f"{info.api_url}/health")
        # THEN the gateway answers 502 as API Gateway does for a function that cannot start, and
        # the function's log says why, in Lambda's words
        assert status == 502 and body == {"error": "Internal server error"}
        assert headers["X-Mmedeploy-Local-Gateway-Detail"].startswith("Runtime.ImportModuleError")
        log = (state / "logs" / "mmedeploy-dev-APIHandler.log").read_text()
        assert "Unable to import module 'app': No module named 'aws_lambda_powertools'" in log
    finally:
        stop_stack(state)
