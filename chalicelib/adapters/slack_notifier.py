"""Posts mmedeploy's Slack messages with slack_sdk; the bot token comes from Secrets Manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from chalicelib.adapters import slack_messages
from chalicelib.domain.approvals import PendingApproval
from chalicelib.domain.records import ModelVersion

if TYPE_CHECKING:
    from slack_sdk import WebClient

logger = Logger(service="mmedeploy", child=True)
# An interaction must be answered within Slack's 3 s: a slow response_url must not hold it up.
RESPONSE_URL_TIMEOUT_S = 1


class SlackNotifier:
    def __init__(self, client: WebClient, channel: str) -> None:
        self._slack = client
        self._channel = channel

    def request_approval(self, record: ModelVersion, approval_id: str) -> tuple[str, str]:
        """Post the approval request; returns where it is (channel id, ``ts``) for later updates."""
        response = self._slack.chat_postMessage(**slack_messages.approval_request(record, approval_id, self._channel))
        return str(response.get("channel") or self._channel), str(response.get("ts", ""))

    def update_approval(self, record: ModelVersion, approval: PendingApproval) -> None:
        """Rewrite the approval message with the version's state. Cosmetic: a failure is logged,
        never fails the step that changed the state."""
        if not (approval.slack_channel and approval.slack_ts):
            return
        try:
            self._slack.chat_update(
                **slack_messages.approval_outcome(record, approval, approval.slack_channel, approval.slack_ts)
            )
        except SlackClientError as exc:
            logger.warning("could not update the approval message", extra={"error": str(exc)})

    def announce_outcome(self, record: ModelVersion) -> None:
        self._slack.chat_postMessage(**slack_messages.outcome(record, self._channel))

    def announce_promoted(self, record: ModelVersion, replaced: str | None, rolled_back: bool) -> None:
        """``record`` serves in production, in place of version ``replaced``. A failure is raised:
        the notice stays owed (the tracker keeps a flip from failing for it)."""
        self._slack.chat_postMessage(**slack_messages.promoted(record, replaced, rolled_back, self._channel))

    def announce_refused_upload(self, record: ModelVersion, reason: str) -> None:
        self._slack.chat_postMessage(**slack_messages.upload_refused(record, reason, self._channel))


def reply_ephemeral(response_url: str, text: str) -> None:
    """Tell only the clicking user (an interaction's ``response_url``); best effort."""
    try:
        WebhookClient(response_url, timeout=RESPONSE_URL_TIMEOUT_S).send(
            text=text, response_type="ephemeral", replace_original=False
        )
    except (SlackClientError, OSError) as exc:
        logger.warning("could not answer through the response_url", extra={"error": str(exc)})
