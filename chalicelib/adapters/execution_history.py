"""Where a Step Functions execution was when it ended: the last state it entered, from its history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# An execution that ended outside a Catch entered its last state among the newest few events.
_NEWEST_EVENTS = 50


class ExecutionHistory:
    def __init__(self, sfn: SFNClient) -> None:
        self._sfn = sfn

    def last_state(self, execution_arn: str) -> str | None:
        """The state the execution last entered; None when its history cannot be read (the
        reason recorded then just says less)."""
        try:
            events = self._sfn.get_execution_history(
                executionArn=execution_arn, reverseOrder=True, maxResults=_NEWEST_EVENTS
            )["events"]
        except ClientError:
            return None
        # the newest by id: the emulator ignores reverseOrder
        entered = [e for e in events if e.get("stateEnteredEventDetails")]
        if not entered:
            return None
        return max(entered, key=lambda e: e["id"])["stateEnteredEventDetails"]["name"]
