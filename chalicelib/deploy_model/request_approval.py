"""RequestApproval: keep the task token in the registry under a short id and ask in Slack.

The execution then waits (``.waitForTaskToken``) for the Slack decision or the timeout.
"""

from __future__ import annotations

from chalicelib.adapters.slack_notifier import SlackNotifier
from chalicelib.deploy_model.stage_io import ApprovalRequest
from chalicelib.domain.lifecycle import Status
from chalicelib.stages.tracker import LifecycleTracker

ACTOR = "pipeline/request-approval"


class RequestApproval:
    def __init__(self, tracker: LifecycleTracker, notifier: SlackNotifier) -> None:
        self._tracker = tracker
        self._notifier = notifier

    def run(self, request: ApprovalRequest) -> str:
        registry = self._tracker.registry
        approval = self._tracker.approvals.put_approval(request.name, request.version, request.task_token)
        reason = f"approval {approval.approval_id} requested in Slack"
        moved = self._tracker.move(
            request.name,
            request.version,
            Status.AWAITING_APPROVAL,
            ACTOR,
            reason,
            changes=lambda _: {"approval_id": approval.approval_id},
        )
        record = moved.record
        if not moved.changed:
            # A retried request comes with a new task token: the newest approval id is the live one.
            record = registry.annotate(
                request.name, request.version, ACTOR, reason, lambda _: {"approval_id": approval.approval_id}
            )
        channel, ts = self._notifier.request_approval(record, approval.approval_id)
        if ts:
            self._tracker.approvals.set_approval_message(approval.approval_id, channel, ts)
        return approval.approval_id
