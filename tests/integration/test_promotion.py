"""Approval, promotion and rollback end to end on the local stack: signed Slack interactions
against the webhook, PromoteModel through EventBridge and Step Functions, the production MME."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.approvals import Decision
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from mmedeploy.local.stack import StackInfo
from testkit.mme import runtime_client
from testkit.slack import click, slack_messages
from testkit.stack_process import mmedeploy
from testkit.tarballs import echo_repo, pack
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def scaled_model(factor: int) -> bytes:
    """A Python model answering OUT = IN * factor: which version serves shows in its answer."""
    return f"""import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            out = (data * {factor}).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", out)]))
        return responses
""".encode()


@pytest.fixture(scope="module")
def registry(local_stack: StackInfo, aws: Callable[[str], Any]) -> ModelRegistry:
    return ModelRegistry(local_stack.registry_table, aws("dynamodb"))


def reach(registry: ModelRegistry, name: str, version: str, statuses: set[Status], timeout: float = 90) -> ModelVersion:
    def probe() -> ModelVersion | None:
        record = registry.find(name, version)
        return record if record and record.status in statuses else None

    wait_for(probe, timeout, f"{name} {version} to become one of {sorted(statuses)}")
    return registry.get(name, version, with_history=True)


def staged(
    local_stack: StackInfo,
    aws: Callable[[str], Any],
    registry: ModelRegistry,
    name: str,
    version: str,
    factor: int = 1,
    code: bytes | None = None,
) -> ModelVersion:
    """``name`` ``version`` uploaded and AWAITING_APPROVAL: its model.py is ``code``, or answers OUT = IN * factor."""
    body = pack(echo_repo(name, version, code or scaled_model(factor)))
    aws("s3").put_object(Bucket=local_stack.staging_bucket, Key=f"{name}_{version}.tar.gz", Body=body)
    record = reach(registry, name, version, {Status.AWAITING_APPROVAL, Status.FAILED, Status.REJECTED})
    assert record.status is Status.AWAITING_APPROVAL, record.reason
    return record


def serving(local_stack: StackInfo, registry: ModelRegistry, name: str) -> tuple[str, float]:
    """(version the production alias points at, its answer's OUT[0] for IN = 1) from the production MME."""
    alias = registry.find_alias(name)
    assert alias is not None
    request = {"inputs": [{"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 1.0, 1.0, 1.0]}]}
    client = runtime_client(local_stack)
    answer = client.invoke_endpoint(
        EndpointName=local_stack.production_endpoint,
        TargetModel=f"{name}_{alias.version}.tar.gz",
        ContentType="application/json",
        Body=json.dumps(request).encode(),
    )
    outputs = json.loads(answer["Body"].read())["outputs"]
    return alias.version, float(outputs[0]["data"][0])


def history_of(registry: ModelRegistry, name: str, version: str) -> list[tuple[str, str]]:
    return [(h.status.value, h.actor) for h in registry.history(name, version)]


def test_forged_stale_or_unauthorised_clicks_change_nothing_and_a_double_click_decides_once(
    local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    record = staged(local_stack, aws, registry, "gate", "1", factor=1)
    approval = str(record.approval_id)
    before = history_of(registry, "gate", "1")

    def drop(header: str) -> Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]:
        return lambda body, headers: (body, {k: v for k, v in headers.items() if k != header})

    def tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body.replace(b"U0LOCALAPPROVER", b"U0LOCALAPPROVES"), headers

    refused = {
        "wrong secret": click(local_stack, approval, secret="not-the-signing-secret"),
        "stale timestamp": click(local_stack, approval, at=time.time() - 301),
        "no signature": click(local_stack, approval, change=drop("X-Slack-Signature")),
        "no timestamp": click(local_stack, approval, change=drop("X-Slack-Request-Timestamp")),
        "tampered body": click(local_stack, approval, change=tamper),
    }
    assert {why: status for why, (status, _) in refused.items()} == dict.fromkeys(refused, 401)
    assert all(answer["outcome"] == "invalid_signature" for _, answer in refused.values())
    status, answer = click(local_stack, approval, user="U0STRANGER")
    assert (status, answer["outcome"]) == (403, "forbidden") and "U0STRANGER" in answer["text"]
    assert history_of(registry, "gate", "1") == before
    assert registry.get("gate", "1").status is Status.AWAITING_APPROVAL

    # WHEN the approver clicks Approve twice, and Decline after it
    first = click(local_stack, approval)
    second = click(local_stack, approval)
    third = click(local_stack, approval, Decision.DECLINE)
    # THEN the first decides, answering at once; the others say who decided and change nothing
    assert first[0] == 200 and first[1]["outcome"] == "approved"
    for status, answer in (second, third):
        assert (status, answer["outcome"]) == (200, "already_decided")
        assert "slack:U0LOCALAPPROVER" in answer["text"]
    record = reach(registry, "gate", "1", {Status.PRODUCTION, Status.FAILED})
    assert record.status is Status.PRODUCTION, record.reason
    decided = [h for h in record.history if h.status is Status.APPROVED]
    assert [h.actor for h in decided] == ["slack:U0LOCALAPPROVER"]
    # AND the user who was refused was told so, only them (ephemeral, through the response_url)
    replies = [m for m in slack_messages(local_stack) if m["method"] == "response_url"]
    assert any("U0STRANGER" in m["payload"].get("text", "") for m in replies)
    assert all(m["payload"].get("response_type") == "ephemeral" for m in replies)


def test_approve_promotes_v2_replaces_v1_and_a_rollback_serves_v1_again(
    local_stack: StackInfo, local_stack_dir: Path, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    # GIVEN v1 approved in Slack
    v1 = staged(local_stack, aws, registry, "roll", "1", factor=1)
    assert click(local_stack, str(v1.approval_id))[1]["outcome"] == "approved"
    v1 = reach(registry, "roll", "1", {Status.PRODUCTION, Status.FAILED})
    # THEN it serves through the production MME, copied and warmed there first
    assert v1.status is Status.PRODUCTION, v1.reason
    assert serving(local_stack, registry, "roll") == ("1", 1.0)
    assert {"production_cold_load_ms", "production_warm_p50_ms"} <= set(v1.metrics)
    assert [h.status for h in v1.history][-3:] == [Status.PROMOTING, Status.PROMOTING, Status.PRODUCTION]
    head = aws("s3").head_object(Bucket=local_stack.production_bucket, Key="roll_1.tar.gz")
    assert head["Metadata"]["sha256"] == v1.sha256

    # WHEN v2 is approved
    v2 = staged(local_stack, aws, registry, "roll", "2", factor=2)
    assert click(local_stack, str(v2.approval_id))[1]["outcome"] == "approved"
    v2 = reach(registry, "roll", "2", {Status.PRODUCTION, Status.FAILED})
    # THEN v2 serves and v1 is RETIRED, kept for rollback
    assert v2.status is Status.PRODUCTION, v2.reason
    assert serving(local_stack, registry, "roll") == ("2", 2.0)
    assert registry.get("roll", "1").status is Status.RETIRED
    alias = registry.find_alias("roll")
    assert alias is not None and (alias.version, alias.previous) == ("2", "1")

    # WHEN the platform engineer rolls back (mmedeploy rollback, through the admin API)
    rolled = mmedeploy("rollback", "roll", "--json", "--state-dir", str(local_stack_dir), timeout=120)
    # THEN v1 is warmed again and serves; v2 is RETIRED; the move is announced as ModelRolledBack
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert registry.get("roll", "1").status is Status.PRODUCTION
    assert registry.get("roll", "2").status is Status.RETIRED
    assert serving(local_stack, registry, "roll") == ("1", 1.0)
    rolled_back = [h for h in registry.history("roll", "1") if h.status is Status.PRODUCTION]
    assert "rolled back" in rolled_back[-1].reason
    assert any(
        "rolled back to" in json.dumps(m["payload"]) and "roll" in json.dumps(m["payload"])
        for m in slack_messages(local_stack)
    )


def test_decline_declines_and_copies_nothing_to_production(
    local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    record = staged(local_stack, aws, registry, "nope", "1", factor=3)
    status, answer = click(local_stack, str(record.approval_id), Decision.DECLINE)
    assert (status, answer["outcome"]) == (200, "declined")
    record = reach(registry, "nope", "1", {Status.DECLINED})
    assert record.history[-1].actor == "slack:U0LOCALAPPROVER"
    assert "declined by slack:U0LOCALAPPROVER" in record.reason
    time.sleep(1)  # a promotion, had one started, would have copied by now
    listed = aws("s3").list_objects_v2(Bucket=local_stack.production_bucket, Prefix="nope_")
    assert "Contents" not in listed
    assert registry.find_alias("nope") is None
    # AND the approval message no longer offers buttons: it says DECLINED
    updates = [m for m in slack_messages(local_stack) if m["method"] == "chat.update"]
    mine = [m for m in updates if str(record.approval_id) in json.dumps(m["payload"])]
    assert mine and "DECLINED" in json.dumps(mine[-1]["payload"]["blocks"])
    assert '"actions"' not in json.dumps(mine[-1]["payload"]["blocks"])


def test_admin_routes_need_the_admin_token(local_stack: StackInfo) -> None:
    def post(path: str, token: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        headers.update({"Authorization": f"Bearer {token}"} if token else {})
        request = urllib.request.Request(f"{local_stack.api_url}{path}", data=b"", headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    for path in ("/models/nobody/rollback", "/models/nobody/versions/1/promote"):
        assert post(path, None) == 401
        assert post(path, "mmd_not-a-token") == 401  # unknown token
        assert post(path, local_stack.api_token) == 403  # invoke scope only
        assert post(path, local_stack.admin_token) == 404  # through, and the model is unknown


def test_two_promotions_at_once_one_wins_and_the_alias_points_at_a_warm_version(
    local_stack: StackInfo, aws: Callable[[str], Any], registry: ModelRegistry
) -> None:
    first = staged(local_stack, aws, registry, "race", "1", factor=1)
    second = staged(local_stack, aws, registry, "race", "2", factor=2)
    # WHEN both are approved at the same moment
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda r: click(local_stack, str(r.approval_id)), (first, second)))
    assert [a["outcome"] for _, a in answers] == ["approved", "approved"]
    ended = {Status.PRODUCTION, Status.FAILED, Status.RETIRED}
    records = [reach(registry, "race", v, ended) for v in ("1", "2")]
    # THEN exactly one serves; the other lost the race (FAILED, production untouched) or, if the
    # two happened one after the other after all, was replaced (RETIRED)
    winners = [r for r in records if r.status is Status.PRODUCTION]
    assert len(winners) == 1
    (loser,) = [r for r in records if r.status is not Status.PRODUCTION]
    if loser.status is Status.FAILED:
        assert "a concurrent promotion won" in loser.reason
    # AND the alias points at the winner, which answers on the production MME
    version, out = serving(local_stack, registry, "race")
    assert version == winners[0].version and out == float(version)
