"""What people see of a rollout: the panel of ``mmedeploy status`` (running, paused, before its first
step, ended), the routes line and alias of a rollout's canary, ROLLED_BACK's style and exit code,
and the Slack approval message's progress, all from the version's record alone."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from chalicelib.adapters import slack_messages
from chalicelib.adapters.rollout_text import duration, figure_rows, policy_line, timing_line
from chalicelib.domain.approvals import PendingApproval
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import Alias, Canary, ModelRoutes, ModelVersion, PromotionRun
from chalicelib.domain.rollout.gates import Gate, GateCheck, Outcome
from chalicelib.domain.rollout.policy import RolloutPolicy
from chalicelib.domain.rollout.progress import Figures, Reading, RolloutRun
from mmedeploy.slack_view import render_blocks
from mmedeploy.status_view import (
    rollout_line,
    rollout_view,
    routes_line,
    status_style,
    version_view,
    versions_view,
    watch_exit_code,
)
from tests.unit.builders import a_version

POLICY = RolloutPolicy(steps=(5, 25, 50, 100), bake_seconds=600, evaluation_interval_seconds=60, min_requests=100)
STEP_STARTED = "2026-01-01T10:00:00Z"
NOW = datetime(2026, 1, 1, 10, 5, 50, tzinfo=UTC)  # 5m 50s into the step: 4m 10s of bake left
PASSED = "error_rate gate passed: candidate 1.25% (3 of 240 requests) <= bound 1.50%"


def a_reading(outcome: Outcome = Outcome.PASS, reason: str = PASSED, **passed: bool) -> Reading:
    """A reading of step 2 (candidate 2, production 1); ``passed`` names each gate that did not hold
    (``error_rate=False``)."""
    reading = Reading(
        at="2026-01-01T10:05:00Z",
        outcome=outcome,
        reason=reason,
        candidate=Figures(version="2", invocations=240, errors=3, p99_latency_ms=41.0),
        production=Figures(version="1", invocations=1200, errors=6, p99_latency_ms=35.2),
        checks=(
            GateCheck(gate=Gate.ERROR_RATE, candidate=0.0125, production=0.005, bound=0.015, passed=True, detail="…"),
            GateCheck(gate=Gate.P99_LATENCY, candidate=41.0, production=35.2, bound=42.24, passed=True, detail="…"),
        ),
        window_start="2026-01-01T10:00:00Z",
    )
    checks = tuple(c.model_copy(update={"passed": passed.get(c.gate.value, True)}) for c in reading.checks)
    return reading.model_copy(update={"checks": checks})


def a_run(**fields: Any) -> RolloutRun:
    defaults: dict[str, Any] = {
        "policy": POLICY,
        "production_version": "1",
        "step": 1,
        "step_started_at": STEP_STARTED,
        "last": a_reading(),
        "next_evaluation_at": "2026-01-01T10:06:30Z",
    }
    return RolloutRun(**{**defaults, **fields})


def rolling_out(run: RolloutRun, status: Status = Status.PROMOTING, **fields: Any) -> ModelVersion:
    promotion = PromotionRun(
        execution_arn="arn:exec",
        alias_revision=3,
        rollback=False,
        requested_by="api:admin",
        started_at="2026-01-01T09:58:00Z",
        rollout=run,
    )
    return a_version("2", status=status, reason="rolling out", promotion=promotion, **fields)


def shown(renderable: Any, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, emoji=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


# -- the panel -------------------------------------------------------------------------------------
def test_the_panel_shows_the_step_the_reading_against_the_bounds_and_the_times_left() -> None:
    text = shown(rollout_view(rolling_out(a_run()), NOW))
    assert "rollout of fraud 2" in text
    assert "candidate 2  production 1" in text
    assert "step 2 of 4 (25%): 25% of the traffic" in text
    assert "PASS" in text and PASSED in text
    lines = {line.split()[1]: line for line in text.splitlines() if len(line.split()) > 1}
    assert "240" in lines["requests"] and "1,200" in lines["requests"] and ">= 100 each" in lines["requests"]
    errors = lines["errors"]
    assert "3 (1.25%)" in errors and "6 (0.50%)" in errors and "<= 1.50%" in errors and "pass" in errors
    latency = lines["p99"]
    assert "41.0 ms" in latency and "35.2 ms" in latency and "<= 42.2 ms" in latency and "pass" in latency
    assert "next reading in 40s; bake: 4m 10s left of 10m" in text
    # the version's view holds it, between its details and its history
    assert "step 2 of 4 (25%)" in shown(version_view(rolling_out(a_run()), now=NOW))


def test_a_failed_gate_is_marked_and_a_paused_rollout_says_by_whom() -> None:
    run = a_run(
        paused_by="api:alice",
        paused_at="2026-01-01T10:03:00Z",
        last=a_reading(Outcome.FAIL, "p99_latency gate failed", p99_latency=False),
    )
    text = shown(rollout_view(rolling_out(run), NOW))
    assert "step 2 of 4 (25%): 25% of the traffic, paused by api:alice" in text
    assert "paused by api:alice at 2026-01-01 10:03:00 UTC" in text
    latency = next(line for line in text.splitlines() if "p99 latency" in line)
    assert "FAIL" in latency
    assert "FAIL  p99_latency gate failed" in text


def test_before_its_first_step_the_panel_says_so_without_a_reading() -> None:
    run = a_run(step=-1, step_started_at=None, last=None, next_evaluation_at=None)
    text = shown(rollout_view(rolling_out(run), NOW))
    assert "warming before its first step of 4: no traffic yet" in text
    assert "no reading yet" in text and "bake" not in text
    assert figure_rows(run) == [] and timing_line(run, NOW) is None


def test_a_rolled_back_rollout_keeps_its_last_reading_without_times() -> None:
    run = a_run(last=a_reading(Outcome.FAIL, "error_rate gate failed", error_rate=False), next_evaluation_at=None)
    text = shown(rollout_view(rolling_out(run, Status.ROLLED_BACK), NOW))
    assert "rollout of fraud 2 (ended)" in text and "ROLLED_BACK step 2 of 4 (25%)" in text
    assert "FAIL  error_rate gate failed" in text and "left of" not in text


def test_no_panel_without_a_rollout() -> None:
    assert rollout_view(a_version("2", status=Status.PROMOTING)) is None
    assert "rollout" not in shown(version_view(a_version("2", status=Status.PRODUCTION)))
    # a rollout that completed: PRODUCTION shows no panel
    assert rollout_view(rolling_out(a_run(), Status.PRODUCTION)) is None


def test_a_rollout_s_canary_is_called_a_rollout() -> None:
    production = Alias(name="fraud", alias="production", version="1", revision=3, updated_at="t", actor="api:x")
    rollout = Canary(name="fraud", version="2", weight=0.25, started_at="t", actor="pipeline/rollout")
    routes = ModelRoutes(production=production, canary=rollout.model_copy(update={"rollout_execution": "arn:exec"}))
    line = routes_line(routes) or ""
    assert "rollout of 2: it takes 25% of the traffic (mmedeploy status fraud 2 shows its step)" in line
    table = shown(versions_view("fraud", [a_version("1"), a_version("2", status=Status.PROMOTING)], routes))
    assert "rollout 25%" in table
    plain = routes_line(ModelRoutes(production=production, canary=rollout)) or ""
    assert "canary 2 takes 25% of the traffic (by pipeline/rollout)" in plain


def test_rolled_back_is_styled_as_a_failure_and_a_watch_ending_there_exits_1() -> None:
    assert status_style(Status.ROLLED_BACK) == status_style(Status.FAILED) != ""
    assert watch_exit_code(Status.ROLLED_BACK) == 1


def test_the_follow_line_and_the_texts() -> None:
    assert (
        str(rollout_line(a_run(), lead="  3.0 s  "))
        == f"  3.0 s  step 2 of 4 (25%): 25% of the traffic  PASS  {PASSED}"
    )
    assert [duration(s) for s in (0, 40, 250, 3600, 5400, 86399)] == ["0s", "40s", "4m 10s", "1h", "1h 30m", "23h 59m"]
    assert policy_line(POLICY) == (
        "steps 5% 25% 50% 100%, each bakes 10m, read every 1m; gates: errors <= production's + 1.00%, "
        "p99 <= 1.2 x production's, judged after 100 requests each"
    )
    baked = timing_line(a_run(), datetime(2026, 1, 1, 10, 11, tzinfo=UTC)) or ""
    assert "next reading due now" in baked and "baked (10m): moves on at a pass" in baked


# -- Slack -----------------------------------------------------------------------------------------
APPROVAL = PendingApproval(
    approval_id="apv_0123456789abcdef",
    name="fraud",
    version="2",
    task_token="t",
    requested_at="2026-01-01T09:00:00.000Z",
    decision="approve",
    decided_by="slack:U0ALICE",
    decided_at="2026-01-01T09:01:00.000Z",
)


def slack_text(record: ModelVersion) -> str:
    message = slack_messages.approval_outcome(record, APPROVAL, "#mmedeploy", "1767256834.000100")
    return shown(render_blocks(message["blocks"]))


def test_the_approval_message_shows_the_rollout_s_step_and_figures() -> None:
    record = rolling_out(a_run(paused_by="api:alice"))
    message = slack_messages.approval_outcome(record, APPROVAL, "#mmedeploy", "1767256834.000100")
    raw = str(message["blocks"])
    assert "step 2 of 4 (25%): 25% of the traffic, paused by api:alice" in raw
    assert "against production `1`" in raw
    assert "*PASS*" in raw and PASSED in raw
    assert "candidate `3 (1.25%)` · production `6 (0.50%)` · bound `<= 1.50%`" in raw
    assert "candidate `41.0 ms` · production `35.2 ms` · bound `<= 42.2 ms`" in raw
    assert "step started 2026-01-01T10:00:00Z; it bakes 10m, the gates read every 1m" in raw
    assert "PROMOTING" in slack_text(record)


def test_the_approval_message_of_a_rolled_back_version_says_why_with_its_icon() -> None:
    reason = "rolled back at step 2 of 4 (25%), production 1 unchanged: error_rate gate failed: …"
    run = a_run(last=a_reading(Outcome.FAIL, "error_rate gate failed: …", error_rate=False))
    record = rolling_out(run, Status.ROLLED_BACK).model_copy(update={"reason": reason})
    raw = str(slack_messages.approval_outcome(record, APPROVAL, "#mmedeploy", "1")["blocks"])
    assert f"{slack_messages.ICON[Status.ROLLED_BACK]} *ROLLED_BACK*" in raw and reason in raw
    assert "ended at step 2 of 4 (25%)" in raw and "*errors* :x:" in raw


def test_the_approval_message_before_the_first_step_and_without_a_rollout() -> None:
    before = rolling_out(a_run(step=-1, step_started_at=None, last=None, next_evaluation_at=None))
    raw = str(slack_messages.approval_outcome(before, APPROVAL, "#mmedeploy", "1")["blocks"])
    assert "warming before its first step of 4" in raw and "no reading yet" in raw
    plain = a_version("2", status=Status.PROMOTING, reason="promoting")
    assert "Rollout" not in str(slack_messages.approval_outcome(plain, APPROVAL, "#mmedeploy", "1")["blocks"])
