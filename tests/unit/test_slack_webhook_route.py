"""``POST /slack/interactions`` and the admin routes: SlackInteractions with real Slack signatures
(slack_sdk's signer) and an injected clock, the Chalice routes through ``chalice.test.Client``
(which runs the ``bearer_token`` authorizer as API Gateway would), and the API tokens."""

from __future__ import annotations

import hashlib
import importlib
import json
import urllib.parse
from types import ModuleType
from typing import Any

import pytest
from chalice.app import AuthRequest, AuthRoute
from chalice.test import Client
from slack_sdk.signature import SignatureVerifier

from chalicelib import composition
from chalicelib.api_tokens import ADMIN, INVOKE, ApiTokens, Unauthorized
from chalicelib.approval.gate import GateVerdict
from chalicelib.approval.slack_interactions import MAX_BODY_BYTES, SlackInteractions
from chalicelib.domain.lifecycle import PROMOTION_REQUESTED, Status
from chalicelib.promote_model.requests import PromotionRequests
from mmedeploy.local.api_gateway import GatewayTestClient
from tests.unit.fakes import ApprovalWorld

S = Status
SIGNING_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NOW = 1_735_787_045.0
APPROVERS = frozenset({"U0ALICE", "U0BOB"})
RESPONSE_URL = "https://hooks.slack.com/actions/T0/1/abc"
FORM = "application/x-www-form-urlencoded"
ADMIN_TOKEN, INVOKE_TOKEN = "mmd_admin_7a4c0f", "mmd_invoke_91be22"


