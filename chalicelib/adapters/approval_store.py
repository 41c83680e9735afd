"""Pending approvals on DynamoDB, in the registry's table: ``APPROVAL#<id>`` / ``APPROVAL`` holds
the Step Functions task token, which never leaves the registry (Slack buttons carry only the
short id), the Slack message to update, and the decision once claimed (a conditional write, so a
double click decides once)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamodb import translate_errors
from chalicelib.domain.approvals import EXPIRED_DECISION, PendingApproval
from chalicelib.domain.errors import AlreadyDecided, ApprovalNotFound
from chalicelib.domain.records import Clock, iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _approval_key(approval_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "APPROVAL"}}


def _approval_of(item: dict[str, Any]) -> PendingApproval:
    """An approval item's attributes (all strings) as the model."""
    return PendingApproval.model_validate({k: item[k]["S"] for k in PendingApproval.model_fields if k in item})


def new_approval_id() -> str:
    """Short enough for a Slack button value and a person to read; 64 bits of randomness."""
    return "apv_" + secrets.token_hex(8)


class ApprovalStore:
    def __init__(self, table: str, client: DynamoDBClient, clock: Clock = utc_now) -> None:
        self._table = table
        self._db = client
        self._clock = clock

    @translate_errors
    def put_approval(self, name: str, version: str, task_token: str) -> PendingApproval:
        approval = PendingApproval(
            approval_id=new_approval_id(),
            name=name,
            version=version,
            task_token=task_token,
            requested_at=iso(self._clock()),
        )
        item = {**_approval_key(approval.approval_id), "kind": {"S": "approval"}}
        item.update({k: {"S": v} for k, v in approval.model_dump(exclude_none=True).items()})
        self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return approval

    @translate_errors
    def find_approval(self, approval_id: str) -> PendingApproval | None:
        item = self._db.get_item(TableName=self._table, Key=_approval_key(approval_id), ConsistentRead=True).get("Item")
        return _approval_of(item) if item else None

    @translate_errors
    def set_approval_message(self, approval_id: str, channel: str, ts: str) -> None:
        """Where the approval message is, so the outcome can be written into it."""
        self._db.update_item(
            TableName=self._table,
            Key=_approval_key(approval_id),
            UpdateExpression="SET slack_channel = :channel, slack_ts = :ts",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":channel": {"S": channel}, ":ts": {"S": ts}},
        )

    @translate_errors
    def claim_decision(self, approval_id: str, decision: str, decided_by: str) -> PendingApproval:
        """Record the decision once; AlreadyDecided (with who and when) for every later click."""
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=_approval_key(approval_id),
                UpdateExpression="SET decision = :decision, decided_by = :by, decided_at = :at",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(decision)",
                ExpressionAttributeValues={
                    ":decision": {"S": decision},
                    ":by": {"S": decided_by},
                    ":at": {"S": iso(self._clock())},
                },
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            approval = self.find_approval(approval_id)
            if approval is None:
                raise ApprovalNotFound(approval_id) from None
            raise AlreadyDecided(approval) from None
        return _approval_of(answer["Attributes"])

    @translate_errors
    def release_decision(self, approval_id: str, decided_by: str) -> None:
        """Undo a claim whose task could not be resumed (an error, not a timeout), so a click can be retried."""
        self._db.update_item(
            TableName=self._table,
            Key=_approval_key(approval_id),
            UpdateExpression="REMOVE decision, decided_by, decided_at",
            ConditionExpression="decided_by = :by",
            ExpressionAttributeValues={":by": {"S": decided_by}},
        )

    @translate_errors
    def mark_approval_expired(self, approval_id: str, decided_by: str) -> None:
        """The claimed decision came after Step Functions gave up waiting: say so for later clicks."""
        self._db.update_item(
            TableName=self._table,
            Key=_approval_key(approval_id),
            UpdateExpression="SET decision = :expired",
            ConditionExpression="decided_by = :by",
            ExpressionAttributeValues={":expired": {"S": EXPIRED_DECISION}, ":by": {"S": decided_by}},
        )
