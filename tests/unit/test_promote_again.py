"""A promotion that failed (the version was approved; PromoteModel ended it FAILED without moving the
alias: a production warm-up that failed, a concurrent promotion that won, an execution stopped or
lost) may be asked for again with ``promote``; a deployment's own failure may not (a redeploy is
its way forward). Found by the fault matrix: after a PromoteModel execution was stopped or lost in
a restart, ``promote`` answered 409 and the approval was lost with it."""

from __future__ import annotations

import pytest

from chalicelib.domain.lifecycle import PROMOTION_REQUESTED, Status
from chalicelib.execution_ended import ABORTED
from mmedeploy.follow import PromotionEnding, ending_of
from tests.unit.builders import a_version
from tests.unit.test_promotion_stages import FIRST, SECOND, Promotion, refused

S = Status


@pytest.fixture
def world() -> Promotion:
    return Promotion()


def test_a_promotion_stopped_midway_is_asked_for_again_and_reaches_production(world: Promotion) -> None:
    # GIVEN an approved version whose PromoteModel execution was stopped while it warmed
    world.approved()
    world.prepare(execution=FIRST)
    assert world.fail(execution=FIRST, error=ABORTED) == "FAILED"
    failed = world.registry.get("fraud", "1", with_history=True)
    # WHEN an admin promotes it again
    accepted = world.requests.promote("fraud", "1", "api:ops")
    # THEN the promotion is requested again, as for an approved version
    assert (accepted.action, accepted.status) == ("promotion requested again", S.FAILED)
    kind, event = world.publisher.events[-1]
    assert (kind, event.name, event.version, event.actor) == (PROMOTION_REQUESTED, "fraud", "1", "api:ops")
    # AND the new execution claims it, a promotion (not a rollback), and takes it to production
    prepared = world.prepare(execution=SECOND, by="api:ops")
    assert (prepared.started, prepared.rollback) == (True, False)
    promoting = world.registry.get("fraud", "1")
    assert promoting.status is S.PROMOTING and promoting.promotion is not None
    assert promoting.promotion.execution_arn == SECOND
    world.warm(execution=SECOND)
    world.flip(execution=SECOND, prepared=prepared)
    served = world.registry.get("fraud", "1", with_history=True)
    assert served.status is S.PRODUCTION and world.alias().version == "1"
    # AND the failed run stays in its history
    assert served.history[: len(failed.history)] == failed.history


def test_the_stopped_executions_late_error_does_not_end_the_promotion_asked_for_again(world: Promotion) -> None:
    world.approved()
    world.prepare(execution=FIRST)
    world.fail(execution=FIRST, error=ABORTED)
    world.requests.promote("fraud", "1", "api:ops")
    world.prepare(execution=SECOND)
    # WHEN the first execution's Catch reports once more
    assert world.fail(execution=FIRST) == "PROMOTING"
    # THEN the promotion the second execution owns goes on
    assert world.registry.get("fraud", "1").status is S.PROMOTING


def test_a_deployments_failure_is_not_promoted_and_the_answer_points_at_a_redeploy(world: Promotion) -> None:
    # GIVEN a version that failed before approval (its DeployModel execution was stopped)
    world.registry.register(
        a_version(status=S.FAILED, reason="ExecutionAborted: the DeployModel execution x was stopped at WarmStaging"),
        "test",
    )
    events = len(world.publisher.events)
    # WHEN an admin promotes it THEN it is refused, saying why and what would start it again
    status, message = refused(lambda: world.requests.promote("fraud", "1", "api:ops"))
    assert status == 409
    assert message.startswith("fraud 1 is FAILED; only AWAITING_APPROVAL, APPROVED or RETIRED versions, or one whose")
    assert "(its deployment ended: ExecutionAborted: the DeployModel execution x was stopped at WarmStaging)" in message
    assert message.endswith("a redeploy may start it again")
    assert len(world.publisher.events) == events
    # AND a PromotionRequested that reached PromoteModel anyway promotes nothing
    prepared = world.prepare(execution=SECOND)
    assert not prepared.started and prepared.reason == "fraud 1 is FAILED: nothing to promote"
    assert world.registry.get("fraud", "1").status is S.FAILED


def test_following_a_promotion_asked_for_again_waits_past_the_old_failure() -> None:
    # the CLI follows from the revision it read before the request: FAILED at that revision is the old failure
    assert ending_of(a_version(status=S.FAILED, revision=7), 7) is None
    assert ending_of(a_version(status=S.FAILED, revision=9), 7) is PromotionEnding.FAILED
    assert ending_of(a_version(status=S.FAILED, revision=7), None) is PromotionEnding.FAILED
