"""What mmedeploy says in Slack: pure functions from a version record to Block Kit payloads."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.rollout_text import duration, figure_rows, step_line
from chalicelib.domain.approvals import Decision, PendingApproval
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from chalicelib.domain.rollout.gates import Outcome
from chalicelib.domain.validation.findings import Severity

ICON = {
    Status.REJECTED: ":no_entry:",
    Status.FAILED: ":x:",
    Status.EXPIRED: ":hourglass:",
    Status.DECLINED: ":no_entry_sign:",
    Status.APPROVED: ":white_check_mark:",
    Status.PROMOTING: ":arrows_counterclockwise:",
    Status.PRODUCTION: ":rocket:",
    Status.RETIRED: ":file_cabinet:",
    Status.ROLLED_BACK: ":rewind:",
}
OUTCOME_ICON = {Outcome.PASS: ":white_check_mark:", Outcome.WAIT: ":hourglass_flowing_sand:", Outcome.FAIL: ":x:"}
TEXT_LIMIT = 2900  # a section's text may hold 3000 characters


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:TEXT_LIMIT]}}


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def _ms(record: ModelVersion, key: str, scale: float = 1.0, unit: str = "ms", digits: int = 1) -> str:
    value = record.metrics.get(key)
    return f"{value / scale:.{digits}f} {unit}" if value is not None else "n/a"


def _evidence(record: ModelVersion) -> list[dict[str, Any]]:
    """Model, version, short SHA-256, validation summary, staging latencies, who uploaded and when."""
    errors = sum(f.severity is Severity.ERROR for f in record.findings)
    warnings = sum(f.severity is Severity.WARNING for f in record.findings)
    uploaded = f"{record.uploader or 'unknown'} at {record.uploaded_at}"
    summary = f"{errors} error(s), {warnings} warning(s)"
    smoke = record.metrics.get("smoke_tests")
    if smoke is not None:
        summary += f"; {int(smoke)} smoke test(s)" if smoke else "; smoke-tested with a synthesised request"
    return [
        {
            "type": "section",
            "fields": [
                _field("Model", f"`{record.name}`"),
                _field("Version", f"`{record.version}`"),
                _field("SHA-256", f"`{(record.sha256 or '')[:12] or 'n/a'}`"),
                _field("Validation", summary),
                _field("Staging cold load", _ms(record, "cold_load_ms", 1000, "s", 2)),
                _field("Staging warm p50", _ms(record, "warm_p50_ms")),
                _field("Uploaded by", uploaded),
                _field("Artifact", f"`s3://{record.bucket}/{record.key}`"),
            ],
        }
    ]


def approval_request(record: ModelVersion, approval_id: str, channel: str) -> dict[str, Any]:
    title = f":inbox_tray: *{record.name}* version *{record.version}* is staged and waits for approval"
    return {
        "channel": channel,
        "text": f"{record.name} {record.version} waits for approval ({approval_id})",
        "blocks": [
            _section(title),
            *_evidence(record),
            {
                "type": "actions",
                "block_id": "approval",
                "elements": [
                    {
                        "type": "button",
                        "action_id": Decision.APPROVE.value,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": approval_id,
                    },
                    {
                        "type": "button",
                        "action_id": Decision.DECLINE.value,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Decline"},
                        "value": approval_id,
                    },
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"approval `{approval_id}`"}]},
        ],
    }


def _who(actor: str) -> str:
    """``slack:U123`` as a Slack mention; other actors (``api:admin``) as they are."""
    return f"<@{actor.removeprefix('slack:')}>" if actor.startswith("slack:") else f"`{actor}`"


def approval_outcome(record: ModelVersion, approval: PendingApproval, channel: str, ts: str) -> dict[str, Any]:
    """The approval message rewritten with where the version stands now: no buttons any more."""
    icon = ICON.get(record.status, ":information_source:")
    line = f"{icon} *{record.status.value}*"
    if approval.decided_by and record.status is not Status.EXPIRED:
        verb = "approved" if approval.decision == Decision.APPROVE else Decision.DECLINE.past
        line += f" · {verb} by {_who(approval.decided_by)} at {approval.decided_at}"
    line += f"\n{record.reason}"
    return {
        "channel": channel,
        "ts": ts,
        "text": f"{record.name} {record.version} is {record.status.value}",
        "blocks": [
            _section(f"*{record.name}* version *{record.version}*"),
            *_evidence(record),
            _section(line),
            *_rollout(record),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"approval `{approval.approval_id}`"}]},
        ],
    }


def _rollout(record: ModelVersion) -> list[dict[str, Any]]:
    """A rollout's progress (PROMOTING) or where it ended (ROLLED_BACK): the step and its weight,
    paused by whom, the latest reading's outcome and both versions' figures against the bounds."""
    run = record.promotion.rollout if record.promotion else None
    if run is None or record.status not in (Status.PROMOTING, Status.ROLLED_BACK):
        return []
    ended = record.status is Status.ROLLED_BACK
    text = f"*Rollout* against production `{run.production_version}`: {'ended at ' if ended else ''}{step_line(run)}"
    if run.started and run.step_started_at and not ended:
        text += (
            f"\nstep started {run.step_started_at}; it bakes {duration(run.policy.bake_seconds)}, the gates read "
            f"every {duration(run.policy.evaluation_interval_seconds)}"
        )
    reading = run.last
    if reading is None:
        return [_section(text + "\n_no reading yet_")]
    text += f"\n{OUTCOME_ICON[reading.outcome]} latest reading {reading.at}: *{reading.outcome.value}* {reading.reason}"
    marks = {True: " :white_check_mark:", False: " :x:", None: ""}
    fields = [
        {
            "type": "mrkdwn",
            "text": f"*{row.label}*{marks[row.passed]}\ncandidate `{row.candidate}` · production "
            f"`{row.production}` · bound `{row.bound}`",
        }
        for row in figure_rows(run)
    ]
    return [_section(text), {"type": "section", "fields": fields}]


def outcome(record: ModelVersion, channel: str) -> dict[str, Any]:
    icon = ICON.get(record.status, ":information_source:")
    text = f"{icon} *{record.name}* version *{record.version}* is {record.status.value}: {record.reason}"
    codes = sorted({f.code.value for f in record.findings if f.severity is Severity.ERROR})
    if codes:
        text += "\nFindings: " + ", ".join(f"`{c}`" for c in codes)
    return {
        "channel": channel,
        "text": f"{record.name} {record.version} is {record.status.value}",
        "blocks": [_section(text)],
    }


def promoted(record: ModelVersion, replaced: str | None, rolled_back: bool, channel: str) -> dict[str, Any]:
    what = "rolled back to" if rolled_back else "promoted:"
    serves = "which serves in production again" if rolled_back else "serves in production"
    text = f"{ICON[Status.PRODUCTION]} *{record.name}* {what} version *{record.version}* {serves}"
    if replaced:
        text += f" (replacing {replaced}, now RETIRED and kept for rollback)"
    text += (
        f"\nproduction cold load {_ms(record, 'production_cold_load_ms', 1000, 's', 2)}, "
        f"warm p50 {_ms(record, 'production_warm_p50_ms')}"
    )
    return {
        "channel": channel,
        "text": f"{record.name} {record.version} serves in production",
        "blocks": [_section(text)],
    }


def upload_refused(record: ModelVersion, reason: str, channel: str) -> dict[str, Any]:
    text = f":no_entry: an upload of *{record.name}* version *{record.version}* was refused: {reason}"
    return {
        "channel": channel,
        "text": f"upload of {record.name} {record.version} refused",
        "blocks": [_section(text)],
    }
