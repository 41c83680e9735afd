"""What a rollout's progress says to people, as plain strings: the step, the latest reading's
figures of both versions against the gates' bounds, and when the next reading and the end of the
step's bake fall. Pure functions of a :class:`~chalicelib.domain.rollout.progress.RolloutRun`,
shared by the Slack approval message (:mod:`chalicelib.adapters.slack_messages`) and the rollout
panel of ``mmedeploy status`` (:mod:`mmedeploy.status_view`), so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.rollout.gates import Gate, GateCheck
from chalicelib.domain.rollout.policy import RolloutPolicy
from chalicelib.domain.rollout.progress import Figures, RolloutRun


@dataclass(frozen=True)
class FigureRow:
    """One line of a reading: both versions' figure, the candidate's bound, and whether it held
    (None: not judged, e.g. the gates waited for traffic)."""

    label: str
    candidate: str
    production: str
    bound: str
    passed: bool | None


def step_line(run: RolloutRun) -> str:
    """e.g. 'step 2 of 4 (25%): 25% of the traffic, paused by api:admin'."""
    if not run.started:
        line = f"warming before its first step of {len(run.policy.steps)}: no traffic yet"
    else:
        line = f"{run.describe_step()}: {percent(run.weight)} of the traffic"
    return f"{line}, paused by {run.paused_by}" if run.paused_by else line


def policy_line(policy: RolloutPolicy) -> str:
    """e.g. 'steps 5% 25% 50% 100%, each bakes 10m, read every 1m; gates: errors <= production's + 1.00%,
    p99 <= 1.2 x production's, judged after 100 requests each'."""
    steps = " ".join(f"{step:g}%" for step in policy.steps)
    return (
        f"steps {steps}, each bakes {duration(policy.bake_seconds)}, read every "
        f"{duration(policy.evaluation_interval_seconds)}; gates: errors <= production's + "
        f"{_rate(policy.max_error_rate_margin)}, p99 <= {policy.max_p99_latency_ratio:g} x production's, "
        f"judged after {policy.min_requests:,} requests each"
    )


def figure_rows(run: RolloutRun) -> list[FigureRow]:
    """The latest reading as rows (requests, errors, p99 latency); none before the first reading."""
    reading = run.last
    if reading is None:
        return []
    candidate, production = reading.candidate, reading.production
    checks = {check.gate: check for check in reading.checks}
    least = run.policy.min_requests
    error_check = checks.get(Gate.ERROR_RATE)
    latency_check = checks.get(Gate.P99_LATENCY)
    return [
        # enough requests is no pass: it lets the gates judge
        FigureRow("requests", f"{candidate.invocations:,}", f"{production.invocations:,}", f">= {least:,} each", None),
        FigureRow(
            "errors",
            _errors(candidate),
            _errors(production),
            f"<= {_rate(error_check.bound)}" if error_check else "-",
            _passed(error_check),
        ),
        FigureRow(
            "p99 latency",
            _ms(candidate.p99_latency_ms),
            _ms(production.p99_latency_ms),
            f"<= {_ms(latency_check.bound)}" if latency_check else "-",
            _passed(latency_check),
        ),
    ]


def bake_ends_at(run: RolloutRun) -> datetime | None:
    """When the current step has baked (it moves on at the first passing reading from then)."""
    if not run.started or run.step_started_at is None:
        return None
    return parse_at(run.step_started_at) + timedelta(seconds=run.policy.bake_seconds)


def timing_line(run: RolloutRun, now: datetime) -> str | None:
    """e.g. 'next reading in 40s; bake: 4m 10s left of 10m'; None before the first step."""
    parts = []
    if run.next_evaluation_at:
        due = (parse_at(run.next_evaluation_at) - now).total_seconds()
        parts.append(f"next reading in {duration(due)}" if due > 0 else "next reading due now")
    baked = bake_ends_at(run)
    if baked is not None:
        bake = duration(run.policy.bake_seconds)
        left = (baked - now).total_seconds()
        then = "held while paused" if run.paused_by else "moves on at a pass"
        parts.append(f"bake: {duration(left)} left of {bake}" if left > 0 else f"baked ({bake}): {then}")
    return "; ".join(parts) or None


def duration(seconds: float) -> str:
    """40 -> '40s', 250 -> '4m 10s', 3600 -> '1h', 5400 -> '1h 30m'."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in units if value]
    return " ".join(shown[:2]) or "0s"


def percent(weight: float) -> str:
    """A share of the traffic: 0.1 -> '10%', 0.125 -> '12.5%'."""
    return f"{weight * 100:.4g}%"


def parse_at(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def _passed(check: GateCheck | None) -> bool | None:
    return check.passed if check is not None else None


def _errors(figures: Figures) -> str:
    if not figures.invocations:
        return f"{figures.errors}"
    return f"{figures.errors:,} ({_rate(figures.errors / figures.invocations)})"


def _rate(fraction: float) -> str:
    return f"{fraction:.2%}"


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "n/a"
