"""Lifecycle events on the ``mmedeploy-lifecycle`` bus: one per status change, one schema.

Source ``mmedeploy``; the detail-type names the new status (``lifecycle.EVENT_FOR_STATUS``);
the detail is ``LifecycleEvent``. Delivery is at least once: a retried step may announce the same
change twice, so consumers key on (name, version, status, revision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from chalicelib.domain.lifecycle import EVENT_FOR_STATUS, Status
from chalicelib.domain.records import ModelVersion
from chalicelib.domain.rollout.policy import RolloutOverrides

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "mmedeploy"
# Not a status change: a later upload under a registered name+version, refused (immutability).
UPLOAD_REFUSED = "UploadRefused"


class LifecycleEvent(BaseModel):
    """The detail of every lifecycle event."""

    name: str
    version: str
    status: Status
    previous_status: Status | None = None
    reason: str = ""
    actor: str
    at: str
    revision: int
    sha256: str | None = None
    target_model: str
    finding_codes: list[str] = []
    metrics: dict[str, float] = {}
    execution_arn: str | None = None
    approval_id: str | None = None
    # RolloutRequested only: the rollout's own options over the policy's other layers ({}: none).
    # Always present (null otherwise): PromoteModel's first state reads $.rollout.
    rollout: RolloutOverrides | None = None

    @property
    def detail_type(self) -> str:
        return EVENT_FOR_STATUS[self.status]

    @classmethod
    def of(cls, record: ModelVersion, actor: str, previous: Status | None = None) -> LifecycleEvent:
        return cls(
            name=record.name,
            version=record.version,
            status=record.status,
            previous_status=previous,
            reason=record.reason,
            actor=actor,
            at=record.updated_at,
            revision=record.revision,
            sha256=record.sha256,
            target_model=record.target_model,
            finding_codes=sorted({f.code.value for f in record.findings if f.severity.value == "error"}),
            metrics=record.metrics,
            execution_arn=record.execution_arn,
            approval_id=record.approval_id,
        )


class EventPublishFailed(Exception):
    pass


class LifecyclePublisher:
    def __init__(self, bus: str, client: EventBridgeClient) -> None:
        self._bus = bus
        self._events = client

    def publish(self, event: LifecycleEvent, detail_type: str | None = None) -> None:
        result = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": SOURCE,
                    "DetailType": detail_type or event.detail_type,
                    "Detail": event.model_dump_json(),
                    "Resources": [],
                }
            ]
        )
        if result.get("FailedEntryCount"):
            # A lost event would leave watchers (and promotion) behind: fail the step so it is retried.
            raise EventPublishFailed(f"EventBridge refused {event.detail_type}: {result['Entries']}")
