"""The API seen from the command line: one small HTTP client (:func:`request`, with :func:`get`,
:func:`post` and :func:`delete` on it) and the admin routes ``promote``, ``rollback``,
``canary`` and ``rollout`` call (``Authorization: Bearer <admin token>``).

Every answer comes back as an :class:`ApiAnswer` whatever its HTTP status (a 4xx is an answer,
not an exception); only a request that got no answer at all raises :class:`ApiUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from mmedeploy.target import DeploymentTarget

log = logging.getLogger(__name__)  # --debug shows each request: method, URL, status (never headers)

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
    headers: dict[str, str] = field(default_factory=dict)  # the response's, names in lower case
    body: bytes = field(default=b"", repr=False)  # as it came (a KServe answer may have a binary tail)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

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


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = TIMEOUT_S
) -> ApiAnswer:
    """Send one request; the answer whatever its status, ApiUnreachable if none came."""
    sent = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
    )
    log.debug("%s %s", method, url)
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as response:
            return _answer(response.status, response.headers.items(), response.read())
    except urllib.error.HTTPError as exc:  # an answer with a 4xx/5xx status
        with exc:
            return _answer(exc.code, exc.headers.items() if exc.headers else [], exc.read())
    except urllib.error.URLError as exc:
        raise ApiUnreachable(f"cannot reach {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, a closed connection
        raise ApiUnreachable(f"no answer from {url}: {exc or type(exc).__name__}") from None


def _answer(status: int, headers: list[tuple[str, str]], raw: bytes) -> ApiAnswer:
    log.debug("API answered %s (%d bytes)", status, len(raw))
    return ApiAnswer(status, _document(raw), {name.lower(): value for name, value in headers}, raw)


def get(url: str, headers: dict[str, str], timeout: float = TIMEOUT_S) -> ApiAnswer:
    return request("GET", url, None, headers, timeout)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_S) -> ApiAnswer:
    return request("POST", url, body, headers, timeout)


def delete(url: str, headers: dict[str, str], timeout: float = TIMEOUT_S) -> ApiAnswer:
    return request("DELETE", url, None, headers, timeout)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _admin_headers(target: DeploymentTarget) -> dict[str, str]:
    if not target.api_url:
        raise ApiNotConfigured(f"{target.description} has no API URL")
    if not target.admin_token:
        raise ApiNotConfigured(f"{target.description} has no admin token")
    return {"Authorization": f"Bearer {target.admin_token}", "Content-Type": "application/json"}


def model_url(api_url: str, name: str) -> str:
    return f"{api_url.rstrip('/')}/models/{_segment(name)}"


def promote_url(api_url: str, name: str, version: str) -> str:
    return f"{model_url(api_url, name)}/versions/{_segment(version)}/promote"


def rollback_url(api_url: str, name: str) -> str:
    return f"{model_url(api_url, name)}/rollback"


def canary_url(api_url: str, name: str) -> str:
    return f"{model_url(api_url, name)}/canary"


def request_promotion(target: DeploymentTarget, name: str, version: str) -> ApiAnswer:
    """``POST /models/{name}/versions/{version}/promote``; 202 ``{"name", "version", "status", "action"}``."""
    headers = _admin_headers(target)
    return post(promote_url(str(target.api_url), name, version), b"{}", headers)


def redeploy_url(api_url: str, name: str, version: str) -> str:
    return f"{model_url(api_url, name)}/versions/{_segment(version)}/redeploy"


def request_redeploy(target: DeploymentTarget, name: str, version: str) -> ApiAnswer:
    """``POST /models/{name}/versions/{version}/redeploy``; 202 ``{"name", "version", "status", "execution"}``."""
    return post(redeploy_url(str(target.api_url), name, version), b"{}", _admin_headers(target))


def request_rollback(target: DeploymentTarget, name: str) -> ApiAnswer:
    """``POST /models/{name}/rollback``; 202 ``{"name", "version", "from_version", "status"}``
    (``version`` is the one made production again)."""
    headers = _admin_headers(target)
    return post(rollback_url(str(target.api_url), name), b"{}", headers)


def request_canary(target: DeploymentTarget, name: str, version: str, weight: float) -> ApiAnswer:
    """``POST /models/{name}/canary`` ``{"version", "weight"}``: start the canary or change its
    version or weight; 200 ``{"name", "production", "canary": {...}, "action": "canary started"}``."""
    headers = _admin_headers(target)
    body = json.dumps({"version": version, "weight": weight}).encode()
    return post(canary_url(str(target.api_url), name), body, headers)


def end_canary(target: DeploymentTarget, name: str) -> ApiAnswer:
    """``DELETE /models/{name}/canary``; 200 ``{"name", "production", "canary": {...}, "action": "canary ended"}``
    (``canary`` is the one ended), 404 when the model has none."""
    headers = _admin_headers(target)
    return delete(canary_url(str(target.api_url), name), headers)


def rollout_url(api_url: str, name: str, version: str) -> str:
    return f"{model_url(api_url, name)}/versions/{_segment(version)}/rollout"


def rollout_control_url(api_url: str, name: str, action: str) -> str:
    return f"{model_url(api_url, name)}/rollout/{_segment(action)}"


def request_rollout(target: DeploymentTarget, name: str, version: str, options: dict[str, Any]) -> ApiAnswer:
    """``POST /models/{name}/versions/{version}/rollout`` with the rollout's own options (only those
    given: the policy's other layers decide the rest); 202 ``{"name", "version", "status", "action",
    "production", "policy", "rollout": null}`` (``policy``: the one resolved for this rollout)."""
    headers = _admin_headers(target)
    return post(rollout_url(str(target.api_url), name, version), json.dumps(options).encode(), headers)


def control_rollout(target: DeploymentTarget, name: str, action: str) -> ApiAnswer:
    """``POST /models/{name}/rollout/{pause|resume|abort}``; 200 ``{"name", "version", "status",
    "action", "production", "policy", "rollout": {...}}``, 404 when no rollout of ``name`` runs."""
    return post(rollout_control_url(str(target.api_url), name, action), b"{}", _admin_headers(target))
