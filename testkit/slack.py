"""Slack, as the local stack's tests and benchmarks see it: signed button clicks and the sink's record."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.domain.approvals import Decision
from mmedeploy.decision import interaction_payload, signed_form
from mmedeploy.local.stack import StackInfo


def click(
    info: StackInfo,
    approval_id: str,
    decision: Decision = Decision.APPROVE,
    user: str = "U0LOCALAPPROVER",
    secret: str | None = None,
    at: float | None = None,
    change: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """A Slack button click, signed as Slack signs it (or spoiled by ``change``)."""
    now = time.time() if at is None else at
    payload = interaction_payload(decision, approval_id, user, info.slack_url, f"{int(now)}.000100", now)
    body, headers = signed_form(secret or info.slack_signing_secret, payload, int(now))
    if change:
        body, headers = change(body, headers)
    request = urllib.request.Request(f"{info.api_url}/slack/interactions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def slack_messages(info: StackInfo) -> list[dict[str, Any]]:
    """Every call the Slack sink recorded (Web API methods and response_url posts), oldest first."""
    with urllib.request.urlopen(f"{info.slack_url}/_messages", timeout=5) as response:
        messages: list[dict[str, Any]] = json.load(response)
    return messages
