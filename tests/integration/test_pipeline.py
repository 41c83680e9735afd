"""The DeployModel pipeline end to end on the local stack: an upload to the staging bucket is
validated, warmed on the staging MME, smoke-tested and announced, or ends with a reason."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import SETTLED, Status
from chalicelib.domain.records import ModelVersion
from examples.build_examples import MODELS
from mmedeploy.local.stack import StackInfo
from mmedeploy.packaging import package
from testkit.slack import slack_messages
from testkit.stack_process import mmedeploy
from testkit.tarballs import ECHO_MODEL, echo_repo, gz, info, pack, raw_tar
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKEN_MODEL = b"""class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights file missing: cannot initialise")

    def execute(self, requests):
        return []
"""


@pytest.fixture(scope="module")
def registry(local_stack: StackInfo, aws: Callable[[str], Any]) -> ModelRegistry:
    return ModelRegistry(local_stack.registry_table, aws("dynamodb"))


@pytest.fixture(scope="module")
def upload(local_stack: StackInfo, aws: Callable[[str], Any]) -> Callable[[str, bytes], dict[str, Any]]:
    s3 = aws("s3")

    def put(key: str, body: bytes) -> dict[str, Any]:
        response: dict[str, Any] = s3.put_object(Bucket=local_stack.staging_bucket, Key=key, Body=body)
        return response

    return put


def settled(registry: ModelRegistry, name: str, version: str, timeout: float = 60) -> ModelVersion:
    def probe() -> ModelVersion | None:
        record = registry.find(name, version)
        return record if record and record.status in SETTLED else None

    wait_for(probe, timeout, f"{name} {version} to settle")
    return registry.get(name, version, with_history=True)


def error_codes(record: ModelVersion) -> set[str]:
    return {f.code.value for f in record.findings if f.severity.value == "error"}


def test_the_example_ensemble_reaches_awaiting_approval_with_a_slack_request(
    local_stack: StackInfo, registry: ModelRegistry, upload: Callable[[str, bytes], dict[str, Any]], tmp_path: Any
) -> None:
    # GIVEN the example ensemble packaged as a data scientist would
    tarball = package(MODELS / "idcheck", "idcheck", "7", tmp_path).path
    # WHEN it is dropped into the staging bucket
    upload(tarball.name, tarball.read_bytes())
    # THEN it is validated, warmed, smoke-tested with its shipped cases and waits for a decision
    record = settled(registry, "idcheck", "7")
    assert record.status is Status.AWAITING_APPROVAL, record.reason
    assert [h.status for h in record.history] == [
        Status.RECEIVED,
        Status.VALIDATING,
        Status.VALIDATED,
        Status.WARMING,
        Status.STAGED,
        Status.AWAITING_APPROVAL,
    ]
    assert record.sha256 == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert record.test_cases >= 1 and "shipped test case" in record.history[4].reason
    assert record.metrics["cold_load_ms"] > 0 and record.metrics["warm_p50_ms"] > 0
    assert record.approval_id and registry.find_approval(record.approval_id) is not None
    # AND the approver is asked in Slack, with buttons carrying only the short approval id
    requests = [m for m in slack_messages(local_stack) if record.approval_id in json.dumps(m["payload"])]
    assert len(requests) == 1 and requests[0]["method"] == "chat.postMessage"
    (actions,) = [b for b in requests[0]["payload"]["blocks"] if b["type"] == "actions"]
    buttons = actions["elements"]
    assert {b["action_id"]: b["value"] for b in buttons} == {
        "approve": record.approval_id,
        "decline": record.approval_id,
    }
    assert "task_token" not in json.dumps(requests[0]["payload"])
    # AND the message carries what the approver decides on
    shown = json.dumps(requests[0]["payload"]["blocks"])
    assert all(part in shown for part in ("idcheck", "`7`", str(record.sha256)[:12], "Staging warm p50"))


@pytest.mark.parametrize(
    ("case", "body", "expected"),
    [
        ("nogzip", b"this is not a gzip stream", "ARCHIVE_NOT_GZIP"),
        (
            "symlink",
            gz(raw_tar([(info("model_version.txt"), b"1\n"), info("evil", b"2", "/etc/passwd")])),
            "MEMBER_SYMLINK",
        ),
        (
            "traversal",
            gz(raw_tar([(info("model_version.txt"), b"1\n"), (info("../escape.py"), b"x")])),
            "MEMBER_PATH_TRAVERSAL",
        ),
        ("noconfig", pack({"model_version.txt": b"1\n", "m/1/model.py": ECHO_MODEL}), "REPO_NO_MODEL"),
        (
            "badconfig",
            pack({"model_version.txt": b"1\n", "m/config.pbtxt": b"name: ", "m/1/model.py": ECHO_MODEL}),
            "CONFIG_SYNTAX",
        ),
        (
            "noversionfile",
            pack({k: v for k, v in echo_repo("m", "1").items() if k != "model_version.txt"}),
            "VERSION_FILE_MISSING",
        ),
    ],
)
def test_each_kind_of_invalid_tarball_ends_rejected_with_its_finding(
    local_stack: StackInfo,
    local_stack_dir: Path,
    registry: ModelRegistry,
    upload: Callable[[str, bytes], dict[str, Any]],
    case: str,
    body: bytes,
    expected: str,
) -> None:
    name = f"invalid-{case}"
    upload(f"{name}_1.tar.gz", body)
    record = settled(registry, name, "1")
    assert record.status is Status.REJECTED
    assert expected in error_codes(record), record.findings
    assert expected in record.reason
    # what the data scientist sees
    shown = mmedeploy("status", name, "1", "--json", "--state-dir", str(local_stack_dir))
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["status"] == "REJECTED"
    assert expected in {f["code"] for f in report["findings"]}
    assert [h.status for h in record.history][-1] is Status.REJECTED
    # the data scientist hears about it in Slack too
    assert any(
        f"*{name}*" in json.dumps(m["payload"]) and "REJECTED" in json.dumps(m["payload"])
        for m in slack_messages(local_stack)
    )


def test_a_key_outside_the_naming_contract_is_recorded_rejected_not_dropped(
    registry: ModelRegistry, upload: Callable[[str, bytes], dict[str, Any]]
) -> None:
    upload("Bad Name v2.tar.gz", pack(echo_repo("m", "1")))
    record = wait_for(lambda: registry.find("Bad Name v2", "unnamed"), 20, "the rejected upload")
    assert record.status is Status.REJECTED
    assert error_codes(record) == {"NAME_INVALID"}


def test_a_model_whose_triton_load_fails_ends_failed_with_tritons_reason(
    registry: ModelRegistry, upload: Callable[[str, bytes], dict[str, Any]]
) -> None:
    upload("brokenload_1.tar.gz", pack(echo_repo("brokenload", "1", BROKEN_MODEL)))
    record = settled(registry, "brokenload", "1")
    assert record.status is Status.FAILED
    assert "ModelLoadFailed" in record.reason and "weights file missing" in record.reason
    assert [h.status for h in record.history][-2:] == [Status.WARMING, Status.FAILED]


def test_a_model_whose_outputs_break_its_config_ends_failed_by_the_smoke_test(
    registry: ModelRegistry, upload: Callable[[str, bytes], dict[str, Any]]
) -> None:
    silent = b"""import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([]) for _ in requests]
