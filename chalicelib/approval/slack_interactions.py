"""``POST /slack/interactions``: a Slack button click, verified, authorised, then decided.

Order matters: nothing is read from the body before its signature is verified (``v0`` HMAC over
the raw body with a 5-minute window, by slack_sdk's verifier), and the approver allow-list is
checked before the registry is touched. Everything answered here changes nothing except the one
accepted decision.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping

from pydantic import BaseModel, ValidationError
from slack_sdk.signature import Clock, SignatureVerifier

from chalicelib.approval.gate import ApprovalGate, GateAnswer, GateVerdict
from chalicelib.domain.approvals import FORMER_DECLINE, Decision

# Slack's interaction payloads are a few kB; anything this big is not from Slack.
MAX_BODY_BYTES = 64 * 1024
ACTOR_PREFIX = "slack:"
# The button each action_id is; a message posted before the rename still has a "reject" button.
BUTTONS = {**{decision.value: decision for decision in Decision}, FORMER_DECLINE: Decision.DECLINE}


class SlackUser(BaseModel):
    id: str
    username: str | None = None


class SlackAction(BaseModel):
    action_id: str
    value: str = ""


class BlockActions(BaseModel):
    """The part of Slack's ``block_actions`` payload the gate needs."""

    type: str
    user: SlackUser
    actions: list[SlackAction]
    response_url: str | None = None


class InteractionAnswer(BaseModel):
    status_code: int
    answer: GateAnswer


class SlackInteractions:
    def __init__(
        self,
        gate: ApprovalGate,
        signing_secret: Callable[[], str],
        approvers: frozenset[str],
        reply: Callable[[str, str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._gate = gate
        self._secret = signing_secret  # read per request (cached by the provider): rotation works
        self._approvers = approvers
        self._reply = reply  # (response_url, text): an ephemeral message to the clicking user
        self._clock = clock

    def handle(self, body: bytes, headers: Mapping[str, str]) -> InteractionAnswer:
        if len(body) > MAX_BODY_BYTES:
            return _refused(413, GateVerdict.MALFORMED, f"request body over {MAX_BODY_BYTES} bytes")
        if not self._signed(body, headers):
            return _refused(401, GateVerdict.INVALID_SIGNATURE, "missing, invalid or expired Slack signature")
        interaction = _parse(body)
        if interaction is None:
            return _refused(
                400, GateVerdict.MALFORMED, "not a Slack block_actions payload with an approve/decline button"
            )
        action = interaction.actions[0]
        user = interaction.user.id
        if user not in self._approvers:
            text = f"<@{user}> is not on this deployment's approver list, so the click changed nothing"
            if interaction.response_url:
                self._reply(interaction.response_url, text)
            return _refused(403, GateVerdict.FORBIDDEN, text)
        result = self._gate.decide(action.value, BUTTONS[action.action_id], ACTOR_PREFIX + user)
        if not result.ok and interaction.response_url:
            self._reply(interaction.response_url, result.text)  # e.g. a second click: say why nothing happened
        return InteractionAnswer(status_code=200, answer=result)

    def _signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        timestamp = lowered.get("x-slack-request-timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit()):  # the verifier's int() raises on others ("²")
            return False
        verifier = SignatureVerifier(self._secret(), clock=_Clock(self._clock))
        try:
            return verifier.is_valid(body, timestamp, lowered.get("x-slack-signature"))
        except UnicodeDecodeError:  # it decodes the body as UTF-8 to sign it: not Slack's
            return False


class _Clock(Clock):
    """The injected clock, as slack_sdk's verifier asks for it (tests check the 5-minute window)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def _parse(body: bytes) -> BlockActions | None:
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True)
        interaction = BlockActions.model_validate(json.loads(form["payload"][0]))
    except (UnicodeDecodeError, ValueError, KeyError, ValidationError, RecursionError):
        return None
    if interaction.type != "block_actions" or len(interaction.actions) != 1:
        return None
    if interaction.actions[0].action_id not in BUTTONS or not interaction.actions[0].value:
        return None
    return interaction


def _refused(status_code: int, outcome: GateVerdict, text: str) -> InteractionAnswer:
    return InteractionAnswer(status_code=status_code, answer=GateAnswer(ok=False, outcome=outcome, text=text))
