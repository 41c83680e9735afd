"""The gates of a rollout step: does the candidate do as well as production, within the policy?

:func:`judge` is pure: the policy and both versions' figures over the same window in, a
:class:`StepVerdict` out.

- **WAIT** while either version has served fewer than ``min_requests`` requests in the window:
  never judged on too little; and while a p99 latency is missing (CloudWatch has not aggregated
  it yet) unless the error gate already failed.
- **FAIL** when a gate is breached, naming the gate, both versions' figures and the bound.
- **PASS** otherwise, with the figures.

The gates:

- ``error_rate``: the candidate's errors per request (5xx answers, model errors included: the API
  answers those 502, see :class:`VersionFigures`) at most production's plus
  ``max_error_rate_margin``. A production without errors bounds the candidate by the margin alone.
- ``p99_latency``: the candidate's p99 latency at most ``max_p99_latency_ratio`` times
  production's. A p99 under :data:`LATENCY_FLOOR_MS` is taken as that floor for the bound, so a
  production whose answers round to 0 ms does not make every candidate fail (a ratio of nothing
  bounds nothing).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.rollout.figures import VersionFigures
from chalicelib.domain.rollout.policy import RolloutPolicy

LATENCY_FLOOR_MS = 1.0
# error rates are compared as fractions computed in floating point: a candidate exactly at the
# bound passes
_EPSILON = 1e-12


class Outcome(StrEnum):
    PASS = "PASS"
    WAIT = "WAIT"
    FAIL = "FAIL"


class Gate(StrEnum):
    ERROR_RATE = "error_rate"
    P99_LATENCY = "p99_latency"


class GateCheck(BaseModel):
    """One gate on one window: both versions' figures, the candidate's bound, and whether it held.
    Error rates are fractions (0.01 is 1%); latencies are milliseconds."""

    model_config = ConfigDict(frozen=True)

    gate: Gate
    candidate: float
    production: float
    bound: float
    passed: bool
    detail: str


class StepVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reason: str
    checks: tuple[GateCheck, ...] = ()
    candidate: VersionFigures
    production: VersionFigures

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(check for check in self.checks if not check.passed)


def judge(policy: RolloutPolicy, candidate: VersionFigures, production: VersionFigures) -> StepVerdict:
    """The verdict on one step's window (see the module's doc)."""

    def verdict(outcome: Outcome, reason: str, checks: list[GateCheck]) -> StepVerdict:
        return StepVerdict(
            outcome=outcome, reason=reason, checks=tuple(checks), candidate=candidate, production=production
        )

    short = [
        f"{role} {figures.version} served {figures.invocations}"
        for role, figures in (("the candidate", candidate), ("production", production))
        if figures.invocations < policy.min_requests
    ]
    if short:
        reason = f"{' and '.join(short)} of the {policy.min_requests} requests each needs in a step"
        return verdict(Outcome.WAIT, f"too little traffic to judge: {reason}", [])
    checks = [_error_rate(policy, candidate, production)]
    if candidate.p99_latency_ms is not None and production.p99_latency_ms is not None:
        checks.append(_p99_latency(candidate.p99_latency_ms, production.p99_latency_ms, policy))
    failed = [check for check in checks if not check.passed]
    if failed:  # a breached error gate fails the step even while a latency is still missing
        return verdict(Outcome.FAIL, "; ".join(f"{c.gate.value} gate failed: {c.detail}" for c in failed), checks)
    missing = [
        f"{role} {figures.version}"
        for role, figures in (("the candidate", candidate), ("production", production))
        if figures.p99_latency_ms is None
    ]
    if missing:
        reason = f"no p99 latency yet for {' and '.join(missing)} (the metrics lag the requests)"
        return verdict(Outcome.WAIT, reason, checks)
    return verdict(Outcome.PASS, "; ".join(f"{c.gate.value} gate passed: {c.detail}" for c in checks), checks)


def _error_rate(policy: RolloutPolicy, candidate: VersionFigures, production: VersionFigures) -> GateCheck:
    ours = candidate.errors / candidate.invocations  # both have min_requests >= 1 requests here
    theirs = production.errors / production.invocations
    bound = theirs + policy.max_error_rate_margin
    passed = ours <= bound + _EPSILON
    detail = (
        f"candidate {_rate(ours)} ({candidate.errors} of {candidate.invocations} requests) "
        f"{'<=' if passed else '>'} bound {_rate(bound)} (production {_rate(theirs)}, "
        f"{production.errors} of {production.invocations}, + margin {_rate(policy.max_error_rate_margin)})"
    )
    return GateCheck(gate=Gate.ERROR_RATE, candidate=ours, production=theirs, bound=bound, passed=passed, detail=detail)


def _p99_latency(ours: float, theirs: float, policy: RolloutPolicy) -> GateCheck:
    bound = policy.max_p99_latency_ratio * max(theirs, LATENCY_FLOOR_MS)
    passed = ours <= bound
    floor = f", taken as {LATENCY_FLOOR_MS:g} ms" if theirs < LATENCY_FLOOR_MS else ""
    detail = (
        f"candidate p99 {ours:.1f} ms {'<=' if passed else '>'} bound {bound:.1f} ms "
        f"({policy.max_p99_latency_ratio:g} x production's p99 {theirs:.1f} ms{floor})"
    )
    return GateCheck(
        gate=Gate.P99_LATENCY, candidate=ours, production=theirs, bound=bound, passed=passed, detail=detail
    )


def _rate(fraction: float) -> str:
    return f"{fraction:.2%}"
