"""The registry seen from the command line: the API's registry routes, read with the invoke token
(the admin token where the target has no invoke token), never DynamoDB. ``status``, ``status
--watch``, the follow loops of ``push``/``promote``/``rollback``/``redeploy`` and ``approve`` read
through here, so a reader needs an invoke token and nothing else.

- ``GET /models/{name}?limit=&next=``: the model's versions (every page) and its aliases;
- ``GET /models/{name}/versions/{version}``: one version with its history;
- ``GET /models/{name}/versions/{version}/approval``: where its approval request is in Slack.

An unknown model or version is ``None``; an answer the CLI cannot use raises
:class:`RegistryRefused` (401, 403, 400: asking again will not help) or
:class:`RegistryUnavailable` (429, 5xx: a follow loop backs off and asks again), and a request
that got no answer raises :class:`~mmedeploy.admin_api.ApiUnreachable`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import Alias, Canary, ModelRoutes, ModelVersion
from chalicelib.inference.api_contract import MAX_PAGE
from mmedeploy.admin_api import ApiAnswer, ApiUnreachable, get
from mmedeploy.inference_client import PagingLoop, invoke_headers
from mmedeploy.target import DeploymentTarget

TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


class RegistryReadFailed(Exception):
    """The API answered a registry read with an error; the message says which and what to do."""

    def __init__(self, message: str, answer: ApiAnswer) -> None:
        super().__init__(message)
        self.answer = answer

    @property
    def retry_after_s(self) -> float | None:
        """The API's ``Retry-After``, in seconds, where it gave one."""
        value = self.answer.header("Retry-After")
        try:
            return float(value) if value else None
        except ValueError:
            return None


class RegistryRefused(RegistryReadFailed):
    """A refusal asking again will not change: a token refused (401/403), a malformed request."""


class RegistryUnavailable(RegistryReadFailed):
    """The registry is busy or the API failed (429, 5xx): worth asking again a little later."""


class VersionSummary(BaseModel):
    """One line of a model's versions, as ``GET /models/{name}`` lists it."""

    version: str
    status: Status
    reason: str = ""
    uploaded_at: str = ""  # an API older than this CLI does not list it
    updated_at: str
    revision: int = 0


@dataclass(frozen=True)
class ModelListing:
    name: str
    versions: list[VersionSummary]  # every page, oldest upload first
    routes: ModelRoutes


class ApprovalMessage(BaseModel):
    """Where a version's approval request is in Slack (``GET .../approval``, the part read here)."""

    approval_id: str
    slack_channel: str | None = None
    slack_ts: str | None = None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def version_url(api_url: str, name: str, version: str) -> str:
    return f"{api_url.rstrip('/')}/models/{_segment(name)}/versions/{_segment(version)}"


def model_page_url(api_url: str, name: str, limit: int, next_token: str | None) -> str:
    query = {"limit": limit, **({"next": next_token} if next_token else {})}
    return f"{api_url.rstrip('/')}/models/{_segment(name)}?{urllib.parse.urlencode(query)}"


def _read(target: DeploymentTarget, url: str, what: str) -> ApiAnswer | None:
    """The answer to a registry read; None for 404; RegistryReadFailed for any other error."""
    answer = get(url, invoke_headers(target))
    if answer.accepted:
        return answer
    if answer.http_status == 404:
        return None
    code = answer.http_status
    token = "invoke" if target.api_token else "admin"
    if code in (401, 403):
        raise RegistryRefused(
            f"the API refused the {token} token of {target.description} reading {what} (HTTP {code}): {answer.error}",
            answer,
        )
    if code in TRANSIENT:
        raise RegistryUnavailable(
            f"reading {what} on {target.description} failed (HTTP {code}): {answer.error}", answer
        )
    raise RegistryRefused(f"reading {what} on {target.description} was refused (HTTP {code}): {answer.error}", answer)


def _unreadable(what: str, target: DeploymentTarget, answer: ApiAnswer, exc: ValidationError) -> RegistryRefused:
    first = exc.errors()[0]
    where = ".".join(map(str, first["loc"])) or "the answer"
    return RegistryRefused(
        f"the API's answer for {what} on {target.description} is not what this CLI reads ({where}: {first['msg']}); "
        "is the CLI as new as the stack?",
        answer,
    )


def find_version(target: DeploymentTarget, name: str, version: str) -> ModelVersion | None:
    """One version with its history (``GET /models/{name}/versions/{version}``); None if unknown."""
    what = f"{name} {version}"
    answer = _read(target, version_url(str(target.api_url), name, version), what)
    if answer is None:
        return None
    try:
        return ModelVersion.model_validate(answer.document)  # with "history": read, not dumped
    except ValidationError as exc:
        raise _unreadable(what, target, answer, exc) from None


def find_model(target: DeploymentTarget, name: str) -> ModelListing | None:
    """Every version of ``name`` (following the pages) and its aliases; None if the model is unknown."""
    versions: list[VersionSummary] = []
    routes = ModelRoutes()
    seen: set[str] = set()
    token: str | None = None
    what = f"model {name}"
    while True:
        answer = _read(target, model_page_url(str(target.api_url), name, MAX_PAGE, token), what)
        if answer is None:
            return None
        document = answer.document
        try:
            versions += [VersionSummary.model_validate(line) for line in document.get("versions") or []]
            if token is None:  # every page carries the aliases: the first page's are read
                production, canary = document.get("production"), document.get("canary")
                routes = ModelRoutes(
                    production=Alias.model_validate(production) if production else None,
                    canary=Canary.model_validate(canary) if canary else None,
                )
        except ValidationError as exc:
            raise _unreadable(what, target, answer, exc) from None
        following = document.get("next") or None
        if following is None:
            break
        if following in seen:
            raise PagingLoop(f"the API gave the page token {following!r} twice; the listing stops here")
        seen.add(str(following))
        token = str(following)
    versions.sort(key=lambda line: (line.uploaded_at, line.version))
    return ModelListing(name, versions, routes)


def find_approval(target: DeploymentTarget, name: str, version: str) -> ApprovalMessage | None:
    """The version's approval request (``GET .../approval``); None when none was requested."""
    what = f"the approval of {name} {version}"
    answer = _read(target, version_url(str(target.api_url), name, version) + "/approval", what)
    if answer is None:
        return None
    try:
        return ApprovalMessage.model_validate(answer.document)
    except ValidationError as exc:
        raise _unreadable(what, target, answer, exc) from None


def version_reader(target: DeploymentTarget, name: str, version: str) -> Callable[[], ModelVersion | None]:
    """:func:`find_version` for a follow loop (``retry_on=(RegistryUnavailable,)``): once the API
    has answered, a read that gets no answer is :class:`RegistryUnavailable`, asked again with
    backoff; before it ever answered, :class:`ApiUnreachable` as it is (a stopped stack, a wrong
    URL: nothing to wait for)."""
    answered = False

    def read() -> ModelVersion | None:
        nonlocal answered
        try:
            record = find_version(target, name, version)
        except ApiUnreachable as exc:
            if not answered:
                raise
            raise RegistryUnavailable(str(exc), ApiAnswer(0, {"error": str(exc)})) from None
        answered = True
        return record

    return read
