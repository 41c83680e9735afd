"""The API seen from the command line: one small HTTP client (:func:`post`) and the admin routes
``promote`` and ``rollback`` call (``Authorization: Bearer <admin token>``).

Every answer comes back as an :class:`ApiAnswer` whatever its HTTP status (a 4xx is an answer,
not an exception); only a request that got no answer at all raises :class:`ApiUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from mmedeploy.target import DeploymentTarget

TIMEOUT_S = 10.0
USER_AGENT = "mmedeploy-cli"


class ApiUnreachable(Exception):
    """No HTTP answer: refused connection, timeout, closed socket. The message names the URL."""


class ApiNotConfigured(Exception):
    """The target lacks what the request needs (API URL, token, signing secret)."""


@dataclass(frozen=True)
class ApiAnswer:
    http_status: int
    document: dict[str, Any]  # the JSON object answered; a non-JSON body becomes {"error": <text>}

    @property
    def accepted(self) -> bool:
        return 200 <= self.http_status < 300

    @property
    def error(self) -> str:
        """What went wrong, in the API's words (``error``, else ``text``, else the HTTP status)."""
        for key in ("error", "text", "message"):
            value = self.document.get(key)
            if isinstance(value, str) and value:
                return value
        return f"HTTP {self.http_status}"

    def as_json(self) -> dict[str, Any]:
        """What ``--json`` prints: the answer and its HTTP status."""
        return {**self.document, "http_status": self.http_status}


def _document(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"error": text.strip()[:500]}
    return parsed if isinstance(parsed, dict) else {"error": text.strip()[:500]}


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_S) -> ApiAnswer:
    """POST ``body`` to ``url``; the answer whatever its status, ApiUnreachable if none came."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return ApiAnswer(response.status, _document(response.read()))
    except urllib.error.HTTPError as exc:  # an answer with a 4xx/5xx status
        with exc:
            return ApiAnswer(exc.code, _document(exc.read()))
    except urllib.error.URLError as exc:
        raise ApiUnreachable(f"cannot reach {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, a closed connection
        raise ApiUnreachable(f"no answer from {url}: {exc or type(exc).__name__}") from None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _admin_headers(target: DeploymentTarget) -> dict[str, str]:
    if not target.api_url:
        raise ApiNotConfigured(f"{target.description} has no API URL")
    if not target.admin_token:
        raise ApiNotConfigured(f"{target.description} has no admin token")
    return {"Authorization": f"Bearer {target.admin_token}", "Content-Type": "application/json"}


def promote_url(api_url: str, name: str, version: str) -> str:
    return f"{api_url.rstrip('/')}/models/{_segment(name)}/versions/{_segment(version)}/promote"


def rollback_url(api_url: str, name: str) -> str:
    return f"{api_url.rstrip('/')}/models/{_segment(name)}/rollback"


def request_promotion(target: DeploymentTarget, name: str, version: str) -> ApiAnswer:
    """``POST /models/{name}/versions/{version}/promote``; 202 ``{"name", "version", "status", "action"}``."""
    headers = _admin_headers(target)
    return post(promote_url(str(target.api_url), name, version), b"{}", headers)


def request_rollback(target: DeploymentTarget, name: str) -> ApiAnswer:
    """``POST /models/{name}/rollback``; 202 ``{"name", "version", "from_version", "status"}``
    (``version`` is the one made production again)."""
    headers = _admin_headers(target)
    return post(rollback_url(str(target.api_url), name), b"{}", headers)
