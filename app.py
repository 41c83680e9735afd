"""The Chalice app: API routes, the Slack webhook and the S3-upload trigger.

Wiring only: parse input into pydantic models, call one chalicelib service, shape the response.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from chalice import Chalice, ConvertToMiddleware
from chalice.app import CloudWatchEvent

from chalicelib import composition
from chalicelib.pipeline.stage_io import UploadedObject
from chalicelib.pipeline.upload_trigger import upload_event_pattern
from chalicelib.settings import TriggerSettings

# Powertools owns the "mmedeploy" logger (JSON, structured); Chalice must not configure it too.
app = Chalice(app_name="mmedeploy", configure_logs=False)
logger = Logger(service="mmedeploy")
tracer = Tracer(service="mmedeploy")
# clear_state: keys appended for one event must not leak into the next one's logs
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.on_cw_event(upload_event_pattern(TriggerSettings().staging_bucket), name="on_model_uploaded")
def on_model_uploaded(event: CloudWatchEvent) -> dict[str, Any]:
    upload = UploadedObject.from_event_detail(event.detail)
    logger.append_keys(key=upload.key, etag=upload.etag)
    return composition.upload_handler()(upload=upload).model_dump(mode="json")
