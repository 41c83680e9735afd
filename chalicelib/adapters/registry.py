"""The whole registry table in one object, for the tools that read versions and approvals
together (the CLI, the demo, tests, benchmarks). The services take the store they need:
:class:`VersionStore` or :class:`ApprovalStore`, both on this one table."""

from __future__ import annotations

from chalicelib.adapters.approval_store import ApprovalStore
from chalicelib.adapters.registry_store import VersionStore


class ModelRegistry(VersionStore, ApprovalStore):
    """Both stores on one table and one client (their constructors take the same arguments)."""
