"""Reads of the registry for people and clients: the model list, a model with its versions and
aliases, one version with its history, its approval request, and KServe v2 model metadata and
readiness. These routes are the only way the CLI reads the registry (``status``, the follow
loops, ``approve``), so an invoke token is all a reader needs."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel

from chalicelib.adapters.approval_store import ApprovalStore
from chalicelib.adapters.registry_store import VersionStore
from chalicelib.domain.errors import InvalidRequest, NotFound
from chalicelib.domain.lifecycle import SERVING
from chalicelib.domain.records import Alias, Canary, ModelEntry, ModelVersion
from chalicelib.inference.api_contract import DEFAULT_PAGE, MAX_PAGE
from chalicelib.inference.kserve import metadata_tensors
from chalicelib.inference.routing import Router


class VersionLine(BaseModel):
    version: str
    status: str
    reason: str = ""
    uploaded_at: str
    updated_at: str
    revision: int = 0  # the record's: a follower compares it with a later read
    sha256: str | None = None


class ModelView(BaseModel):
    name: str
    production: Alias | None = None
    canary: Canary | None = None
    versions: list[VersionLine]
    next: str | None = None


class ModelsView(BaseModel):
    models: list[ModelEntry]
    next: str | None = None


def encode_token(value: str | None) -> str | None:
    """An opaque page token (the key to continue after), safe in a query string."""
    return base64.urlsafe_b64encode(value.encode()).decode() if value else None


def decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest(f"'next' is not a page token this API gave: {token!r}") from None


def page_limit(value: str | None, default: int = DEFAULT_PAGE) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a number from 1 to {MAX_PAGE}, not {value!r}")
    return int(value)


class ModelCatalog:
    def __init__(self, registry: VersionStore, router: Router, approvals: ApprovalStore) -> None:
        self._registry = registry
        self._router = router
        self._approvals = approvals

    def models(self, limit: int, next_token: str | None) -> ModelsView:
        page = self._registry.list_models(limit, decode_token(next_token))
        return ModelsView(models=page.models, next=encode_token(page.next))

    def model(self, name: str, limit: int, next_token: str | None) -> ModelView:
        routes = self._registry.routes(name)
        page = self._registry.versions_page(name, limit, decode_token(next_token))
        if not page.versions and routes.production is None and not next_token:
            raise NotFound(f"unknown model {name}")
        return ModelView(
            name=name,
            production=routes.production,
            canary=routes.canary,
            versions=[_line(record) for record in page.versions],
            next=encode_token(page.next),
        )

    def version(self, name: str, version: str) -> dict[str, Any]:
        record = self._registry.find(name, version, with_history=True)
        if record is None:
            raise NotFound(f"model {name} has no version {version}")
        return record.document()

    def approval(self, name: str, version: str) -> dict[str, Any]:
        """The version's approval request without its task token (which never leaves the registry):
        where the Slack message is, and the decision once taken. NotFound for an unknown version
        or one that was never asked for approval."""
        record = self._registry.find(name, version)
        if record is None:
            raise NotFound(f"model {name} has no version {version}")
        approval = self._approvals.find_approval(record.approval_id) if record.approval_id else None
        if approval is None:
            raise NotFound(f"no approval was requested for {name} {version}; it is {record.status.value}")
        return approval.model_dump(mode="json", exclude={"task_token"})

    def kserve_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """KServe v2 model metadata of the version a request would be served by (production, or
        the pinned one): name, the versions that serve, platform, inputs and outputs."""
        route = self._router.resolve(name, version) if version else self._router.production(name)
        record = self._router.version(name, route.version)
        model = route.model
        if record is None or model is None:
            raise NotFound(f"model {name} version {route.version} has no recorded signature")
        serving = [r.version for r in self._registry.versions(name) if r.status in SERVING]
        return {
            "name": name,
            "versions": serving if version is None else [route.version],
            "platform": model.platform or model.backend or "",
            "inputs": metadata_tensors(model.inputs, model.max_batch_size),
            "outputs": metadata_tensors(model.outputs, model.max_batch_size),
        }

    def ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Ready when a request would be routed: NotFound otherwise (warm-up precedes routing)."""
        route = self._router.resolve(name, version) if version else self._router.production(name)
        return {"name": name, "version": route.version, "ready": True}


def _line(record: ModelVersion) -> VersionLine:
    return VersionLine(
        version=record.version,
        status=record.status.value,
        reason=record.reason,
        uploaded_at=record.uploaded_at,
        updated_at=record.updated_at,
        revision=record.revision,
        sha256=record.sha256,
    )