class Replies:
    """The ephemeral ``(response_url, text)`` replies to the clicking user."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, response_url: str, text: str) -> None:
        self.sent.append((response_url, text))


class Webhook(ApprovalWorld):
    def __init__(self) -> None:
        super().__init__()
        self.secret = SIGNING_SECRET
        self.replies = Replies()
        self.interactions = SlackInteractions(
            self.gate, lambda: self.secret, APPROVERS, self.replies, clock=lambda: NOW
        )


@pytest.fixture
def hook() -> Webhook:
    return Webhook()


def click(approval_id: str, action: str = "approve", user: str = "U0ALICE", **changes: Any) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for a button in the approval message."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0"},
        "team": {"id": "T0"},
        "channel": {"id": "C0APPROVALS"},
        "response_url": RESPONSE_URL,
        "actions": [{"action_id": action, "block_id": "approval", "value": approval_id, "type": "button"}],
    }
    payload.update(changes)
    return payload


def form(payload: Any) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, secret: str = SIGNING_SECRET, at: float = NOW) -> dict[str, str]:
    timestamp = str(int(at))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature, "Content-Type": FORM}


# -- SlackInteractions: signature first ----------------------------------------------------------
def test_a_signed_approve_click_from_an_approver_approves(hook: Webhook) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id))
    answered = hook.interactions.handle(body, signed(body))
    assert answered.status_code == 200
    assert (answered.answer.ok, answered.answer.outcome, answered.answer.version) == (True, GateVerdict.APPROVED, "1")
    assert [output["decided_by"] for _, output in hook.callback.succeeded] == ["slack:U0ALICE"]
    assert hook.replies.sent == []  # the outcome shows in the rewritten message, not as a reply


def test_a_signed_decline_click_declines(hook: Webhook) -> None:
    body = form(click(hook.awaiting(), "decline", "U0BOB"))
    answered = hook.interactions.handle(body, signed(body))
    assert (answered.status_code, answered.answer.outcome) == (200, GateVerdict.DECLINED)
    assert [cause["decided_by"] for _, _, cause in hook.callback.failed] == ["slack:U0BOB"]


def test_a_reject_click_on_a_message_posted_before_the_rename_declines(hook: Webhook) -> None:
    body = form(click(hook.awaiting(), "reject", "U0BOB"))
    answered = hook.interactions.handle(body, signed(body))
    assert (answered.status_code, answered.answer.outcome) == (200, GateVerdict.DECLINED)
    assert [cause["decided_by"] for _, _, cause in hook.callback.failed] == ["slack:U0BOB"]


def refused(hook: Webhook, approval_id: str, body: bytes, headers: dict[str, str]) -> int:
    """Handle a request that must change nothing; returns its status code."""
    before = hook.untouched(approval_id)
    answered = hook.interactions.handle(body, headers)
    assert not answered.answer.ok
    assert hook.untouched(approval_id) == before
    assert hook.replies.sent == []
    return answered.status_code


def test_a_signature_with_another_secret_is_refused(hook: Webhook) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id))
    assert refused(hook, approval_id, body, signed(body, secret="not-the-signing-secret")) == 401


def test_a_rotated_secret_is_read_for_each_request(hook: Webhook) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id))
    hook.secret = "rotated-signing-secret"
    assert refused(hook, approval_id, body, signed(body)) == 401
    assert hook.interactions.handle(body, signed(body, secret="rotated-signing-secret")).status_code == 200


@pytest.mark.parametrize("offset", [-301, 301], ids=["over-5-minutes-old", "over-5-minutes-ahead"])
def test_a_timestamp_outside_five_minutes_is_refused(hook: Webhook, offset: int) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id))
    assert refused(hook, approval_id, body, signed(body, at=NOW + offset)) == 401


@pytest.mark.parametrize("offset", [-299, 299])
def test_a_timestamp_within_five_minutes_is_accepted(hook: Webhook, offset: int) -> None:
    body = form(click(hook.awaiting()))
    assert hook.interactions.handle(body, signed(body, at=NOW + offset)).status_code == 200


@pytest.mark.parametrize("missing", ["X-Slack-Request-Timestamp", "X-Slack-Signature"])
def test_a_missing_signature_header_is_refused(hook: Webhook, missing: str) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id))
    headers = signed(body)
    del headers[missing]
    assert refused(hook, approval_id, body, headers) == 401


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        "yesterday",
        "1735787045.0",
        "-1735787045",
        " 1735787045",
        pytest.param("\u00b2", id="superscript-two"),  # isdigit() but not int()
    ],
)
def test_a_non_numeric_timestamp_is_refused_without_an_exception(hook: Webhook, timestamp: str) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id))
    headers = {**signed(body), "X-Slack-Request-Timestamp": timestamp}
    assert refused(hook, approval_id, body, headers) == 401


def test_a_body_other_than_the_signed_one_is_refused(hook: Webhook) -> None:
    approval_id = hook.awaiting()
    headers = signed(form(click(approval_id, "decline")))
    assert refused(hook, approval_id, form(click(approval_id, "approve")), headers) == 401


def test_an_unsigned_body_that_is_not_utf8_is_refused(hook: Webhook) -> None:
    approval_id = hook.awaiting()
    headers = {**signed(b"payload="), "X-Slack-Signature": "v0=" + "0" * 64}
    assert refused(hook, approval_id, b"payload=\xff\xfe", headers) == 401


def test_a_body_over_64_kib_is_refused_before_anything_else(hook: Webhook) -> None:
    approval_id = hook.awaiting()
    body = form(click(approval_id, padding="x" * MAX_BODY_BYTES))
    assert refused(hook, approval_id, body, signed(body)) == 413


# -- SlackInteractions: then who, then what ------------------------------------------------------
def test_a_click_by_someone_not_on_the_approver_list_is_forbidden_and_told(hook: Webhook) -> None:
    # GIVEN a correctly signed click by a workspace member who is not an approver
    approval_id = hook.awaiting()
    body = form(click(approval_id, user="U0MALLORY"))
    before = hook.untouched(approval_id)
    # WHEN it is handled
    answered = hook.interactions.handle(body, signed(body))
    # THEN 403: the clicking user is told why, and neither the gate nor the registry was touched
    assert (answered.status_code, answered.answer.outcome) == (403, GateVerdict.FORBIDDEN)
    (url, text) = hook.replies.sent[0]
    assert url == RESPONSE_URL and "<@U0MALLORY>" in text and "approver" in text
    assert len(hook.replies.sent) == 1
    assert hook.untouched(approval_id) == before


def test_a_forbidden_click_without_a_response_url_is_refused_silently(hook: Webhook) -> None:
    body = form(click(hook.awaiting(), user="U0MALLORY", response_url=None))
    assert hook.interactions.handle(body, signed(body)).status_code == 403
    assert hook.replies.sent == []


def malformed_bodies(approval_id: str) -> dict[str, bytes]:
    one_action = click(approval_id)["actions"]
    return {
        "not block_actions": form(click(approval_id, type="view_submission")),
        "unknown action_id": form(click(approval_id, "approve_all")),
        "missing value": form(click(approval_id, actions=[{"action_id": "approve", "type": "button"}])),
        "empty value": form(click("")),
        "two actions": form(click(approval_id, actions=one_action * 2)),
        "no user": form({k: v for k, v in click(approval_id).items() if k != "user"}),
        "payload not an object": form([click(approval_id)]),
        "no payload field": urllib.parse.urlencode({"data": json.dumps(click(approval_id))}).encode(),
        "invalid JSON": urllib.parse.urlencode({"payload": "{'type': 'block_actions'"}).encode(),
        "not a form": b"payload",
        "empty body": b"",
    }


@pytest.mark.parametrize("case", list(malformed_bodies("apv_x")))
def test_a_signed_but_malformed_payload_is_a_bad_request(hook: Webhook, case: str) -> None:
    approval_id = hook.awaiting()
    body = malformed_bodies(approval_id)[case]
    assert refused(hook, approval_id, body, signed(body)) == 400


def test_an_already_decided_click_is_answered_to_the_user_too(hook: Webhook) -> None:
    # GIVEN an approval decided by Alice
    approval_id = hook.awaiting()
    first = form(click(approval_id))
    hook.interactions.handle(first, signed(first))
    # WHEN Bob clicks decline on the same message
    second = form(click(approval_id, "decline", "U0BOB"))
    answered = hook.interactions.handle(second, signed(second))
    # THEN 200 (the request was fine), and Bob is told who decided first
    assert (answered.status_code, answered.answer.outcome) == (200, GateVerdict.ALREADY_DECIDED)
    assert hook.replies.sent == [(RESPONSE_URL, answered.answer.text)]
    assert "already approved by slack:U0ALICE" in answered.answer.text
    assert hook.callback.calls == 1


# -- the Chalice routes --------------------------------------------------------------------------
@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("STAGING_BUCKET", "staging")  # app.py reads it at import, for the upload rule
    return importlib.import_module("app")


@pytest.fixture
def client(app_module: ModuleType, hook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Client:
    tokens = {
        "tokens": [
            {"name": "ci-admin", "sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(), "scopes": [ADMIN]},
            {"name": "ci-invoke", "sha256": hashlib.sha256(INVOKE_TOKEN.encode()).hexdigest(), "scopes": [INVOKE]},
        ]
    }
    requests = PromotionRequests(hook.registry, hook.gate, hook.publisher)  # type: ignore[arg-type]
    monkeypatch.setattr(composition, "slack_interactions", lambda: hook.interactions)
    monkeypatch.setattr(composition, "api_tokens", lambda: ApiTokens(lambda: json.dumps(tokens)))
    monkeypatch.setattr(composition, "promotion_requests", lambda: requests)
    return GatewayTestClient(app_module.app)


def test_the_route_answers_a_valid_click_with_the_gates_answer(client: Client, hook: Webhook) -> None:
    body = form(click(hook.awaiting()))
    response = client.http.post("/slack/interactions", headers=signed(body), body=body)
    assert response.status_code == 200
    assert response.json_body["ok"] is True
    assert {k: response.json_body[k] for k in ("outcome", "name", "version", "status")} == {
        "outcome": "approved",
        "name": "fraud",
        "version": "1",
        "status": "AWAITING_APPROVAL",
    }


def test_the_route_refuses_a_bad_signature_with_401(client: Client, hook: Webhook) -> None:
    body = form(click(hook.awaiting()))
    response = client.http.post("/slack/interactions", headers=signed(body, secret="wrong-secret"), body=body)
    assert response.status_code == 401
    assert (response.json_body["ok"], response.json_body["outcome"]) == (False, "invalid_signature")
    assert hook.callback.calls == 0


def test_the_route_forbids_a_non_approver_with_403(client: Client, hook: Webhook) -> None:
    body = form(click(hook.awaiting(), user="U0MALLORY"))
    response = client.http.post("/slack/interactions", headers=signed(body), body=body)
    assert response.status_code == 403
    assert response.json_body["outcome"] == "forbidden" and "<@U0MALLORY>" in response.json_body["text"]


def promote(client: Client, token: str | None, path: str = "/models/fraud/versions/1/promote") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.http.post(path, headers=headers)


@pytest.mark.parametrize("token", [None, "not-a-token", ""], ids=["no-header", "unknown", "empty"])
def test_the_admin_routes_answer_401_without_a_valid_token(client: Client, hook: Webhook, token: str | None) -> None:
    hook.awaiting()
    for path in ("/models/fraud/versions/1/promote", "/models/fraud/rollback"):
        response = promote(client, token, path)
        assert response.status_code == 401
        assert "Bearer" in response.json_body["error"]  # the KServe error shape
    assert hook.callback.calls == 0


def test_the_admin_routes_refuse_an_invoke_token_with_403(client: Client, hook: Webhook) -> None:
    hook.awaiting()
    for path in ("/models/fraud/versions/1/promote", "/models/fraud/rollback"):
        response = promote(client, INVOKE_TOKEN, path)
        assert response.status_code == 403
        assert "scope" in response.json_body["error"]
    assert hook.callback.calls == 0 and hook.publisher.kinds[-1] == "ApprovalRequested"


def test_an_admin_promotion_of_an_awaiting_version_approves_it_as_the_token(client: Client, hook: Webhook) -> None:
    hook.awaiting()
    response = promote(client, ADMIN_TOKEN)
    assert response.status_code == 202
    assert response.json_body == {
        "name": "fraud",
        "version": "1",
        "status": "AWAITING_APPROVAL",
        "action": "approved",
        "from_version": None,
    }
    assert [output["decided_by"] for _, output in hook.callback.succeeded] == ["api:ci-admin"]


def test_an_admin_promotion_of_an_approved_version_is_requested(client: Client, hook: Webhook) -> None:
    hook.awaiting()
    hook.tracker.move("fraud", "1", S.APPROVED, "slack:U0ALICE")
    response = promote(client, ADMIN_TOKEN)
    assert (response.status_code, response.json_body["action"]) == (202, "promotion requested")
    kind, event = hook.publisher.events[-1]
    assert (kind, event.actor, event.version) == (PROMOTION_REQUESTED, "api:ci-admin", "1")


def test_an_admin_promotion_of_an_unknown_version_is_404(client: Client) -> None:
    response = promote(client, ADMIN_TOKEN, "/models/fraud/versions/9/promote")
    assert response.status_code == 404
    assert response.json_body == {"error": "no version 9 of model fraud in the registry"}


def test_an_admin_promotion_of_a_staged_version_is_409(client: Client, hook: Webhook) -> None:
    hook.staged()
    response = promote(client, ADMIN_TOKEN)
    assert response.status_code == 409 and "is STAGED" in response.json_body["error"]


def test_an_admin_rollback_without_a_production_version_is_404(client: Client, hook: Webhook) -> None:
    hook.staged()
    response = promote(client, ADMIN_TOKEN, "/models/fraud/rollback")
    assert response.status_code == 404
    assert response.json_body == {"error": "model fraud has no production version"}


# -- the authorizer and the tokens ---------------------------------------------------------------
def tokens_of(**scopes: list[str]) -> ApiTokens:
    entries = [
        {"name": name, "sha256": hashlib.sha256(f"tok-{name}".encode()).hexdigest(), "scopes": granted}
        for name, granted in scopes.items()
    ]
    return ApiTokens(lambda: json.dumps({"tokens": entries}))


ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/POST/models/fraud/rollback"


def authorize(app_module: ModuleType, monkeypatch: pytest.MonkeyPatch, token: str) -> Any:
    monkeypatch.setattr(composition, "api_tokens", lambda: tokens_of(ops=[ADMIN], reader=[INVOKE]))
    return app_module.bearer_token.func(AuthRequest("TOKEN", token, ARN))


def test_the_authorizer_grants_an_invoke_token_only_the_invoke_routes(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = authorize(app_module, monkeypatch, "Bearer tok-reader")
    assert granted.principal_id == "reader" and granted.context == {"scopes": INVOKE}
    paths = [(r.path, r.methods) for r in granted.routes if isinstance(r, AuthRoute)]
    assert paths == [("/v2", ["GET"]), ("/v2/*", ["GET", "POST"]), ("/models", ["GET"]), ("/models/*", ["GET"])]
    assert len(paths) == len(granted.routes)


def test_the_authorizer_grants_an_admin_token_every_route(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted = authorize(app_module, monkeypatch, "Bearer tok-ops")
    assert (granted.principal_id, granted.routes) == ("ops", ["*"])


@pytest.mark.parametrize("token", ["Bearer tok-nobody", "tok-ops", ""])
def test_the_authorizer_fails_an_unknown_token_as_unauthorized(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    # API Gateway answers 401 only for a TOKEN authorizer failing with exactly this message
    with pytest.raises(Unauthorized, match=r"^Unauthorized$"):
        authorize(app_module, monkeypatch, token)


def test_a_token_is_recognised_by_its_hash() -> None:
    tokens = tokens_of(ops=[ADMIN])
    holder = tokens.holder("Bearer tok-ops")
    assert holder is not None and (holder.name, holder.scopes) == ("ops", [ADMIN])
    assert tokens.holder("bearer   tok-ops ") == holder


@pytest.mark.parametrize("header", ["Bearer tok-opz", "tok-ops", "Basic tok-ops", "Bearer ", "Bearer", "", "   "])
def test_anything_but_bearer_and_a_known_token_has_no_holder(header: str) -> None:
    assert tokens_of(ops=[ADMIN]).holder(header) is None