"""
    upload("silent_1.tar.gz", pack(echo_repo("silent", "1", silent)))
    record = settled(registry, "silent", "1")
    assert record.status is Status.FAILED
    assert "SmokeTestFailed" in record.reason and "OUT" in record.reason


def test_the_same_event_delivered_twice_gives_one_version_and_one_execution(
    local_stack: StackInfo,
    aws: Callable[[str], Any],
    registry: ModelRegistry,
    upload: Callable[[str, bytes], dict[str, Any]],
) -> None:
    put = upload("twice_1.tar.gz", pack(echo_repo("twice", "1")))
    first = settled(registry, "twice", "1")
    # WHEN EventBridge delivers the same S3 event again (at-least-once), straight to the handler
    event = {
        "version": "0",
        "id": "redelivered",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": local_stack.region,
        "resources": [],
        "detail": {
            "bucket": {"name": local_stack.staging_bucket},
            "object": {
                "key": "twice_1.tar.gz",
                "etag": put["ETag"].strip('"'),
                "version-id": put.get("VersionId"),
                "size": 1,
            },
        },
    }
    for _ in range(2):
        response = aws("lambda").invoke(
            FunctionName="mmedeploy-dev-OnModelUploaded", Payload=json.dumps(event).encode()
        )
        assert "FunctionError" not in response, response["Payload"].read()
    # THEN nothing new started: one version, one RECEIVED, one execution
    again = registry.get("twice", "1", with_history=True)
    assert [h.status for h in again.history] == [h.status for h in first.history]
    executions = aws("stepfunctions").list_executions(stateMachineArn=local_stack.deploy_state_machine)["executions"]
    assert sum(e["name"].startswith("twice_1-") for e in executions) == 1


def test_other_bytes_under_a_registered_version_are_refused_and_the_original_kept(
    local_stack: StackInfo,
    aws: Callable[[str], Any],
    registry: ModelRegistry,
    upload: Callable[[str, bytes], dict[str, Any]],
) -> None:
    original = pack(echo_repo("immutable", "1"))
    upload("immutable_1.tar.gz", original)
    before = settled(registry, "immutable", "1")
    assert before.status is Status.AWAITING_APPROVAL, before.reason
    # WHEN someone uploads different bytes under the same name and version
    upload("immutable_1.tar.gz", pack({**echo_repo("immutable", "1"), "immutable/1/extra.py": b"x = 1\n"}))
    after = wait_for(lambda: (r := registry.find("immutable", "1")) and r.rejected_uploads and r, 30, "the refusal")
    # THEN the upload is refused as an immutability violation; the version itself is untouched
    assert after.status is Status.AWAITING_APPROVAL
    assert after.rejected_uploads[0].reason.startswith("ARTIFACT_IMMUTABLE")
    # AND the registered bytes are current under the key again (the MME loads what is current)
    current = aws("s3").get_object(Bucket=local_stack.staging_bucket, Key="immutable_1.tar.gz")["Body"].read()
    assert hashlib.sha256(current).hexdigest() == before.sha256, after.rejected_uploads[0].reason
    # AND the same bytes uploaded again are a no-op
    upload("immutable_1.tar.gz", original)
    assert len(registry.get("immutable", "1").rejected_uploads) == 1


def test_twenty_tarballs_pushed_at_once_all_settle(
    registry: ModelRegistry, upload: Callable[[str, bytes], dict[str, Any]]
) -> None:
    names = [f"burst{i:02d}" for i in range(20)]
    bodies = {n: pack(echo_repo(n, "1")) if i % 4 else b"corrupt" for i, n in enumerate(names)}
    threads = [threading.Thread(target=upload, args=(f"{n}_1.tar.gz", bodies[n])) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = {n: settled(registry, n, "1", timeout=120).status for n in names}
    assert all(statuses[n] is Status.REJECTED for i, n in enumerate(names) if i % 4 == 0)
    assert all(statuses[n] is Status.AWAITING_APPROVAL for i, n in enumerate(names) if i % 4), statuses
