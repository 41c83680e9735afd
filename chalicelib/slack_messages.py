"""What the pipeline says in Slack: pure functions from a version record to Block Kit payloads."""

from __future__ import annotations

from typing import Any

from chalicelib.lifecycle import Status
from chalicelib.registry import ModelVersion
from chalicelib.validation.findings import Severity

ICON = {
    Status.REJECTED: ":no_entry:",
    Status.FAILED: ":x:",
    Status.EXPIRED: ":hourglass:",
    Status.DECLINED: ":no_entry_sign:",
}


def _summary(record: ModelVersion) -> str:
    errors = sum(f.severity is Severity.ERROR for f in record.findings)
    warnings = sum(f.severity is Severity.WARNING for f in record.findings)
    sha = (record.sha256 or "")[:12] or "n/a"
    parts = [f"sha256 `{sha}`", f"{errors} error(s), {warnings} warning(s)"]
    if "cold_load_ms" in record.metrics:
        parts.append(f"staging cold load {record.metrics['cold_load_ms'] / 1000:.1f} s")
    if "warm_p50_ms" in record.metrics:
        parts.append(f"warm p50 {record.metrics['warm_p50_ms']:.1f} ms")
    return " · ".join(parts)


def approval_request(record: ModelVersion, approval_id: str, channel: str) -> dict[str, Any]:
    title = f"*{record.name}* version *{record.version}* is staged and waits for approval"
    return {
        "channel": channel,
        "text": f"{record.name} {record.version} waits for approval ({approval_id})",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{title}\n{_summary(record)}"}},
            {
                "type": "actions",
                "block_id": "approval",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "approve",
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": approval_id,
                    },
                    {
                        "type": "button",
                        "action_id": "reject",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "value": approval_id,
                    },
                ],
            },
        ],
    }


def outcome(record: ModelVersion, channel: str) -> dict[str, Any]:
    icon = ICON.get(record.status, ":information_source:")
    text = f"{icon} *{record.name}* version *{record.version}* is {record.status.value}: {record.reason}"
    codes = sorted({f.code.value for f in record.findings if f.severity is Severity.ERROR})
    if codes:
        text += "\nFindings: " + ", ".join(f"`{c}`" for c in codes)
    return {
        "channel": channel,
        "text": f"{record.name} {record.version} is {record.status.value}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
    }


def upload_refused(record: ModelVersion, reason: str, channel: str) -> dict[str, Any]:
    text = f":no_entry: an upload of *{record.name}* version *{record.version}* was refused: {reason}"
    return {
        "channel": channel,
        "text": f"upload of {record.name} {record.version} refused",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
    }
