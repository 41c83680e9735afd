"""Where a rollout stands: kept on its version's record (``PromotionRun.rollout``) while the version
is PROMOTING, so the registry holds every step, and `mmedeploy status` and the Slack message show
it from the record alone.

The step the rollout is at, when that step began (its window: the gates read the figures of both
versions from then), whether an admin paused it, and the latest reading of the gates (both
versions' figures against their bounds) with the time of the next one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.rollout.gates import GateCheck, Outcome, StepVerdict
from chalicelib.domain.rollout.policy import RolloutPolicy


class Figures(BaseModel):
    """One version's figures in a reading (see ``VersionFigures``), as the record keeps them."""

    model_config = ConfigDict(frozen=True)

    version: str
    invocations: int
    errors: int
    p99_latency_ms: float | None = None


class Reading(BaseModel):
    """One evaluation of the gates: its outcome, why, and both versions' figures."""

    model_config = ConfigDict(frozen=True)

    at: str
    outcome: Outcome
    reason: str
    candidate: Figures
    production: Figures
    checks: tuple[GateCheck, ...] = ()
    window_start: str  # the figures are from this minute (CloudWatch's periods are whole minutes)

    @classmethod
    def of(cls, verdict: StepVerdict, at: str) -> Reading:
        def figures(of: object) -> Figures:
            return Figures.model_validate(of, from_attributes=True)

        return cls(
            at=at,
            outcome=verdict.outcome,
            reason=verdict.reason,
            candidate=figures(verdict.candidate),
            production=figures(verdict.production),
            checks=verdict.checks,
            window_start=verdict.candidate.start.isoformat().replace("+00:00", "Z"),
        )


class RolloutRun(BaseModel):
    """A rollout's progress (see the module's doc). ``step`` indexes ``policy.steps``: -1 before the
    first step (the candidate is warming on production)."""

    policy: RolloutPolicy
    production_version: str  # what the candidate is judged against: production when it began
    step: int = -1
    step_started_at: str | None = None
    paused_by: str | None = None
    paused_at: str | None = None
    last: Reading | None = None
    next_evaluation_at: str | None = None

    @property
    def started(self) -> bool:
        return self.step >= 0

    @property
    def weight(self) -> float:
        """The candidate's share of the traffic now (0 before the first step), as a fraction."""
        return self.policy.steps[self.step] / 100 if self.started else 0.0

    @property
    def last_canary_step(self) -> bool:
        """The step after this one is the last: 100%, the promotion itself."""
        return self.step + 2 >= len(self.policy.steps)

    def describe_step(self) -> str:
        """e.g. 'step 2 of 4 (25%)'."""
        if not self.started:
            return "before its first step"
        return f"step {self.step + 1} of {len(self.policy.steps)} ({self.policy.steps[self.step]:g}%)"
