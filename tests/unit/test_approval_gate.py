"""The approval gate on the real ModelRegistry (moto): one decision per approval request, whoever
clicks and however often; what the execution then records (RecordApproval, RecordOutcome); the
registry's decision claims; the Step Functions callback; and the approval messages in Slack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from slack_sdk.errors import SlackApiError

from chalicelib.adapters import slack_messages
from chalicelib.adapters.slack_notifier import SlackNotifier
from chalicelib.adapters.step_functions import TaskCallback, TaskGone
from chalicelib.approval.gate import GateVerdict
from chalicelib.deploy_model.record_outcome import RecordOutcome
from chalicelib.deploy_model.stage_io import RecordOutcomeInput
from chalicelib.domain.approvals import DECLINED_ERROR, FORMER_DECLINE, Decision, PendingApproval
from chalicelib.domain.errors import AlreadyDecided, ApprovalNotFound, RegistryError, ServiceError
from chalicelib.domain.lifecycle import Status
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.stages.stage_io import StageError
from tests.unit.fakes import SLACK_CHANNEL, ApprovalWorld, deploy_execution

S = Status
ALICE, BOB = "slack:U0ALICE", "slack:U0BOB"


@pytest.fixture
def world() -> ApprovalWorld:
    return ApprovalWorld()


def approval(world: ApprovalWorld, approval_id: str) -> PendingApproval:
    found = world.registry.find_approval(approval_id)
    assert found is not None
    return found


# -- deciding -------------------------------------------------------------------------------------
def test_an_approval_resumes_the_execution_with_the_decision(world: ApprovalWorld) -> None:
    # GIVEN a version waiting for approval
    approval_id = world.awaiting()
    # WHEN an approver approves it
    answer = world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    # THEN the waiting task succeeds with the decision, naming the decider and the approval
    assert (answer.ok, answer.outcome, answer.name, answer.version) == (True, GateVerdict.APPROVED, "fraud", "1")
    assert "approved by slack:U0ALICE" in answer.text
    claimed = approval(world, approval_id)
    assert world.callback.succeeded == [
        (
            "token-fraud-1-1",
            {"decision": "approve", "decided_by": ALICE, "approval_id": approval_id, "decided_at": claimed.decided_at},
        )
    ]
    assert world.callback.failed == []
    assert (claimed.decision, claimed.decided_by) == ("approve", ALICE) and claimed.decided_at
    # AND the version moves only when the execution goes on (RecordApproval)
    assert world.registry.get("fraud", "1").status is S.AWAITING_APPROVAL


def test_a_decline_fails_the_task_with_approval_declined_and_the_decider(world: ApprovalWorld) -> None:
    approval_id = world.awaiting()
    answer = world.gate.decide(approval_id, Decision.DECLINE, BOB)
    assert (answer.ok, answer.outcome) == (True, GateVerdict.DECLINED)
    assert world.callback.succeeded == []
    assert world.callback.failed == [
        (
            "token-fraud-1-1",
            DECLINED_ERROR,
            {"errorMessage": f"declined by {BOB} (approval {approval_id})", "decided_by": BOB},
        )
    ]
    assert approval(world, approval_id).decision == "decline"


@pytest.mark.parametrize(
    ("first", "second", "second_by"),
    [
        (Decision.APPROVE, Decision.APPROVE, ALICE),  # a double click
        (Decision.APPROVE, Decision.DECLINE, BOB),
        (Decision.DECLINE, Decision.APPROVE, BOB),
        (Decision.DECLINE, Decision.DECLINE, ALICE),
    ],
)
def test_a_second_decision_names_the_first_decider_and_changes_nothing(
    world: ApprovalWorld, first: Decision, second: Decision, second_by: str
) -> None:
    # GIVEN a decided approval
    approval_id = world.awaiting()
    assert world.gate.decide(approval_id, first, ALICE).ok
    before = world.untouched(approval_id)
    # WHEN someone clicks again
    answer = world.gate.decide(approval_id, second, second_by)
    # THEN it was already decided, by the first decider; nothing is claimed or resumed again
    verb = "approved" if first is Decision.APPROVE else "declined"
    assert (answer.ok, answer.outcome) == (False, GateVerdict.ALREADY_DECIDED)
    assert f"already {verb} by {ALICE}" in answer.text
    assert world.untouched(approval_id) == before


def test_a_late_click_after_the_execution_recorded_the_approval_says_where_it_stands(world: ApprovalWorld) -> None:
    approval_id = world.awaiting()
    world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    world.record_approval()
    answer = world.gate.decide(approval_id, Decision.DECLINE, BOB)
    assert answer.outcome is GateVerdict.ALREADY_DECIDED and answer.status is S.APPROVED
    assert answer.text.endswith("it is APPROVED")


def test_a_decision_for_an_expired_version_changes_nothing(world: ApprovalWorld) -> None:
    # GIVEN a version whose approval timed out (RecordOutcome made it EXPIRED), its buttons still there
    approval_id = world.awaiting()
    world.tracker.move("fraud", "1", S.EXPIRED, "pipeline/record-outcome", "no approval decision")
    before = world.untouched(approval_id)
    # WHEN an approver clicks
    answer = world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    # THEN the answer says it expired; the approval is not even claimed
    assert (answer.ok, answer.outcome, answer.status) == (False, GateVerdict.EXPIRED, S.EXPIRED)
    assert "nothing changed" in answer.text
    assert world.untouched(approval_id) == before
    assert approval(world, approval_id).decision is None


@pytest.mark.parametrize("status", [S.APPROVED, S.DECLINED])
def test_a_decision_for_a_version_no_longer_awaiting_changes_nothing(world: ApprovalWorld, status: Status) -> None:
    approval_id = world.awaiting()
    world.tracker.move("fraud", "1", status, "api:admin", "decided elsewhere")
    before = world.untouched(approval_id)
    answer = world.gate.decide(approval_id, Decision.DECLINE, ALICE)
    assert (answer.ok, answer.outcome, answer.status) == (False, GateVerdict.NOT_AWAITING, status)
    assert f"it is {status.value} since" in answer.text and "(decided elsewhere)" in answer.text
    assert world.untouched(approval_id) == before


def test_a_superseded_approval_request_changes_nothing(world: ApprovalWorld) -> None:
    # GIVEN RequestApproval ran twice (a retried task): the second request is the live one
    stale = world.awaiting()
    live = world.ask_again()
    assert world.registry.get("fraud", "1").approval_id == live != stale
    before = world.untouched(stale)
    # WHEN the first message's button is clicked
    answer = world.gate.decide(stale, Decision.APPROVE, ALICE)
    # THEN nothing changes, and the answer names the live request
    assert (answer.ok, answer.outcome) == (False, GateVerdict.NOT_AWAITING)
    assert f"superseded by {live}" in answer.text
    assert world.untouched(stale) == before
    # AND the live request can still be decided, resuming its own task
    assert world.gate.decide(live, Decision.APPROVE, ALICE).ok
    assert [token for token, _ in world.callback.succeeded] == ["token-fraud-1-2"]


def test_an_unknown_approval_id_is_answered_without_any_change(world: ApprovalWorld) -> None:
    world.awaiting()
    answer = world.gate.decide("apv_ffffffffffffffff", Decision.APPROVE, ALICE)
    assert (answer.ok, answer.outcome, answer.name) == (False, GateVerdict.UNKNOWN_APPROVAL, None)
    assert world.callback.calls == 0


def test_an_approval_for_an_unregistered_version_is_unknown(world: ApprovalWorld) -> None:
    orphan = world.registry.put_approval("ghost", "1", "token-ghost")
    answer = world.gate.decide(orphan.approval_id, Decision.APPROVE, ALICE)
    assert answer.outcome is GateVerdict.UNKNOWN_APPROVAL and "ghost 1 is not registered" in answer.text
    assert approval(world, orphan.approval_id).decision is None and world.callback.calls == 0


def test_a_decision_after_the_task_timed_out_is_expired_and_stays_expired(world: ApprovalWorld) -> None:
    # GIVEN a version still AWAITING_APPROVAL in the registry, but Step Functions gave up waiting
    approval_id = world.awaiting()
    world.callback.error = TaskGone("TaskTimedOut", "Task Timed Out")
    # WHEN an approver approves
    answer = world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    # THEN the answer says it expired, and the approval is marked so
    assert (answer.ok, answer.outcome) == (False, GateVerdict.EXPIRED)
    assert "already timed out" in answer.text
    assert approval(world, approval_id).decision == "expired"
    assert world.registry.get("fraud", "1").status is S.AWAITING_APPROVAL
    # AND every later click is told it expired, without calling Step Functions
    for decision, actor in ((Decision.APPROVE, ALICE), (Decision.DECLINE, BOB)):
        later = world.gate.decide(approval_id, decision, actor)
        assert (later.ok, later.outcome) == (False, GateVerdict.EXPIRED) and "has expired" in later.text
    assert world.callback.calls == 0


@pytest.mark.parametrize("code", ["TaskDoesNotExist", "InvalidToken"])
def test_a_task_gone_for_another_reason_is_told_as_it_is_and_the_version_reconciled(
    world: ApprovalWorld, code: str
) -> None:
    # GIVEN a version AWAITING_APPROVAL whose execution was stopped (its task no longer exists)
    approval_id = world.awaiting()
    world.callback.error = TaskGone(code, "no such task")
    world.reconcile_to = (S.FAILED, "ExecutionAborted: the DeployModel execution e1 was stopped at RequestApproval")
    # WHEN an approver approves
    answer = world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    # THEN the answer says the decision was not delivered and what became of the version: never
    # "approved", never "expired"
    assert (answer.ok, answer.outcome, answer.status) == (False, GateVerdict.UNDELIVERABLE, S.FAILED)
    assert answer.text == (
        f"the decision on fraud 1 could not be delivered: its deployment no longer waits for it ({code}: no such "
        "task); nothing was decided; it is FAILED (ExecutionAborted: the DeployModel execution e1 was stopped at "
        "RequestApproval)"
    )
    # AND the version was reconciled in the same request, and the claim released (nothing decided)
    assert world.reconciled == ["fraud 1"]
    assert approval(world, approval_id).decision is None
    # AND a later click is told the version no longer waits
    later = world.gate.decide(approval_id, Decision.DECLINE, BOB)
    assert later.outcome is GateVerdict.NOT_AWAITING and "it is FAILED" in later.text


def test_a_task_gone_while_its_execution_still_runs_changes_nothing_and_says_so(world: ApprovalWorld) -> None:
    approval_id = world.awaiting()
    world.callback.error = TaskGone("InvalidToken", "bad token")
    answer = world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    assert (answer.outcome, answer.status) == (GateVerdict.UNDELIVERABLE, S.AWAITING_APPROVAL)
    assert answer.text.endswith("nothing was decided; it is AWAITING_APPROVAL")


def test_a_failed_resume_releases_the_claim_so_a_retry_can_decide(world: ApprovalWorld) -> None:
    # GIVEN Step Functions answers the first callback with a throttling error
    approval_id = world.awaiting()
    world.callback.error = RuntimeError("ThrottlingException: Rate exceeded")
    # WHEN the approver clicks / THEN the error propagates and the claim is released
    with pytest.raises(RuntimeError, match="ThrottlingException"):
        world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    released = approval(world, approval_id)
    assert (released.decision, released.decided_by, released.decided_at) == (None, None, None)
    assert world.callback.calls == 0
    # AND a retried click (by anyone) decides
    answer = world.gate.decide(approval_id, Decision.DECLINE, BOB)
    assert answer.outcome is GateVerdict.DECLINED
    assert [error for _, error, _ in world.callback.failed] == [DECLINED_ERROR]


# -- what the execution records --------------------------------------------------------------------
def test_record_approval_moves_to_approved_with_the_decider_as_actor(world: ApprovalWorld) -> None:
    # GIVEN an approval clicked in Slack
    approval_id = world.awaiting()
    world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    # WHEN the execution records it
    status = world.record_approval()
    # THEN the version is APPROVED, the history names the decider, and ModelApproved starts promotion
    assert status == "APPROVED"
    last = world.registry.history("fraud", "1")[-1]
    assert (last.status, last.actor) == (S.APPROVED, ALICE)
    assert approval_id in last.reason and last.reason.startswith(f"approved by {ALICE} at ")
    assert world.publisher.kinds[-1] == "ModelApproved"
    # AND the Slack message is rewritten with the outcome
    updated, shown = world.notifier.updates[-1]
    assert (updated.status, shown.approval_id, shown.decided_by) == (S.APPROVED, approval_id, ALICE)


def test_a_declined_outcome_is_recorded_with_the_decider_as_actor(world: ApprovalWorld) -> None:
    # GIVEN a decline clicked in Slack
    approval_id = world.awaiting()
    world.gate.decide(approval_id, Decision.DECLINE, BOB)
    (_, error, cause) = world.callback.failed[-1]
    # WHEN the Catch hands the task failure to RecordOutcome
    outcome = RecordOutcomeInput(
        name="fraud",
        version="1",
        execution=deploy_execution("fraud", "1"),
        error=StageError(Error=error, Cause=json.dumps(cause)),
    )
    status = RecordOutcome(world.tracker).run(outcome).status
    # THEN the version is DECLINED by the decider, with the decline as the reason
    record = world.registry.get("fraud", "1", with_history=True)
    assert status == "DECLINED"
    assert record.status is S.DECLINED
    assert record.reason.startswith(f"declined by {BOB}") and f"(approval {approval_id})" in record.reason
    assert (record.history[-1].status, record.history[-1].actor) == (S.DECLINED, BOB)
    assert [r.status for r in world.notifier.outcomes] == [S.DECLINED]


# -- the registry's decision claims ----------------------------------------------------------------
def test_a_decision_is_claimed_once_and_later_claims_name_the_first(world: ApprovalWorld) -> None:
    pending = world.registry.put_approval("fraud", "1", "token")
    first = world.registry.claim_decision(pending.approval_id, "approve", ALICE)
    with pytest.raises(AlreadyDecided) as raised:
        world.registry.claim_decision(pending.approval_id, "decline", BOB)
    assert (first.decision, first.decided_by, first.task_token) == ("approve", ALICE, "token")
    assert (raised.value.approval.decision, raised.value.approval.decided_by) == ("approve", ALICE)
    assert raised.value.approval.decided_at == first.decided_at


def test_a_released_decision_can_be_claimed_again(world: ApprovalWorld) -> None:
    pending = world.registry.put_approval("fraud", "1", "token")
    world.registry.claim_decision(pending.approval_id, "approve", ALICE)
    world.registry.release_decision(pending.approval_id, ALICE)
    again = world.registry.claim_decision(pending.approval_id, "decline", BOB)
    assert (again.decision, again.decided_by) == ("decline", BOB)


def test_an_approval_declined_before_the_rename_reads_as_declined(world: ApprovalWorld) -> None:
    # GIVEN an approval whose stored decision is the former name of a decline, "reject"
    approval_id = world.awaiting()
    world.registry.claim_decision(approval_id, FORMER_DECLINE, BOB)
    # THEN it reads as a decline, and a later click is told so
    assert approval(world, approval_id).decision == Decision.DECLINE
    answer = world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    assert (answer.ok, answer.outcome) == (False, GateVerdict.ALREADY_DECIDED)
    assert f"already declined by {BOB}" in answer.text


def test_only_the_claimant_can_release_a_decision(world: ApprovalWorld, dynamodb: Any) -> None:
    pending = world.registry.put_approval("fraud", "1", "token")
    world.registry.claim_decision(pending.approval_id, "approve", ALICE)
    with pytest.raises(RegistryError, match="ConditionalCheckFailed"):
        world.registry.release_decision(pending.approval_id, BOB)
    assert approval(world, pending.approval_id).decided_by == ALICE


def test_claiming_an_unknown_approval_raises_approval_not_found(world: ApprovalWorld) -> None:
    with pytest.raises(ApprovalNotFound):
        world.registry.claim_decision("apv_0000000000000000", "approve", ALICE)


def test_the_approval_message_is_kept_with_the_approval(world: ApprovalWorld) -> None:
    pending = world.registry.put_approval("fraud", "1", "token")
    world.registry.set_approval_message(pending.approval_id, "C0OTHER", "1735787045.000099")
    found = approval(world, pending.approval_id)
    assert (found.slack_channel, found.slack_ts, found.task_token) == ("C0OTHER", "1735787045.000099", "token")


def test_request_approval_records_where_its_message_is(world: ApprovalWorld) -> None:
    found = approval(world, world.awaiting())
    assert (found.slack_channel, found.slack_ts) == (SLACK_CHANNEL, "1735787045.000001")


# -- the Step Functions side -----------------------------------------------------------------------
class FakeStates:
    """send_task_success/failure that record the request, or answer with an error code."""

    class exceptions:  # as on a boto3 client
        ClientError = ClientError

    def __init__(self, code: str | None = None) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._code = code

    def send_task_success(self, **request: Any) -> None:
        self._answer("SendTaskSuccess", request)

    def send_task_failure(self, **request: Any) -> None:
        self._answer("SendTaskFailure", request)

    def _answer(self, operation: str, request: dict[str, Any]) -> None:
        self.requests.append((operation, request))
        if self._code:
            raise ClientError({"Error": {"Code": self._code, "Message": "says Step Functions"}}, operation)


def test_the_callback_sends_json_output_and_cause() -> None:
    states = FakeStates()
    TaskCallback(states).succeed("tok", {"decision": "approve"})
    TaskCallback(states).fail("tok", DECLINED_ERROR, {"decided_by": BOB})
    assert states.requests == [
        ("SendTaskSuccess", {"taskToken": "tok", "output": '{"decision": "approve"}'}),
        ("SendTaskFailure", {"taskToken": "tok", "error": DECLINED_ERROR, "cause": '{"decided_by": "slack:U0BOB"}'}),
    ]


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_task_that_no_longer_waits_is_task_gone(code: str) -> None:
    with pytest.raises(TaskGone, match=code):
        TaskCallback(FakeStates(code)).succeed("tok", {})


def test_other_callback_errors_are_service_errors() -> None:
    with pytest.raises(ServiceError, match="Step Functions answered ThrottlingException: says Step Functions"):
        TaskCallback(FakeStates("ThrottlingException")).fail("tok", DECLINED_ERROR, {})


# -- the approval message ---------------------------------------------------------------------------
def texts(blocks: list[dict[str, Any]]) -> str:
    """Every mrkdwn text of the blocks, in order."""
    found: list[str] = []
    for block in blocks:
        found += [block["text"]["text"]] if "text" in block else []
        found += [f["text"] for f in block.get("fields", [])]
        found += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return "\n".join(found)


def test_the_approval_request_shows_the_evidence_and_two_buttons(world: ApprovalWorld) -> None:
    # GIVEN a staged version with an error and two warnings recorded
    record = world.staged()
    findings = [
        Finding.of(Code.CONFIG_SYNTAX, "fraud/config.pbtxt", "bad"),
        Finding.of(Code.MULTIPLE_VERSIONS, "fraud/2", "extra"),
        Finding.of(Code.MULTIPLE_VERSIONS, "fraud/3", "extra"),
    ]
    record = record.model_copy(update={"findings": findings})
    sha256 = record.sha256 or ""
    # WHEN its approval request is built
    message = slack_messages.approval_request(record, "apv_0123456789abcdef", "C0X")
    # THEN it names model, version, short hash, findings, staging timings, uploader and upload time
    shown = texts(message["blocks"])
    assert message["channel"] == "C0X"
    for expected in (
        "`fraud`",
        "*Version*\n`1`",
        f"`{sha256[:12]}`",
        "1 error(s), 2 warning(s)",
        "*Staging cold load*\n2.35 s",
        "*Staging warm p50*\n3.2 ms",
        f"{record.uploader} at {record.uploaded_at}",
    ):
        assert expected in shown, expected
    assert len(sha256) == 64 and sha256[:13] not in shown
    # AND two buttons, approve and decline, each carrying only the approval id
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("approve", "apv_0123456789abcdef"),
        ("decline", "apv_0123456789abcdef"),
    ]


def test_the_approval_outcome_has_no_buttons_and_names_the_decider(world: ApprovalWorld) -> None:
    approval_id = world.awaiting()
    world.gate.decide(approval_id, Decision.APPROVE, ALICE)
    world.record_approval()
    record, decided = world.notifier.updates[-1]
    message = slack_messages.approval_outcome(record, decided, SLACK_CHANNEL, "1735787045.000001")
    assert (message["channel"], message["ts"]) == (SLACK_CHANNEL, "1735787045.000001")
    assert all(b["type"] != "actions" for b in message["blocks"])
    assert "*APPROVED* · approved by <@U0ALICE>" in texts(message["blocks"])


class DownSlack:
    """A Slack Web client whose every call fails, as during a Slack outage."""

    def chat_postMessage(self, **message: Any) -> Any:
        raise SlackApiError("slack is down", {"ok": False, "error": "service_unavailable"})

    chat_update = chat_postMessage


def test_a_slack_outage_does_not_fail_a_message_update_and_a_promotion_notice_stays_owed(world: ApprovalWorld) -> None:
    approval = world.registry.find_approval(world.awaiting())
    assert approval is not None
    record = world.registry.get(approval.name, approval.version)
    notifier = SlackNotifier(DownSlack(), SLACK_CHANNEL)
    # THEN the message update does not raise (it is cosmetic)
    notifier.update_approval(record, approval.model_copy(update={"slack_channel": "C1", "slack_ts": "1.2"}))
    # AND the promotion's notice does: the tracker keeps the flip from failing and the notice owed
    # (test_outbox.py), so the sweep posts it once Slack is back
    with pytest.raises(SlackApiError):
        notifier.announce_promoted(record, None, rolled_back=False)
