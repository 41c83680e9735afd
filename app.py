"""The Chalice app: API routes, the Slack webhook and the S3-upload trigger.

Wiring only: parse input into pydantic models, call one chalicelib service, shape the response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from chalice.app import (
    AuthRequest,
    AuthResponse,
    AuthRoute,
    Chalice,
    CloudWatchEvent,
    ConvertToMiddleware,
    Request,
    Response,
)

from chalicelib import composition
from chalicelib.api_tokens import ADMIN, INVOKE
from chalicelib.pipeline.stage_io import UploadedObject
from chalicelib.pipeline.upload_trigger import upload_event_pattern
from chalicelib.promotion.requests import PromotionAccepted, RequestRefused
from chalicelib.settings import TriggerSettings

# Powertools owns the "mmedeploy" logger (JSON, structured); Chalice must not configure it too.
app = Chalice(app_name="mmedeploy", configure_logs=False)
logger = Logger(service="mmedeploy")
tracer = Tracer(service="mmedeploy")
# clear_state: keys appended for one event must not leak into the next one's logs
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))

# What each scope may call (API Gateway caches the policy per token, so it names routes, not one).
SCOPE_ROUTES: dict[str, list[str | AuthRoute]] = {
    INVOKE: [AuthRoute("/v2/*", ["GET", "POST"]), AuthRoute("/models", ["GET"]), AuthRoute("/models/*", ["GET"])],
    ADMIN: ["*"],
}


@app.authorizer(ttl_seconds=300)
def bearer_token(auth_request: AuthRequest) -> AuthResponse:
    holder = composition.api_tokens().holder(auth_request.token or "")
    if holder is None:
        return AuthResponse(routes=[], principal_id="anonymous")  # denied: API Gateway answers 403
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


@app.route("/models/{name}/versions/{version}/promote", methods=["POST"], authorizer=bearer_token)
def promote(name: str, version: str) -> Response:
    return _accepted(lambda: composition.promotion_requests().promote(name, version, _principal()))


@app.route("/models/{name}/rollback", methods=["POST"], authorizer=bearer_token)
def rollback(name: str) -> Response:
    return _accepted(lambda: composition.promotion_requests().rollback(name, _principal()))


def _accepted(request: Callable[[], PromotionAccepted]) -> Response:
    try:
        accepted = request()
    except RequestRefused as refused:
        return Response(body={"error": str(refused)}, status_code=refused.status_code)
    return Response(body=accepted.model_dump(mode="json"), status_code=202)


@app.on_cw_event(upload_event_pattern(TriggerSettings().staging_bucket), name="on_model_uploaded")
def on_model_uploaded(event: CloudWatchEvent) -> dict[str, Any]:
    upload = UploadedObject.from_event_detail(event.detail)
    logger.append_keys(key=upload.key, etag=upload.etag)
    return composition.upload_handler()(upload=upload).model_dump(mode="json")
