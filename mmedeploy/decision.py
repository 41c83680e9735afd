"""``mmedeploy approve`` / ``decline``: press the Slack button without Slack.

Builds the ``block_actions`` interaction Slack sends when someone clicks *Approve* or *Decline* on
the approval request, signs it with the app's signing secret exactly as Slack does
(``X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")``, computed by slack_sdk's
:class:`~slack_sdk.signature.SignatureVerifier`) and posts it, form-encoded, to the webhook
``POST {api_url}/slack/interactions``. The local stack and a deployed stage are thus tested end to
end, signature check included.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

from slack_sdk.signature import SignatureVerifier

from chalicelib.domain.approvals import Decision
from chalicelib.domain.records import ModelVersion
from mmedeploy.admin_api import ApiAnswer, ApiNotConfigured, post
from mmedeploy.target import DeploymentTarget

TEAM_ID = "T0LOCAL"
APP_ID = "A0MMEDEPLOY"
CHANNEL_ID = "C0LOCAL"  # when the registry does not know the approval message's channel
BLOCK_ID = "approval"  # chalicelib.adapters.slack_messages.approval_request's actions block
DEFAULT_SLACK_URL = "https://hooks.slack.com"  # response_url's host when the target has no Slack sink


class ApprovalMessage(Protocol):
    """Where an approval request was posted: the registry's pending approval, or the API's
    ``GET /models/NAME/versions/VERSION/approval``."""

    @property
    def slack_channel(self) -> str | None: ...
    @property
    def slack_ts(self) -> str | None: ...


def message_location(approval: ApprovalMessage | None, now: float) -> tuple[str, str]:
    """The approval message's (channel, ts) as the registry keeps them (from chat.postMessage's
    answer), else a local channel and a ts shaped like Slack's."""
    channel = approval.slack_channel if approval is not None and approval.slack_channel else CHANNEL_ID
    ts = approval.slack_ts if approval is not None and approval.slack_ts else f"{int(now)}.000100"
    return channel, ts


def interaction_payload(
    decision: Decision,
    approval_id: str,
    user: str,
    slack_url: str,
    ts: str,
    now: float,
    channel: str = CHANNEL_ID,
) -> dict[str, Any]:
    """The ``block_actions`` payload of a click on the approval message's button."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user},
        "team": {"id": TEAM_ID},
        "api_app_id": APP_ID,
        "trigger_id": f"{int(now)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "channel": {"id": channel},
        "response_url": f"{slack_url.rstrip('/')}/actions/{approval_id}",
        "actions": [
            {
                "type": "button",
                "action_id": decision.value,
                "block_id": BLOCK_ID,
                "value": approval_id,
                "action_ts": f"{now:.6f}",
            }
        ],
    }


def signed_form(secret: str, payload: dict[str, Any], timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The form body ``payload=<json>`` and the headers Slack sends with it, signed with ``secret``."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    if signature is None:  # only without a timestamp, which is always given
        raise ValueError("no signature")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
    }
    return body.encode("utf-8"), headers


def interactions_url(api_url: str) -> str:
    return f"{api_url.rstrip('/')}/slack/interactions"


def default_user(target: DeploymentTarget) -> str | None:
    """The Slack user a decision is made as when ``--user`` is not given: the first approver."""
    return target.slack_approver_ids[0] if target.slack_approver_ids else None


def send_decision(
    target: DeploymentTarget,
    record: ModelVersion,
    decision: Decision,
    user: str,
    approval: ApprovalMessage | None = None,
    clock: Callable[[], float] = time.time,
) -> ApiAnswer:
    """Click ``decision`` on ``record``'s approval request as Slack user ``user``; ``approval``
    (the API's view of the approval request) says where the message is, when known.

    The webhook answers ``{"ok", "outcome", "text", "status"}``: 200 (ok or not), 400 malformed,
    401 bad signature, 403 a user who may not decide. Raises ApiNotConfigured when the target
    lacks the API URL or the signing secret, ApiUnreachable when nothing answers.
    """
    if not target.api_url:
        raise ApiNotConfigured(f"{target.description} has no API URL")
    if not target.slack_signing_secret:
        raise ApiNotConfigured(f"{target.description} has no Slack signing secret")
    if not record.approval_id:
        raise ValueError(f"{record.name} {record.version} has no approval id")
    now = clock()
    channel, ts = message_location(approval, now)
    slack_url = target.slack_url or DEFAULT_SLACK_URL
    payload = interaction_payload(decision, record.approval_id, user, slack_url, ts, now, channel)
    body, headers = signed_form(target.slack_signing_secret, payload, int(now))
    return post(interactions_url(target.api_url), body, headers)


def decided(answer: ApiAnswer) -> bool:
    """The decision was taken: HTTP 200 with ``ok`` true."""
    return answer.http_status == 200 and answer.document.get("ok") is True
