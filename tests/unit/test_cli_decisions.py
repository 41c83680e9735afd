"""`mmedeploy approve|decline|promote|rollback` without a local stack: a tiny HTTP server stands in
for the API (it records each request and answers canned JSON, and the registry routes from the
registry) and the registry is on in-process moto, driven through ModelRegistry the way the
pipeline would drive it. The CLI reads it only through the API."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from slack_sdk.signature import SignatureVerifier

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.approvals import Decision
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from mmedeploy import cli
from mmedeploy.decision import interaction_payload, signed_form
from mmedeploy.follow import PromotionEnding, ending_of, follow_promotion
from mmedeploy.target import DeploymentTarget
from tests.unit.builders import a_version
from tests.unit.fake_api import FakeApi, Recorded, closed_port_url, serve_fake_api
from tests.unit.registry_table import TABLE

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVER = "U0APPROVER"
ADMIN_TOKEN = "admin-token-123"
SLACK_URL = "http://127.0.0.1:9/slack"
APPROVAL_ID = "apv_0123456789abcdef"


# -- the stand-in API ------------------------------------------------------------------------------
@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serve_fake_api() as fake:
        yield fake


@pytest.fixture
def stack(api: FakeApi, moto_session: boto3.session.Session) -> DeploymentTarget:
    """A DeploymentTarget on moto (registry table, emptied for each test) whose API is the stand-in,
    answering the registry routes from that table."""
    api.registry = ModelRegistry(TABLE, moto_session.client("dynamodb"))
    return DeploymentTarget(
        "the test stack",
        "us-east-1",
        "unit-staging",
        TABLE,
        moto_session,
        api_url=api.url,
        slack_url=SLACK_URL,
        slack_signing_secret=SECRET,
        slack_approver_ids=(APPROVER, "U0SECOND"),
        admin_token=ADMIN_TOKEN,
    )


def registry_of(deployment: DeploymentTarget) -> ModelRegistry:
    return ModelRegistry(TABLE, deployment.client("dynamodb"))


TO_AWAITING = [Status.VALIDATING, Status.VALIDATED, Status.WARMING, Status.STAGED, Status.AWAITING_APPROVAL]
TO_APPROVED = [*TO_AWAITING, Status.APPROVED]
TO_RETIRED = [*TO_APPROVED, Status.PROMOTING, Status.PRODUCTION, Status.RETIRED]


def put_version(
    deployment: DeploymentTarget, version: str, path: list[Status], approval_id: str | None = APPROVAL_ID
) -> None:
    registry = registry_of(deployment)
    registry.register(
        a_version(
            version,
            bucket="unit-staging",
            etag="etag",
            uploaded_at="2025-01-02T03:04:05.000Z",
            updated_at="2025-01-02T03:04:05.000Z",
        ),
        "s3-upload",
        "uploaded",
    )
    for status in path:
        changes = (lambda _: {"approval_id": approval_id}) if status is Status.AWAITING_APPROVAL else None
        registry.transition("fraud", version, status, "pipeline/test", f"now {status.value}", changes)


def move_later(
    deployment: DeploymentTarget, version: str, steps: list[tuple[float, Status, str]]
) -> Callable[[], None]:
    """A hook that moves the version through ``steps`` (delay, status, reason) in the background."""

    def run() -> None:
        registry = registry_of(deployment)
        for delay, status, reason in steps:
            time.sleep(delay)
            registry.transition("fraud", version, status, "pipeline/promote", reason)

    return lambda: threading.Thread(target=run, daemon=True).start()


# -- approve / decline -----------------------------------------------------------------------------
def form_payload(recorded: Recorded) -> dict[str, Any]:
    form = urllib.parse.parse_qs(recorded.body.decode())
    assert list(form) == ["payload"]
    document: dict[str, Any] = json.loads(form["payload"][0])
    return document


def test_approve_posts_a_correctly_signed_block_actions_interaction(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(stack, "1", TO_AWAITING)
    api.answer(
        "POST",
        "/slack/interactions",
        200,
        {"ok": True, "outcome": "approved", "text": "fraud 1 approved by <@U0APPROVER>", "status": "APPROVED"},
    )
    before = int(time.time())
    assert cli.main(["approve", "fraud", "1"], target=stack) == 0

    sent = api.only()
    assert sent.path == "/slack/interactions"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    timestamp, signature = sent.headers["x-slack-request-timestamp"], sent.headers["x-slack-signature"]
    assert before <= int(timestamp) <= time.time() + 1 and signature.startswith("v0=")
    assert SignatureVerifier(SECRET).is_valid(sent.body, timestamp, signature)
    assert not SignatureVerifier("another-secret").is_valid(sent.body, timestamp, signature)

    payload = form_payload(sent)
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": APPROVER, "username": APPROVER}  # the first approver by default
    assert payload["team"] == {"id": "T0LOCAL"} and payload["api_app_id"] == "A0MMEDEPLOY"
    assert payload["trigger_id"]
    assert payload["container"]["type"] == "message" and payload["container"]["channel_id"] == "C0LOCAL"
    assert payload["container"]["message_ts"] and payload["channel"] == {"id": "C0LOCAL"}
    assert payload["response_url"] == f"{SLACK_URL}/actions/{APPROVAL_ID}"
    [action] = payload["actions"]
    assert (action["type"], action["action_id"], action["block_id"], action["value"]) == (
        "button",
        "approve",
        "approval",
        APPROVAL_ID,
    )
    assert float(action["action_ts"]) >= before

    out = capsys.readouterr().out
    assert "fraud 1 approved by <@U0APPROVER>" in out and "APPROVED" in out
    assert "mmedeploy status fraud 1 --watch" in out


@pytest.mark.parametrize(
    ("command", "notice"),
    [
        ("decline", []),
        # the former name: hidden, deprecated, still working (stdout as before: scripts keep working)
        ("reject", ["mmedeploy reject: deprecated, use 'mmedeploy decline' (it does the same)"]),
    ],
)
def test_decline_as_another_user_prints_the_answer_as_json(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str], command: str, notice: list[str]
) -> None:
    put_version(stack, "1", TO_AWAITING)
    answer = {"ok": True, "outcome": "declined", "text": "fraud 1 declined", "status": "DECLINED"}
    api.answer("POST", "/slack/interactions", 200, answer)
    assert cli.main([command, "fraud", "1", "--user", "U0SECOND", "--json"], target=stack) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {**answer, "http_status": 200}
    assert captured.err.splitlines() == notice
    payload = form_payload(api.only())
    assert payload["user"]["id"] == "U0SECOND"
    assert payload["actions"][0]["action_id"] == "decline" and payload["actions"][0]["value"] == APPROVAL_ID


def test_reject_is_hidden_from_the_help_and_says_declined(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(stack, "1", TO_AWAITING)
    refused = {"ok": False, "outcome": "already_decided", "text": "already DECLINED", "status": "DECLINED"}
    api.answer("POST", "/slack/interactions", 200, refused)
    assert cli.main(["reject", "fraud", "1"], target=stack) == 1
    assert "not declined (already_decided)" in capsys.readouterr().err

    assert cli.main(["--help"]) == 0
    listed = capsys.readouterr().out
    commands = [line.split()[0] for line in listed.splitlines() if line.startswith("    ") and line.split()]
    assert "decline" in commands and "reject" not in commands
    assert ",decline," in listed and ",reject" not in listed and "reject," not in listed  # the usage line


def test_the_click_names_the_approval_message_the_registry_keeps(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = registry_of(stack)
    approval = registry.put_approval("fraud", "1", "task-token")
    registry.set_approval_message(approval.approval_id, "C0APPROVALS", "1700000000.123456")
    put_version(stack, "1", TO_AWAITING, approval_id=approval.approval_id)
    api.answer(
        "POST", "/slack/interactions", 200, {"ok": True, "outcome": "approved", "text": "ok", "status": "APPROVED"}
    )
    assert cli.main(["approve", "fraud", "1"], target=stack) == 0
    payload = form_payload(api.only())
    assert payload["container"] == {"type": "message", "message_ts": "1700000000.123456", "channel_id": "C0APPROVALS"}
    assert payload["channel"] == {"id": "C0APPROVALS"}
    assert payload["actions"][0]["value"] == approval.approval_id
    assert "task-token" not in api.only().body.decode()


@pytest.mark.parametrize(
    ("status", "answer", "message"),
    [
        (200, {"ok": False, "outcome": "already_decided", "text": "already APPROVED", "status": "APPROVED"},
         "not approved (already_decided): already APPROVED; it is APPROVED"),
        (200, {"ok": False, "outcome": "expired", "text": "the approval expired", "status": "EXPIRED"},
         "not approved (expired)"),
        (401, {"ok": False, "outcome": "bad_signature", "text": "invalid signature", "status": None},
         "refused the signature (HTTP 401): invalid signature"),
        (403, {"ok": False, "outcome": "forbidden", "text": "not an approver", "status": None},
         "Slack user U0APPROVER may not decide (HTTP 403): not an approver; approvers: U0APPROVER, U0SECOND"),
        (400, {"ok": False, "outcome": "malformed", "text": "no payload", "status": None}, "malformed (HTTP 400)"),
    ],
)  # fmt: skip
def test_a_decision_not_taken_exits_1_and_says_why(
    api: FakeApi,
    stack: DeploymentTarget,
    capsys: pytest.CaptureFixture[str],
    status: int,
    answer: dict[str, Any],
    message: str,
) -> None:
    put_version(stack, "1", TO_AWAITING)
    api.answer("POST", "/slack/interactions", status, answer)
    assert cli.main(["approve", "fraud", "1"], target=stack) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

    assert cli.main(["approve", "fraud", "1", "--json"], target=stack) == 1
    assert json.loads(capsys.readouterr().out) == {**answer, "http_status": status}


def test_approve_without_a_version_or_an_approval(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["approve", "fraud", "9"], target=stack) == cli.EXIT_NOT_FOUND
    assert "no version 9 of model fraud" in capsys.readouterr().err

    put_version(stack, "2", [Status.VALIDATING, Status.VALIDATED, Status.WARMING])
    assert cli.main(["reject", "fraud", "2"], target=stack) == 1
    err = capsys.readouterr().err
    assert "no approval was requested for fraud 2" in err and "WARMING" in err
    assert {(sent.method, sent.path) for sent in api.requests} == {
        ("GET", "/models/fraud/versions/9"),
        ("GET", "/models/fraud/versions/2"),
    }  # read through the API, nothing posted


def test_approve_when_the_api_does_not_answer_exits_2_and_says_how_to_start_the_stack(
    stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(stack, "1", TO_AWAITING)
    down = replace(stack, api_url=closed_port_url())
    assert cli.main(["approve", "fraud", "1", "--state-dir", "elsewhere"], target=down) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "may not be running" in err and "mmedeploy up --detach --state-dir elsewhere" in err
    assert cli.main(["promote", "fraud", "1", "--no-wait"], target=down) == cli.EXIT_USAGE
    assert "may not be running" in capsys.readouterr().err


def test_approve_needs_a_user_and_a_stack(
    stack: DeploymentTarget, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = replace(stack, slack_approver_ids=())
    assert cli.main(["approve", "fraud", "1"], target=nobody) == cli.EXIT_USAGE
    assert "give --user SLACK_USER_ID" in capsys.readouterr().err
    assert cli.main(["approve", "fraud", "1", "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE  # no target given
    assert "no local stack is running" in capsys.readouterr().err


def test_signed_form_is_what_slack_sends() -> None:
    payload = interaction_payload(Decision.DECLINE, APPROVAL_ID, "U1", "http://sink/", "123.000100", 1700000000.5)
    body, headers = signed_form(SECRET, payload, 1700000000)
    assert body.startswith(b"payload=%7B")
    assert json.loads(urllib.parse.parse_qs(body.decode())["payload"][0]) == payload
    assert payload["response_url"] == f"http://sink/actions/{APPROVAL_ID}"
    verifier = SignatureVerifier(SECRET, clock=type("Fixed", (), {"now": lambda self: 1700000010.0})())
    assert verifier.is_valid_request(body, headers)


# -- promote / rollback: the request ------------------------------------------------------------------
def test_promote_no_wait_sends_the_admin_token_and_returns_after_the_202(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/models/fraud/versions/2/promote"
    api.answer("POST", path, 202, {"name": "fraud", "version": "2", "status": "APPROVED", "action": "promote"})
    assert cli.main(["promote", "fraud", "2", "--no-wait"], target=stack) == 0
    sent = api.only()
    assert sent.path == path and sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    out = capsys.readouterr().out
    assert "promotion of fraud 2 accepted" in out and "mmedeploy status fraud 2 --watch" in out

    assert cli.main(["promote", "fraud", "2", "--no-wait", "--json"], target=stack) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["http_status"] == 202 and document["action"] == "promote"


def test_rollback_no_wait_posts_to_the_rollback_route(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {"name": "fraud", "version": "1", "from_version": "2", "status": "RETIRED"}
    api.answer("POST", "/models/fraud/rollback", 202, answer)
    assert cli.main(["rollback", "fraud", "--no-wait", "--json"], target=stack) == 0
    assert json.loads(capsys.readouterr().out) == {**answer, "http_status": 202}
    sent = api.only()
    assert sent.path == "/models/fraud/rollback" and sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert cli.main(["rollback", "fraud", "--no-wait"], target=stack) == 0
    assert "rollback of fraud accepted: 1 becomes production again, replacing 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (404, 3, "refused (HTTP 404): no version 2 of model fraud"),
        (401, 1, "refused the admin token of the test stack (HTTP 401)"),
        (403, 1, "refused the admin token of the test stack (HTTP 403)"),
        (409, 1, "refused (HTTP 409)"),
    ],
)
def test_promote_and_rollback_refused(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str], status: int, code: int, message: str
) -> None:
    error = {"error": "no version 2 of model fraud"}
    api.answer("POST", "/models/fraud/versions/2/promote", status, error)
    api.answer("POST", "/models/fraud/rollback", status, error)
    assert cli.main(["promote", "fraud", "2"], target=stack) == code
    assert message in capsys.readouterr().err
    assert cli.main(["rollback", "fraud", "--json"], target=stack) == code
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {**error, "http_status": status} and message in captured.err


# -- promote / rollback: following the version ----------------------------------------------------------
FAST = ["--interval", "0.02", "--timeout", "20"]


def test_promote_waits_until_production_showing_each_change(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(stack, "2", TO_APPROVED)
    path = "/models/fraud/versions/2/promote"
    api.answer("POST", path, 202, {"name": "fraud", "version": "2", "status": "APPROVED", "action": "promote"})
    api.hooks[path] = move_later(
        stack, "2", [(0.05, Status.PROMOTING, "warming on production"), (0.2, Status.PRODUCTION, "alias flipped")]
    )
    assert cli.main(["promote", "fraud", "2", *FAST], target=stack) == 0
    out = capsys.readouterr().out
    assert "PROMOTING" in out and "warming on production" in out and "alias flipped" in out
    assert "fraud 2 is PRODUCTION (after" in out
    assert "AWAITING_APPROVAL" not in out  # only the changes since the request


def test_promote_exits_1_with_the_reason_when_it_fails(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(stack, "2", TO_APPROVED)
    path = "/models/fraud/versions/2/promote"
    api.answer("POST", path, 202, {"name": "fraud", "version": "2", "status": "APPROVED", "action": "promote"})
    api.hooks[path] = move_later(
        stack, "2", [(0.0, Status.PROMOTING, "warming"), (0.1, Status.FAILED, "production endpoint did not load it")]
    )
    assert cli.main(["promote", "fraud", "2", "--json", *FAST], target=stack) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert (document["outcome"], document["status"]) == ("failed", "FAILED")
    assert document["request"]["http_status"] == 202
    assert "fraud 2 is FAILED" in captured.err and "production endpoint did not load it" in captured.err


@pytest.mark.parametrize(
    ("ending", "reason", "code", "said"),
    [
        (Status.PRODUCTION, "rolled back", 0, "fraud 1 is PRODUCTION again"),
        (Status.RETIRED, "could not warm fraud 1", 1, "fraud 1 is RETIRED again"),  # a failed rollback
    ],
)
def test_rollback_waits_until_the_earlier_version_serves_or_is_retired_again(
    api: FakeApi,
    stack: DeploymentTarget,
    capsys: pytest.CaptureFixture[str],
    ending: Status,
    reason: str,
    code: int,
    said: str,
) -> None:
    put_version(stack, "1", TO_RETIRED)
    api.answer(
        "POST",
        "/models/fraud/rollback",
        202,
        {"name": "fraud", "version": "1", "from_version": "2", "status": "RETIRED"},
    )
    api.hooks["/models/fraud/rollback"] = move_later(
        stack, "1", [(0.05, Status.PROMOTING, "rolling back"), (0.1, ending, reason)]
    )
    assert cli.main(["rollback", "fraud", *FAST], target=stack) == code
    captured = capsys.readouterr()
    assert said in captured.out + captured.err
    if code:
        assert reason in captured.err and "2 stays production" in captured.err


def test_promote_timeout_says_how_to_keep_watching(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put_version(stack, "2", TO_APPROVED)
    path = "/models/fraud/versions/2/promote"
    api.answer("POST", path, 202, {"name": "fraud", "version": "2", "status": "APPROVED", "action": "promote"})
    api.hooks[path] = move_later(stack, "2", [(0.0, Status.PROMOTING, "warming")])
    assert cli.main(["promote", "fraud", "2", "--interval", "0.02", "--timeout", "0.3"], target=stack) == 1
    err = capsys.readouterr().err
    assert "still PROMOTING after 0.3 s" in err and "mmedeploy status fraud 2 --watch" in err


# -- the follow loop and the target ------------------------------------------------------------------
def version_at(status: Status, revision: int) -> ModelVersion:
    return a_version(
        name="fraud",
        version="1",
        status=status,
        bucket="b",
        key="fraud_1.tar.gz",
        etag="e",
        uploaded_at="t",
        updated_at="t",
        revision=revision,
    )


def test_ending_of_a_read() -> None:
    assert ending_of(version_at(Status.PRODUCTION, 9), 8) is PromotionEnding.PRODUCTION
    assert ending_of(version_at(Status.FAILED, 9), 8) is PromotionEnding.FAILED
    assert ending_of(version_at(Status.PROMOTING, 9), 8) is None
    assert ending_of(version_at(Status.RETIRED, 8), 8) is None  # not started yet
    assert ending_of(version_at(Status.RETIRED, 10), 8) is PromotionEnding.RETIRED
    assert ending_of(version_at(Status.RETIRED, 10), None) is None


def test_follow_times_out_at_the_timeout() -> None:
    now = [0.0]
    result = follow_promotion(
        lambda: version_at(Status.PROMOTING, 3),
        lambda r, e: None,
        baseline_revision=2,
        interval=0.5,
        timeout=2.0,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert result.outcome is PromotionEnding.TIMED_OUT and result.exit_code == 1 and now[0] == 2.0
