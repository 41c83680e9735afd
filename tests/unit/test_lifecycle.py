"""The lifecycle's transition table: what may follow what, where a deployment ends, and the event
that announces each status."""

from __future__ import annotations

from itertools import combinations, pairwise

import pytest

from chalicelib.domain.lifecycle import ALLOWED_FROM, EVENT_FOR_STATUS, SETTLED, TERMINAL, Status, may_move

S = Status
MAIN_PATH = [S.RECEIVED, S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.AWAITING_APPROVAL]
# Not ended and not serving: a version here still has a deployment (or promotion) running.
IN_PROGRESS = sorted(set(Status) - TERMINAL - {S.PRODUCTION})
# The detail-types of the lifecycle bus, as docs/architecture.md lists them.
CONTRACT_EVENTS = {
    S.RECEIVED: "ModelReceived",
    S.VALIDATED: "ModelValidated",
    S.REJECTED: "ModelRejected",
    S.STAGED: "ModelWarmed",
    S.AWAITING_APPROVAL: "ApprovalRequested",
    S.APPROVED: "ModelApproved",
    S.DECLINED: "ModelDeclined",
    S.PRODUCTION: "ModelPromoted",
    S.FAILED: "DeploymentFailed",
}


def successors(status: Status) -> set[Status]:
    return {target for target in Status if may_move(status, target)}


def test_the_table_covers_every_status() -> None:
    assert set(ALLOWED_FROM) == set(Status)


def test_the_main_path_moves_forward_one_step_at_a_time() -> None:
    # GIVEN consecutive statuses of the main path / WHEN moving along it / THEN each step is allowed
    for current, following in pairwise(MAIN_PATH):
        assert may_move(current, following), f"{current} -> {following}"


@pytest.mark.parametrize(("earlier", "later"), list(combinations(MAIN_PATH, 2)))
def test_no_status_moves_backwards_along_the_main_path(earlier: Status, later: Status) -> None:
    assert not may_move(later, earlier)


@pytest.mark.parametrize(
    ("earlier", "later"), [(a, b) for a, b in combinations(MAIN_PATH, 2) if MAIN_PATH.index(b) - MAIN_PATH.index(a) > 1]
)
def test_no_step_of_the_main_path_can_be_skipped(earlier: Status, later: Status) -> None:
    assert not may_move(earlier, later)


@pytest.mark.parametrize("status", list(Status))
def test_no_status_moves_to_itself(status: Status) -> None:
    # a repeated step is the registry's no-op, never a move in the table
    assert not may_move(status, status)


def test_received_is_created_or_entered_again_only_by_a_redeploy() -> None:
    # a redeploy starts a FAILED or EXPIRED version's DeployModel again on the same artifact
    assert {status for status in Status if may_move(status, S.RECEIVED)} == {S.FAILED, S.EXPIRED}


@pytest.mark.parametrize("status", sorted(TERMINAL - {S.RETIRED}))
def test_an_ended_deployment_accepts_no_move_but_a_redeploy_or_a_failed_promotion_asked_for_again(
    status: Status,
) -> None:
    # a rejection or a decline is final; a failure or an expiry may be deployed again, and a
    # promotion that failed may be asked for again (promote_model/ownership.py: which FAILED ones)
    again = {S.RECEIVED} if status in (S.FAILED, S.EXPIRED) else set()
    assert successors(status) == (again | {S.PROMOTING} if status is S.FAILED else again)


def test_retired_accepts_only_a_rollback_which_warms_it_again_first() -> None:
    assert successors(S.RETIRED) == {S.PROMOTING}


def test_production_is_entered_only_through_a_promotion() -> None:
    assert ALLOWED_FROM[S.PRODUCTION] == {S.PROMOTING}


def test_a_promotion_ends_serving_failed_or_back_where_a_rollback_began_or_rolled_back_by_its_rollout() -> None:
    assert successors(S.PROMOTING) == {S.PRODUCTION, S.FAILED, S.RETIRED, S.ROLLED_BACK}


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_accept_exactly_what_the_table_says(status: Status) -> None:
    assert successors(status) == {target for target, sources in ALLOWED_FROM.items() if status in sources}


@pytest.mark.parametrize("status", IN_PROGRESS)
def test_failed_is_reachable_from_every_in_progress_status(status: Status) -> None:
    assert may_move(status, S.FAILED)


@pytest.mark.parametrize("status", sorted(TERMINAL | {S.PRODUCTION}))
def test_failed_is_not_reachable_from_an_ended_or_serving_version(status: Status) -> None:
    assert not may_move(status, S.FAILED)


def test_the_approval_decisions_are_taken_only_while_awaiting_approval() -> None:
    for decision in (S.APPROVED, S.DECLINED, S.EXPIRED):
        assert ALLOWED_FROM[decision] == {S.AWAITING_APPROVAL}


def test_every_status_is_reachable_from_received() -> None:
    reached, frontier = {S.RECEIVED}, [S.RECEIVED]
    while frontier:
        for following in successors(frontier.pop()) - reached:
            reached.add(following)
            frontier.append(following)
    assert reached == set(Status)


def test_terminal_statuses_are_settled() -> None:
    assert TERMINAL <= SETTLED
    assert {S.AWAITING_APPROVAL, S.APPROVED, S.PRODUCTION} <= SETTLED
    assert not SETTLED & {S.RECEIVED, S.VALIDATING, S.VALIDATED, S.WARMING, S.STAGED, S.PROMOTING}


def test_every_status_has_its_own_event_name() -> None:
    assert set(EVENT_FOR_STATUS) == set(Status)
    assert all(name and name[0].isupper() for name in EVENT_FOR_STATUS.values())
    assert len(set(EVENT_FOR_STATUS.values())) == len(Status)


@pytest.mark.parametrize(("status", "event"), list(CONTRACT_EVENTS.items()))
def test_the_contract_event_names_announce_their_status(status: Status, event: str) -> None:
    assert EVENT_FOR_STATUS[status] == event
