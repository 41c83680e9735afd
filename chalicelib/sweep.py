"""Sweep: every version in progress checked against its execution, on a schedule (and locally as
the stack starts with kept state), so a version whose execution ended without a word — an event
EventBridge could not deliver, a stack restarted mid-flight — is ended like any other through
:class:`~chalicelib.execution_ended.ExecutionEnded`.

A version is in progress while its DeployModel execution runs (RECEIVED .. AWAITING_APPROVAL) or
its PromoteModel execution does (PROMOTING). APPROVED is not: its next action (``promote``) works
whatever became of the execution that recorded it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from chalicelib.adapters.executions import Executions, ExecutionState
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.domain.lifecycle import EXECUTION_OWNED, Status
from chalicelib.domain.records import ModelVersion
from chalicelib.execution_ended import ExecutionEnded

logger = Logger(service="mmedeploy", child=True)
# A RECEIVED version whose execution Step Functions does not know is only "gone" once it has been
# quiet this long: the upload trigger registers a version a moment before it starts the execution.
GONE_AFTER_S = 120.0
GONE = "Step Functions no longer knows this execution (its state was lost, e.g. the stack restarted)"
# A version's outbox is the sweep's to deliver once nobody has touched the version this long (the
# handler that wrote it delivers it at once; what is still owed after this, a crash left behind).
OWED_AFTER_S = 30.0


class SweepReport(BaseModel):
    checked: int = 0  # versions in progress
    ended: list[str] = []  # "name version: status" of each version the sweep moved
    announced: list[str] = []  # "name version" of each version whose owed notices the sweep delivered
    failed: list[str] = []  # "name version" of each version the sweep could not settle (tried again next time)


class Sweep:
    def __init__(
        self,
        registry: VersionStore,
        executions: Executions,
        ended: ExecutionEnded,
        deliver: Callable[[ModelVersion], None],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``deliver`` announces what a version's outbox owes (LifecycleTracker.deliver)."""
        self._registry = registry
        self._executions = executions
        self._ended = ended
        self._deliver = deliver
        self._now = now

    def run(self) -> SweepReport:
        report = SweepReport()
        after: str | None = None
        while True:
            page = self._registry.list_models(after=after)
            for model in page.models:
                for record in self._registry.versions(model.name):
                    try:
                        self._sweep(record, report)
                    except Exception:  # one version's trouble (Slack still down) must not stop the sweep
                        logger.exception(
                            "sweeping a version failed; the next sweep tries again",
                            extra={"model": record.name, "version": record.version},
                        )
                        report.failed.append(f"{record.name} {record.version}")
            if page.next is None:
                return report
            after = page.next

    def _sweep(self, record: ModelVersion, report: SweepReport) -> None:
        if record.outbox and self._quiet_for(record) >= OWED_AFTER_S:
            self._deliver(record)
            report.announced.append(f"{record.name} {record.version}")
        if record.status in EXECUTION_OWNED:
            report.checked += 1
            self._check(record, report)

    def check(self, record: ModelVersion) -> ModelVersion:
        """``record`` reconciled with its execution now (the gate does it when a decision finds the
        task gone); the version as it stands after."""
        report = SweepReport()
        if record.status in EXECUTION_OWNED:
            self._check(record, report)
        return self._registry.get(record.name, record.version)

    def _check(self, record: ModelVersion, report: SweepReport) -> None:
        execution = _execution_of(record)
        if execution is None:
            return
        state = self._executions.describe(execution)
        if state is None:
            if record.status is Status.RECEIVED and self._quiet_for(record) < GONE_AFTER_S:
                return
            change = ExecutionState(
                executionArn=execution,
                stateMachineArn=_state_machine_of(execution),
                name=execution.rsplit(":", 1)[-1],
                status="ABORTED",
                input=json.dumps({"name": record.name, "version": record.version}),
                cause=GONE,
            )
        elif state.status in ("RUNNING", "SUCCEEDED"):
            return  # running: its own states will move it; succeeded: it ended the version itself
        else:
            change = state
        result = self._ended.run(change)
        if result is not None and result.status != record.status:
            logger.info(
                "swept a version whose execution had ended",
                extra={"model": record.name, "version": record.version, "status": result.status},
            )
            report.ended.append(f"{record.name} {record.version}: {result.status}")

    def _quiet_for(self, record: ModelVersion) -> float:
        updated = datetime.fromisoformat(record.updated_at.replace("Z", "+00:00"))
        return (self._now() - updated).total_seconds()


def _execution_of(record: ModelVersion) -> str | None:
    if record.status is Status.PROMOTING:
        return record.promotion.execution_arn if record.promotion else None
    return record.execution_arn


def _state_machine_of(execution_arn: str) -> str:
    """arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME -> ...:stateMachine:MACHINE"""
    parts = execution_arn.split(":")
    return ":".join([*parts[:5], "stateMachine", parts[6]])
