"""API bearer tokens: only their SHA-256 hashes are stored (a Secrets Manager secret,
``{"tokens": [{"name", "sha256", "scopes"}]}``), so the secret never holds a usable token."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from pydantic import BaseModel

INVOKE = "invoke"
ADMIN = "admin"


class Unauthorized(Exception):
    """Raised by the authorizer for a missing or unknown token. API Gateway answers 401 only when
    a TOKEN authorizer fails with exactly the message "Unauthorized" (a deny policy is 403)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class TokenEntry(BaseModel):
    sha256: str
    scopes: list[str]
    name: str = "token"


class TokenFile(BaseModel):
    tokens: list[TokenEntry] = []


class ApiTokens:
    def __init__(self, load: Callable[[], str]) -> None:
        self._load = load  # the secret's JSON, cached by its provider (rotation within max_age)

    def holder(self, authorization: str) -> TokenEntry | None:
        """The entry a ``Bearer <token>`` header value belongs to, or None."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        found = None
        for entry in TokenFile.model_validate_json(self._load()).tokens:
            if hmac.compare_digest(entry.sha256, digest):  # constant time: no timing oracle
                found = entry
        return found
