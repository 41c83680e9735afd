"""The domain's errors: what went wrong, in the domain's words. None of them names an HTTP
status; the API maps them to one in one table (``HTTP_STATUS`` in app.py), and a stage Lambda's
error reaches Step Functions under its class name (the ASL's Retry and Catch name some of them).

The kinds (:class:`NotFound`, :class:`Conflict`, :class:`InvalidRequest`, ...) are what the table
maps; each concrete error is one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.domain.approvals import PendingApproval
    from chalicelib.domain.lifecycle import Status
    from chalicelib.domain.records import Alias, ModelVersion


class DomainError(Exception):
    """Base of every error the domain and its adapters raise on purpose; ``message`` is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # (version, route) of the model version that was asked and failed, once an inference request
        # was routed: its answer names them as a success does (a canary's errors are told apart)
        self.served_by: tuple[str, str] | None = None


# -- the kinds ------------------------------------------------------------------------------
class InvalidRequest(DomainError):
    """The request is malformed, or does not fit the model it is for."""


class RequestTooLarge(InvalidRequest):
    """The request is larger than the endpoint takes."""


class NotFound(DomainError):
    """What the request names does not exist, or does not serve."""


class Conflict(DomainError):
    """The request contradicts where the model or version stands now."""


class ModelFailed(DomainError):
    """The model (or the endpoint serving it) answered with an error, or could not be reached."""


class ModelNotReady(DomainError):
    """The endpoint is loading the model or throttling: ask again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelTimedOut(DomainError):
    """The endpoint did not answer in time."""


class ServiceError(DomainError):
    """An AWS service refused or failed a call (a botocore ClientError, translated by an adapter)."""

    def __init__(self, service: str, code: str, message: str) -> None:
        super().__init__(f"{service} answered {code}: {message}")
        self.code = code


class ArtifactChanged(Conflict):
    """An artifact's bytes are not the ones its version was validated (or approved) with."""


# -- the registry ---------------------------------------------------------------------------
class RegistryError(DomainError):
    """Base of the registry's errors."""


class RegistryBusy(RegistryError):
    """The registry's table throttled the request beyond the SDK's retries: a moment later it
    works (the state machines retry it; the API answers 503)."""


class VersionNotFound(NotFound, RegistryError):
    def __init__(self, name: str, version: str) -> None:
        super().__init__(f"no version {version} of model {name} in the registry")


class VersionExists(Conflict, RegistryError):
    def __init__(self, existing: ModelVersion) -> None:
        super().__init__(f"version {existing.version} of model {existing.name} is already registered")
        self.existing = existing


class TransitionRefused(Conflict, RegistryError):
    """The move is not allowed from the version's current status (it has moved on)."""

    def __init__(self, record: ModelVersion, wanted: Status) -> None:
        super().__init__(f"{record.name} {record.version} is {record.status}; it cannot become {wanted} from there")
        self.record = record
        self.wanted = wanted


class ConcurrentUpdate(Conflict, RegistryError):
    """Other writers won the conditional write every time: the caller may try again."""


class ApprovalNotFound(NotFound, RegistryError):
    def __init__(self, approval_id: str) -> None:
        super().__init__(f"no approval {approval_id} in the registry")


class AlreadyDecided(Conflict, RegistryError):
    def __init__(self, approval: PendingApproval) -> None:
        super().__init__(f"approval {approval.approval_id} was already decided ({approval.decision})")
        self.approval = approval


class AliasMoved(Conflict, RegistryError):
    """The alias changed since the promotion read it: another promotion won."""

    def __init__(self, name: str, alias: Alias | None, seen: int) -> None:
        now = f"{alias.version} (revision {alias.revision})" if alias else "nothing"
        super().__init__(
            f"the {alias.alias if alias else 'production'} alias of {name} moved while this promotion ran "
            f"(it read revision {seen}, it now points at {now}): a concurrent promotion won"
        )
        self.alias = alias


# -- the rollout ----------------------------------------------------------------------------
class RolloutPolicyInvalid(InvalidRequest):
    """A rollout policy (or one of its layers: settings, the model's rollout.json, the rollout's
    options) has a value it cannot take; the message says which and what to change."""


class MetricsUnavailable(ServiceError):
    """CloudWatch could not give a version's figures: a rollout waits and reads them again, never
    judging a step without them."""


class RolloutInProgress(Conflict, RegistryError):
    """A rollout owns the model's canary: nothing else may change or end it, promote or roll back
    the model, or start a second rollout, until it ends (or an admin aborts it)."""


class RolloutEnded(Conflict, RegistryError):
    """A rollout's write found its version no longer PROMOTING: the rollout ended meanwhile (its
    gates, an admin's abort, its execution's end), and what the write was for is moot."""

    def __init__(self, name: str, version: str, status: Status | None) -> None:
        now = status.value if status else "gone"
        super().__init__(f"the rollout of {name} {version} ended meanwhile ({now})")
