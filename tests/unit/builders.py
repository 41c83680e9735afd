"""Test data: the one builder of ``ModelVersion`` records. Defaults are a fresh upload (RECEIVED,
``fraud`` version ``1`` in the ``staging`` bucket); a test names every field it relies on."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import ModelVersion


def a_version(version: str = "1", name: str = "fraud", **fields: Any) -> ModelVersion:
    """A ModelVersion of ``name`` ``version``; ``fields`` override the defaults (any field of the record)."""
    defaults: dict[str, Any] = {
        "status": Status.RECEIVED,
        "bucket": "staging",
        "key": f"{name}_{version}.tar.gz",
        "etag": "etag-1",
        "uploaded_at": "2025-01-01T00:00:00.000Z",
        "updated_at": "2025-01-01T00:00:00.000Z",
    }
    return ModelVersion(name=name, version=version, **{**defaults, **fields})
