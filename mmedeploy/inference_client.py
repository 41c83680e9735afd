"""``mmedeploy invoke`` and ``mmedeploy models``: the invoke-scope routes of the API seen from the
command line (``Authorization: Bearer <invoke token>``, the admin token when the target has no
invoke token), the KServe v2 request file, and the plain-text views of the answers.

The HTTP client is :mod:`mmedeploy.admin_api`'s; this module only builds URLs, reads the request
file and shapes what is printed, so the views are tested without a server.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from chalicelib.inference.api_contract import HEADER_LENGTH, ROUTE_HEADER, VERSION_HEADER
from mmedeploy.admin_api import ApiAnswer, ApiNotConfigured, get, post
from mmedeploy.target import DeploymentTarget

INFER_TIMEOUT_S = 60.0  # a cold model loads before it answers; API Gateway itself stops at 29 s
SHOWN_VALUES = 8  # of a tensor's data, in the human view; the rest is counted


class BadRequestFile(Exception):
    """The request file cannot be read, or is not a JSON object; the message names the file."""


class PagingLoop(Exception):
    """The API handed back a page token it had given before: following it would never end."""


# -- the request ----------------------------------------------------------------------------------
def read_request(path: str, stdin: BinaryIO | None = None) -> bytes:
    """The KServe v2 JSON request in ``path`` (``-``: standard input), checked to be one JSON
    object and sent compact; what it asks for (inputs, outputs) is the API's to judge."""
    where = "standard input" if path == "-" else path
    try:
        raw = (stdin or sys.stdin.buffer).read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise BadRequestFile(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadRequestFile(f"{where} is not UTF-8 text: give a KServe v2 JSON inference request") from None
    except ValueError as exc:
        raise BadRequestFile(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequestFile(
            f"{where} holds a JSON {_json_type(document)}, not an object: a KServe v2 inference request is "
            '{"inputs": [{"name", "datatype", "shape", "data"}, ...]}'
        )
    return json.dumps(document, separators=(",", ":")).encode()


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


# -- the calls ------------------------------------------------------------------------------------
def invoke_headers(target: DeploymentTarget) -> dict[str, str]:
    """The invoke token's (the admin token's where the target has no invoke token)."""
    if not target.api_url:
        raise ApiNotConfigured(f"{target.description} has no API URL")
    token = target.api_token or target.admin_token
    if not token:
        raise ApiNotConfigured(f"{target.description} has no API token (neither invoke nor admin)")
    return {"Authorization": f"Bearer {token}"}


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def infer_url(api_url: str, name: str, version: str | None = None) -> str:
    pinned = "" if version is None else f"/versions/{_segment(version)}"
    return f"{api_url.rstrip('/')}/v2/models/{_segment(name)}{pinned}/infer"


def models_url(api_url: str, limit: int | None = None, next_token: str | None = None) -> str:
    query = {key: value for key, value in (("limit", limit), ("next", next_token)) if value is not None}
    return f"{api_url.rstrip('/')}/models" + (f"?{urllib.parse.urlencode(query)}" if query else "")


def infer(
    target: DeploymentTarget, name: str, version: str | None, body: bytes, timeout: float = INFER_TIMEOUT_S
) -> ApiAnswer:
    """``POST /v2/models/{name}[/versions/{version}]/infer`` with a JSON request."""
    headers = {**invoke_headers(target), "Content-Type": "application/json"}
    return post(infer_url(str(target.api_url), name, version), body, headers, timeout)


def models_page(target: DeploymentTarget, limit: int | None, next_token: str | None) -> ApiAnswer:
    """``GET /models?limit&next``: ``{"models": [...], "next": TOKEN|null}``."""
    return get(models_url(str(target.api_url), limit, next_token), invoke_headers(target))


@dataclass(frozen=True)
class ModelsListing:
    models: list[dict[str, Any]]
    next: str | None  # where a further page starts; None when every model is listed
    failed: ApiAnswer | None = None  # the refusal that ended the listing, if one did


def list_models(target: DeploymentTarget, limit: int | None = None, next_token: str | None = None) -> ModelsListing:
    """With ``limit``: one page from ``next_token``. Without: every page, following ``next``."""
    models: list[dict[str, Any]] = []
    seen: set[str] = set()
    token = next_token
    while True:
        answer = models_page(target, limit, token)
        if not answer.accepted:
            return ModelsListing(models, token, answer)
        page = answer.document.get("models")
        models += [m for m in page if isinstance(m, dict)] if isinstance(page, list) else []
        following = answer.document.get("next") or None
        if limit is not None or following is None:
            return ModelsListing(models, following)
        if following in seen:  # an API that hands back a token twice would page forever
            raise PagingLoop(f"the API gave the page token {following!r} twice; the listing stops here")
        seen.add(following)
        token = str(following)


# -- the answers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inference:
    """An answer to ``invoke``: the KServe document, and which version and route served it."""

    answer: ApiAnswer
    document: dict[str, Any]
    served_version: str | None
    route: str | None

    def as_json(self) -> dict[str, Any]:
        """What ``invoke --json`` prints: the answer with its HTTP status, version and route."""
        return {
            **self.document,
            "http_status": self.answer.http_status,
            "served_version": self.served_version,
            "route": self.route,
        }


def inference(answer: ApiAnswer) -> Inference:
    document = answer.document
    length = answer.header(HEADER_LENGTH)
    if length and length.isdigit():  # binary outputs were asked for: the JSON head comes first
        try:
            head = json.loads(answer.body[: int(length)])
        except (UnicodeDecodeError, ValueError):
            head = None
        if isinstance(head, dict):
            document = head
    version = answer.header(VERSION_HEADER) or _text(document.get("model_version"))
    return Inference(answer, document, version, answer.header(ROUTE_HEADER))


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _flat(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, str) else str(value)


def tensor_data(output: dict[str, Any], shown: int = SHOWN_VALUES) -> str:
    """A tensor's data on one line: the first ``shown`` values (flattened, row-major), then how
    many more; binary data (not in the JSON) by its size."""
    parameters = output.get("parameters") if isinstance(output.get("parameters"), dict) else {}
    if "data" not in output:
        size = parameters.get("binary_data_size") if parameters else None
        return f"({size} bytes of binary data, not shown)" if size is not None else "(no data)"
    values = list(_flat(output["data"]))
    text = ", ".join(_value(v) for v in values[:shown])
    more = f", … {len(values) - shown} more" if len(values) > shown else ""
    return f"[{text}{more}]"


def _shape(shape: Any) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if isinstance(shape, list) else str(shape or "?")


def inference_lines(name: str, served: Inference, shown: int = SHOWN_VALUES) -> list[str]:
    """The human view: who served, then one line per output (name, datatype, shape, data)."""
    route = f" (route: {served.route})" if served.route else ""
    lines = [f"{served.document.get('model_name') or name} {served.served_version or '?'}{route}"]
    outputs = [o for o in served.document.get("outputs") or [] if isinstance(o, dict)]
    if not outputs:
        return [*lines, "  (the answer has no outputs)"]
    rows = [
        (str(o.get("name", "?")), str(o.get("datatype", "?")), _shape(o.get("shape")), tensor_data(o, shown))
        for o in outputs
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for *cells, data in rows:
        lines.append("  " + "".join(cell.ljust(width + 2) for cell, width in zip(cells, widths, strict=True)) + data)
    return lines


def models_lines(models: list[dict[str, Any]]) -> list[str]:
    """``models``: a table of name, production, canary (version and weight when known), latest."""
    header = ("NAME", "PRODUCTION", "CANARY", "LATEST", "UPDATED (UTC)")
    rows = [header]
    for model in models:
        rows.append(
            (
                str(model.get("name", "?")),
                str(model.get("production_version") or "-"),
                str(model.get("canary_version") or "-"),
                str(model.get("latest_version") or "-"),
                str(model.get("updated_at") or "-").replace("T", " ").removesuffix("Z"),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
