"""The Chalice app: API routes, the Slack webhook and the S3-upload trigger.

Wiring only: parse input into pydantic models, call one chalicelib service, shape the response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import (
    AuthRequest,
    AuthResponse,
    AuthRoute,
    Chalice,
    CloudWatchEvent,
    ConvertToMiddleware,
    Request,
    Response,
    RestAPIEventHandler,
)
from pydantic import ValidationError

from chalicelib import composition
from chalicelib.api_tokens import ADMIN, INVOKE, Unauthorized
from chalicelib.deploy_model.stage_io import UploadedObject
from chalicelib.deploy_model.upload_trigger import upload_event_pattern
from chalicelib.domain.errors import (
    Conflict,
    DomainError,
    InvalidRequest,
    ModelFailed,
    ModelNotReady,
    ModelTimedOut,
    NotFound,
    RegistryError,
    RequestTooLarge,
    ServiceError,
)
from chalicelib.domain.rollout.policy import RolloutOverrides, overrides_from
from chalicelib.inference.api_contract import HEADER_LENGTH, ROUTE_HEADER, VERSION_HEADER
from chalicelib.inference.canary import CanaryRequest
from chalicelib.inference.catalog import page_limit
from chalicelib.settings import TriggerSettings


class _AnyAcceptHandler(RestAPIEventHandler):
    def _validate_binary_response(self, request_headers: Any, response_headers: Any) -> bool:
        # Chalice refuses a binary response unless the request's Accept names a binary type, which
        # guards APIs whose binaryMediaTypes is narrower than "*/*". Ours is "*/*" (below): API
        # Gateway decodes every base64 body whatever the Accept, and Triton clients send none.
        return True


class KServeApp(Chalice):
    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        # Chalice.__call__ with the handler above (Chalice builds its handler inline).
        self.lambda_context = context
        handler = _AnyAcceptHandler(
            self.routes, self.api, self.log, self.debug, middleware_handlers=self._get_middleware_handlers("http")
        )
        self.current_request = handler.create_request_object(event, context)
        answer: dict[str, Any] = handler(event, context)
        return answer


# Powertools owns the "mmedeploy" logger (JSON, structured); Chalice must not configure it too.
app = KServeApp(app_name="mmedeploy", configure_logs=False)
# Every body is binary to API Gateway, so tensors pass both ways untouched (Triton's binary
# extension sends no Content-Type); Chalice decodes requests and base64-encodes responses.
app.api.binary_types = ["*/*"]
logger = Logger(service="mmedeploy")
# clear_state: keys appended for one event must not leak into the next one's logs
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
# No Powertools Tracer here: Lambda traces the invocation itself (Tracing: Active), and the X-Ray
# SDK would add a third to every cold start of the API, the authorizer and the upload trigger.

# What each scope may call (API Gateway caches the policy per token, so it names routes, not one).
SCOPE_ROUTES: dict[str, list[str | AuthRoute]] = {
    INVOKE: [
        AuthRoute("/v2", ["GET"]),
        AuthRoute("/v2/*", ["GET", "POST"]),
        AuthRoute("/models", ["GET"]),
        AuthRoute("/models/*", ["GET"]),
    ],
    ADMIN: ["*"],
}


@app.authorizer(ttl_seconds=300)
def bearer_token(auth_request: AuthRequest) -> AuthResponse:
    holder = composition.api_tokens().holder(auth_request.token or "")
    if holder is None:
        raise Unauthorized()  # 401; a known token without the route's scope gets a deny: 403
    routes = [route for scope in holder.scopes for route in SCOPE_ROUTES.get(scope, [])]
    return AuthResponse(routes=routes, principal_id=holder.name, context={"scopes": ",".join(holder.scopes)})


def _request() -> Request:
    request = app.current_request
    if request is None:  # Chalice sets it for every route call
        raise RuntimeError("no current request")
    return request


def _principal() -> str:
    return "api:" + str(_request().context.get("authorizer", {}).get("principalId", "unknown"))


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/slack/interactions", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def slack_interactions() -> Response:
    request = _request()
    body = request.raw_body or b""  # the signature is over the exact bytes Slack sent
    raw = body.encode() if isinstance(body, str) else bytes(body)
    answered = composition.slack_interactions().handle(raw, dict(request.headers))
    answer = answered.answer
    # not extra=answer.model_dump(): "name" is a LogRecord attribute and may not be overwritten
    logger.info("slack interaction", extra={"outcome": answer.outcome, "model": answer.name, "version": answer.version})
    return Response(body=answer.model_dump(mode="json"), status_code=answered.status_code)


# The one place domain errors become HTTP: each kind of error and its status, found along the
# error's classes (the most specific first). Anything else is a 500, logged with its traceback.
HTTP_STATUS: dict[type[DomainError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    Conflict: 409,
    RequestTooLarge: 413,
    ModelFailed: 502,
    ServiceError: 502,
    ModelNotReady: 503,
    RegistryError: 503,
    ModelTimedOut: 504,
    DomainError: 500,
}


def http_status(error: BaseException) -> int:
    """The status ``error`` is answered with (the inference metrics record it too)."""
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500


def _error_response(error: DomainError) -> Response:
    """KServe's ``{"error": ...}`` with the error's status (and Retry-After when it says when)."""
    headers: dict[str, str | list[str]] = (
        {"Retry-After": str(error.retry_after_s)} if isinstance(error, ModelNotReady) else {}
    )
    if error.served_by is not None:
        headers[VERSION_HEADER], headers[ROUTE_HEADER] = error.served_by
    return Response(body={"error": error.message}, status_code=http_status(error), headers=headers)


def _answer(produce: Callable[[], Any], status_code: int = 200) -> Response:
    """A route's answer: what ``produce`` returns, or its domain error by HTTP_STATUS; anything
    unexpected as 500, logged with its traceback."""
    try:
        produced = produce()
    except DomainError as error:
        return _error_response(error)
    except Exception:
        logger.exception("unexpected error")
        return Response(body={"error": "internal error: the request id is in the API's logs"}, status_code=500)
    if isinstance(produced, Response):
        return produced
    body = produced.model_dump(mode="json") if hasattr(produced, "model_dump") else produced
    return Response(body=body, status_code=status_code)


def _query(name: str) -> str | None:
    params = _request().query_params
    return params.get(name) if params else None


# -- KServe v2 / Triton HTTP ---------------------------------------------------------------
@app.route("/v2/health/live", methods=["GET"])
def server_live() -> Response:
    return _answer(lambda: {"live": True})


@app.route("/v2/health/ready", methods=["GET"])
def server_ready() -> Response:
    # ready when its settings are complete: routes can be resolved
    return _answer(lambda: {"ready": bool(composition.router())})


@app.route("/v2", methods=["GET"], authorizer=bearer_token)
def server_metadata() -> Response:
    return _answer(lambda: {"name": "mmedeploy", "version": _version(), "extensions": ["binary_tensor_data"]})


@app.route("/v2/models/{name}", methods=["GET"], authorizer=bearer_token)
def model_metadata(name: str) -> Response:
    return _answer(lambda: composition.model_catalog().kserve_metadata(name))


@app.route("/v2/models/{name}/versions/{version}", methods=["GET"], authorizer=bearer_token)
def model_version_metadata(name: str, version: str) -> Response:
    return _answer(lambda: composition.model_catalog().kserve_metadata(name, version))


@app.route("/v2/models/{name}/ready", methods=["GET"], authorizer=bearer_token)
def model_ready(name: str) -> Response:
    return _answer(lambda: composition.model_catalog().ready(name))


@app.route("/v2/models/{name}/versions/{version}/ready", methods=["GET"], authorizer=bearer_token)
def model_version_ready(name: str, version: str) -> Response:
    return _answer(lambda: composition.model_catalog().ready(name, version))


@app.route("/v2/models/{name}/infer", methods=["POST"], authorizer=bearer_token, content_types=["*/*"])
def infer(name: str) -> Response:
    return _answer(lambda: _infer(name, None))


@app.route(
    "/v2/models/{name}/versions/{version}/infer", methods=["POST"], authorizer=bearer_token, content_types=["*/*"]
)
def infer_version(name: str, version: str) -> Response:
    return _answer(lambda: _infer(name, version))


def _infer(name: str, version: str | None) -> Response:
    request = _request()
    raw = request.raw_body or b""
    body = raw.encode() if isinstance(raw, str) else bytes(raw)
    served = composition.inference_proxy(http_status).infer(name, version, body, request.headers.get(HEADER_LENGTH))
    answer, route = served.answer, served.route
    headers: dict[str, str | list[str]] = {
        "Content-Type": answer.content_type,
        VERSION_HEADER: route.version,
    }
    headers[ROUTE_HEADER] = route.kind
    if answer.header_length is not None:
        headers[HEADER_LENGTH] = str(answer.header_length)
    return Response(body=answer.body, status_code=200, headers=headers)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # only here: a fifth of a cold start

    try:
        return version("mmedeploy")
    except PackageNotFoundError:  # deployed without its metadata
        return "unknown"


# -- the registry ---------------------------------------------------------------------------
@app.route("/models", methods=["GET"], authorizer=bearer_token)
def list_models() -> Response:
    return _answer(lambda: composition.model_catalog().models(page_limit(_query("limit")), _query("next")))


@app.route("/models/{name}", methods=["GET"], authorizer=bearer_token)
def describe_model(name: str) -> Response:
    return _answer(lambda: composition.model_catalog().model(name, page_limit(_query("limit")), _query("next")))


@app.route("/models/{name}/versions/{version}", methods=["GET"], authorizer=bearer_token)
def describe_version(name: str, version: str) -> Response:
    return _answer(lambda: composition.model_catalog().version(name, version))


@app.route("/models/{name}/versions/{version}/approval", methods=["GET"], authorizer=bearer_token)
def describe_approval(name: str, version: str) -> Response:
    return _answer(lambda: composition.model_catalog().approval(name, version))


# -- admin ----------------------------------------------------------------------------------
@app.route(
    "/models/{name}/versions/{version}/promote", methods=["POST"], authorizer=bearer_token, content_types=["*/*"]
)
def promote(name: str, version: str) -> Response:
    return _answer(lambda: composition.promotion_requests().promote(name, version, _principal()), 202)


@app.route(
    "/models/{name}/versions/{version}/redeploy", methods=["POST"], authorizer=bearer_token, content_types=["*/*"]
)
def redeploy(name: str, version: str) -> Response:
    return _answer(lambda: composition.redeploy().redeploy(name, version, _principal()), 202)


@app.route("/models/{name}/rollback", methods=["POST"], authorizer=bearer_token, content_types=["*/*"])
def rollback(name: str) -> Response:
    return _answer(lambda: composition.promotion_requests().rollback(name, _principal()), 202)


@app.route("/models/{name}/canary", methods=["POST"], authorizer=bearer_token, content_types=["*/*"])
def start_canary(name: str) -> Response:
    return _answer(lambda: composition.canary_requests().start(name, _canary_request(), _principal()))


@app.route("/models/{name}/canary", methods=["DELETE"], authorizer=bearer_token)
def stop_canary(name: str) -> Response:
    return _answer(lambda: composition.canary_requests().stop(name, _principal()))


def _canary_request() -> CanaryRequest:
    raw = _request().raw_body or b"{}"
    try:
        return CanaryRequest.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f'a canary needs {{"version": "...", "weight": 0..1}}: {problems}') from None


@app.route(
    "/models/{name}/versions/{version}/rollout", methods=["POST"], authorizer=bearer_token, content_types=["*/*"]
)
def start_rollout(name: str, version: str) -> Response:
    return _answer(lambda: composition.rollout_requests().start(name, version, _rollout_options(), _principal()), 202)


@app.route("/models/{name}/rollout/{action}", methods=["POST"], authorizer=bearer_token, content_types=["*/*"])
def control_rollout(name: str, action: str) -> Response:
    def control() -> Any:
        rollouts = composition.rollout_requests()
        actions = {"pause": rollouts.pause, "resume": rollouts.resume, "abort": rollouts.abort}
        if action not in actions:
            raise NotFound(f"no rollout action {action!r}: pause, resume or abort")
        return actions[action](name, _principal())

    return _answer(control)


def _rollout_options() -> RolloutOverrides:
    """The request's body: the rollout's own options, every field optional (``{}`` or none: the
    policy's other layers decide)."""
    raw = _request().raw_body or b"{}"
    try:
        document = json.loads(raw)
    except ValueError:
        raise InvalidRequest('a rollout\'s options are a JSON object, e.g. {"steps": [10, 50, 100]}') from None
    if not isinstance(document, dict):
        raise InvalidRequest('a rollout\'s options are a JSON object, e.g. {"steps": [10, 50, 100]}')
    return overrides_from(document)


@app.on_cw_event(upload_event_pattern(TriggerSettings().staging_bucket), name="on_model_uploaded")
def on_model_uploaded(event: CloudWatchEvent) -> dict[str, Any]:
    upload = UploadedObject.from_event_detail(event.detail)
    logger.append_keys(key=upload.key, etag=upload.etag)
    return composition.upload_handler()(upload=upload).model_dump(mode="json")
