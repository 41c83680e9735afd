"""Posts the pipeline's Slack messages with slack_sdk; the bot token comes from Secrets Manager."""

from __future__ import annotations

from typing import Any

from chalicelib import slack_messages
from chalicelib.registry import ModelVersion


class SlackNotifier:
    def __init__(self, client: Any, channel: str) -> None:
        self._slack = client  # slack_sdk.WebClient
        self._channel = channel

    def request_approval(self, record: ModelVersion, approval_id: str) -> str:
        """Post the approval request; returns the message's ``ts``."""
        response = self._slack.chat_postMessage(**slack_messages.approval_request(record, approval_id, self._channel))
        return str(response.get("ts", ""))

    def announce_outcome(self, record: ModelVersion) -> None:
        self._slack.chat_postMessage(**slack_messages.outcome(record, self._channel))

    def announce_refused_upload(self, record: ModelVersion, reason: str) -> None:
        self._slack.chat_postMessage(**slack_messages.upload_refused(record, reason, self._channel))
