"""The terminal view of Slack messages (``mmedeploy demo`` shows what the approver sees): the real
messages of ``chalicelib.adapters.slack_messages`` drawn as text, and anything unknown drawn without failing."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from chalicelib.adapters import slack_messages
from chalicelib.domain.approvals import PendingApproval
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion
from chalicelib.domain.validation.findings import Code, Finding
from mmedeploy.slack_view import message_panel, mrkdwn, render_blocks
from tests.unit.builders import a_version

APPROVAL_ID = "apv_0123456789abcdef"
SHA256 = "947dc04cd469f98f" + "0" * 48


def record(status: Status = Status.AWAITING_APPROVAL, version: str = "3", **changes: Any) -> ModelVersion:
    fields: dict[str, Any] = {
        "name": "idcheck",
        "version": version,
        "status": status,
        "reason": "approval requested in Slack",
        "bucket": "mmedeploy-staging",
        "key": f"idcheck_{version}.tar.gz",
        "etag": "e",
        "sha256": SHA256,
        "size": 5699,
        "uploaded_at": "2026-01-01T08:40:31.969Z",
        "uploader": "alice",
        "updated_at": "2026-01-01T08:40:34.000Z",
        "metrics": {"cold_load_ms": 2150.0, "warm_p50_ms": 2.5, "smoke_tests": 2.0},
        **changes,
    }
    return a_version(**fields)


def shown(blocks: Any) -> str:
    console = Console(record=True, width=100)
    console.print(render_blocks(blocks))
    return console.export_text()


def test_the_approval_request_shows_model_version_fields_and_both_buttons() -> None:
    message = slack_messages.approval_request(record(), APPROVAL_ID, "#mmedeploy")
    text = shown(message["blocks"])
    # the title's mrkdwn is drawn, not printed: no asterisks or backticks left
    assert "idcheck version 3 is staged and waits for approval" in text
    assert "*" not in text and "`" not in text
    # the fields, label above value, two to a row
    for label, value in (
        ("Model", "idcheck"),
        ("Version", "3"),
        ("SHA-256", SHA256[:12]),
        ("Validation", "0 error(s), 0 warning(s); 2 smoke test(s)"),
        ("Staging cold load", "2.15 s"),
        ("Staging warm p50", "2.5 ms"),
        ("Uploaded by", "alice at 2026-01-01T08:40:31.969Z"),
        ("Artifact", "s3://mmedeploy-staging/idcheck_3.tar.gz"),
    ):
        assert label in text and value in text, label
    model_row = next(line for line in text.splitlines() if "Model" in line)
    assert "Version" in model_row  # side by side
    assert "[ Approve ]" in text and "[ Decline ]" in text
    assert f"approval {APPROVAL_ID}" in text


def test_the_buttons_are_styled_primary_and_danger() -> None:
    message = slack_messages.approval_request(record(), APPROVAL_ID, "#mmedeploy")
    console = Console(record=True, width=100, force_terminal=True, color_system="truecolor")
    console.print(render_blocks(message["blocks"]))
    html = console.export_html(inline_styles=True)
    approve = html[html.index("[ Approve ]") - 200 : html.index("[ Approve ]")]
    decline = html[html.index("[ Decline ]") - 200 : html.index("[ Decline ]")]
    assert "background-color: #008000" in approve  # green
    assert "background-color: #800000" in decline  # red


def test_the_decided_message_has_no_buttons_and_names_the_decider() -> None:
    approval = PendingApproval(
        approval_id=APPROVAL_ID,
        name="idcheck",
        version="3",
        task_token="t",
        requested_at="2026-01-01T08:40:34.000Z",
        decision="approve",
        decided_by="slack:U0ALICE",
        decided_at="2026-01-01T08:41:00.000Z",
    )
    production = record(Status.PRODUCTION, reason="promoted to production (requested by slack:U0ALICE)")
    message = slack_messages.approval_outcome(production, approval, "#mmedeploy", "1767256834.000100")
    text = shown(message["blocks"])
    assert "idcheck version 3" in text
    assert "PRODUCTION · approved by @U0ALICE at 2026-01-01T08:41:00.000Z" in text
    assert "promoted to production" in text
    assert "Approve" not in text and "Decline" not in text
    assert "SHA-256" in text and SHA256[:12] in text


def test_a_rejection_outcome_names_the_finding_codes() -> None:
    finding = Finding.of(Code.ENSEMBLE_MAP_UNKNOWN_TENSOR, "idcheck_pipeline/config.pbtxt", "maps output 'LOGIT'")
    rejected = record(Status.REJECTED, reason="1 error(s): ENSEMBLE_MAP_UNKNOWN_TENSOR", findings=[finding])
    text = shown(slack_messages.outcome(rejected, "#mmedeploy")["blocks"])
    assert "idcheck version 3 is REJECTED: 1 error(s): ENSEMBLE_MAP_UNKNOWN_TENSOR" in text
    assert "Findings: ENSEMBLE_MAP_UNKNOWN_TENSOR" in text


def test_the_promotion_and_refused_upload_notices() -> None:
    promoted = record(Status.PRODUCTION, metrics={"production_cold_load_ms": 1550.0, "production_warm_p50_ms": 2.5})
    text = shown(slack_messages.promoted(promoted, "2", rolled_back=False, channel="#mmedeploy")["blocks"])
    assert "idcheck promoted: version 3 serves in production (replacing 2" in text
    assert "production cold load 1.55 s, warm p50 2.5 ms" in text
    refused = shown(slack_messages.upload_refused(record(), "the artifact is immutable", "#mmedeploy")["blocks"])
    assert "an upload of idcheck version 3 was refused: the artifact is immutable" in refused


def test_mrkdwn_links_mentions_code_and_underscores() -> None:
    text = mrkdwn("see <https://example.com/runs/1|the run> by <@U0ALICE> in <#C1|ops>: `idcheck_broken` ok <!here>")
    assert text.plain == "see the run by @U0ALICE in #ops: idcheck_broken ok @here"
    link = next(span for span in text.spans if text.plain[span.start : span.end] == "the run")
    assert "https://example.com/runs/1" in str(link.style)
    assert mrkdwn("idcheck_broken_1 and _italic_ &lt;tag&gt;").plain == "idcheck_broken_1 and italic <tag>"
    assert mrkdwn("unclosed *bold and `code").plain == "unclosed *bold and `code"


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "video", "title": {"type": "plain_text", "text": "x"}}],
        [{"type": "actions", "elements": [{"type": "static_select"}, "not a dict"]}],
        [{"type": "section"}, {"type": "context", "elements": [{"type": "image", "alt_text": "logo"}]}],
        [{"no": "type"}, None, 3],
        "not a list",
        [],
    ],
    ids=["unknown block", "unknown elements", "empty section, image", "malformed blocks", "not a list", "empty"],
)
def test_unknown_or_malformed_blocks_do_not_crash(blocks: Any) -> None:
    text = shown(blocks)
    assert text.strip()


def test_unknown_types_show_as_their_type_and_known_ones_beside_them() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploys"}},
        {"type": "divider"},
        {"type": "video"},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}}]},
    ]
    text = shown(blocks)
    assert "Deploys" in text and "[video]" in text and "[ Open ]" in text and "───" in text


def test_the_message_panel_uses_the_fallback_text_without_blocks() -> None:
    console = Console(record=True, width=100)
    console.print(message_panel({"channel": "#c", "text": "*idcheck* 3 is ready"}, "Slack · #c"))
    text = console.export_text()
    assert "Slack · #c" in text and "idcheck 3 is ready" in text
