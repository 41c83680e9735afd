"""The rollout's gates: WAIT on too little traffic, FAIL naming the gate with both figures and the
bound, PASS with the figures; production without errors, a missing p99, zero latency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from chalicelib.domain.rollout.figures import VersionFigures
from chalicelib.domain.rollout.gates import LATENCY_FLOOR_MS, Gate, Outcome, judge
from chalicelib.domain.rollout.policy import RolloutPolicy

END = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
POLICY = RolloutPolicy()  # margin 1 point, ratio 1.2, 100 requests


def figures(version: str, invocations: int, errors: int = 0, p99: float | None = 50.0) -> VersionFigures:
    return VersionFigures(
        name="idcheck",
        version=version,
        start=END - timedelta(minutes=10),
        end=END,
        invocations=invocations,
        errors=errors,
        p99_latency_ms=p99,
    )


def test_a_candidate_as_good_as_production_passes_with_the_figures() -> None:
    verdict = judge(POLICY, figures("2", 200, 1, p99=55.0), figures("1", 2000, 10, p99=50.0))
    assert verdict.outcome is Outcome.PASS
    assert verdict.failed == ()
    rate, latency = verdict.checks
    assert (rate.gate, rate.candidate, rate.production, rate.bound) == (Gate.ERROR_RATE, 0.005, 0.005, 0.015)
    assert (latency.gate, latency.candidate, latency.production) == (Gate.P99_LATENCY, 55.0, 50.0)
    assert latency.bound == pytest.approx(60.0)
    assert "error_rate gate passed: candidate 0.50% (1 of 200 requests) <= bound 1.50%" in verdict.reason
    assert "p99_latency gate passed: candidate p99 55.0 ms <= bound 60.0 ms" in verdict.reason


@pytest.mark.parametrize(
    ("candidate", "production", "short"),
    [
        (99, 5000, "the candidate 2 served 99 of the 100 requests"),
        (5000, 99, "production 1 served 99 of the 100 requests"),
        (0, 0, "the candidate 2 served 0 and production 1 served 0 of the 100 requests"),
    ],
)
def test_too_little_traffic_waits_whatever_the_figures(candidate: int, production: int, short: str) -> None:
    # every request of the candidate failed, and slowly: still too few to judge
    verdict = judge(POLICY, figures("2", candidate, candidate, p99=9000.0), figures("1", production))
    assert verdict.outcome is Outcome.WAIT
    assert short in verdict.reason
    assert verdict.checks == ()


def test_min_requests_is_enough() -> None:
    assert judge(POLICY, figures("2", 100), figures("1", 100)).outcome is Outcome.PASS


def test_a_higher_error_rate_fails_naming_the_gate_the_figures_and_the_bound() -> None:
    verdict = judge(POLICY, figures("2", 500, 16), figures("1", 2000, 10))
    assert verdict.outcome is Outcome.FAIL
    (failed,) = verdict.failed
    assert failed.gate is Gate.ERROR_RATE
    assert (failed.candidate, failed.production, failed.bound) == (0.032, 0.005, 0.015)
    assert verdict.reason.startswith("error_rate gate failed: candidate 3.20% (16 of 500 requests) > bound 1.50% ")
    assert "production 0.50%, 10 of 2000, + margin 1.00%" in verdict.reason


def test_production_without_errors_bounds_the_candidate_by_the_margin() -> None:
    production = figures("1", 1000, 0)
    assert judge(POLICY, figures("2", 1000, 10), production).outcome is Outcome.PASS  # exactly 1%: at the bound
    assert judge(POLICY, figures("2", 1000, 11), production).outcome is Outcome.FAIL
    strict = RolloutPolicy(max_error_rate_margin=0)
    assert judge(strict, figures("2", 1000, 0), production).outcome is Outcome.PASS
    assert judge(strict, figures("2", 1000, 1), production).outcome is Outcome.FAIL


def test_a_rate_exactly_at_the_bound_passes_despite_floating_point() -> None:
    # 0.1 + 0.2 > 0.3 in floating point; 3 of 10 is at the bound, and passes
    policy = RolloutPolicy(max_error_rate_margin=0.2, min_requests=10)
    assert judge(policy, figures("2", 10, 3), figures("1", 10, 1)).outcome is Outcome.PASS


def test_a_slower_candidate_fails_the_latency_gate() -> None:
    verdict = judge(POLICY, figures("2", 500, p99=61.0), figures("1", 500, p99=50.0))
    assert verdict.outcome is Outcome.FAIL
    (failed,) = verdict.failed
    assert failed.gate is Gate.P99_LATENCY
    assert "p99_latency gate failed: candidate p99 61.0 ms > bound 60.0 ms (1.2 x production's p99 50.0 ms)" in (
        verdict.reason
    )


def test_both_gates_failing_are_both_named() -> None:
    verdict = judge(POLICY, figures("2", 500, 100, p99=500.0), figures("1", 500, 0, p99=50.0))
    assert {check.gate for check in verdict.failed} == {Gate.ERROR_RATE, Gate.P99_LATENCY}
    assert "error_rate gate failed" in verdict.reason and "p99_latency gate failed" in verdict.reason


@pytest.mark.parametrize("missing", ["candidate", "production", "both"])
def test_a_missing_p99_waits(missing: str) -> None:
    candidate = figures("2", 500, p99=None if missing in ("candidate", "both") else 50.0)
    production = figures("1", 500, p99=None if missing in ("production", "both") else 50.0)
    verdict = judge(POLICY, candidate, production)
    assert verdict.outcome is Outcome.WAIT
    assert "no p99 latency yet for" in verdict.reason
    assert [check.gate for check in verdict.checks] == [Gate.ERROR_RATE]


def test_a_missing_p99_does_not_hold_back_a_failed_error_gate() -> None:
    verdict = judge(POLICY, figures("2", 500, 100, p99=None), figures("1", 500, 0))
    assert verdict.outcome is Outcome.FAIL
    assert [check.gate for check in verdict.failed] == [Gate.ERROR_RATE]


def test_zero_latency_in_production_is_taken_as_the_floor() -> None:
    production = figures("1", 500, p99=0.0)
    fast = judge(POLICY, figures("2", 500, p99=1.1), production)
    assert fast.outcome is Outcome.PASS
    assert fast.checks[1].bound == pytest.approx(1.2 * LATENCY_FLOOR_MS)
    assert "taken as 1 ms" in fast.reason
    assert judge(POLICY, figures("2", 500, p99=1.3), production).outcome is Outcome.FAIL


def test_a_candidate_of_zero_latency_passes() -> None:
    assert judge(POLICY, figures("2", 500, p99=0.0), figures("1", 500, p99=50.0)).outcome is Outcome.PASS


def test_figures_refuse_more_errors_than_requests() -> None:
    with pytest.raises(ValidationError, match="errors are a part of them"):
        figures("2", 10, 11)
    assert figures("2", 0).error_rate is None
    assert figures("2", 4, 1).error_rate == 0.25
