"""The Chalice app: API routes, the Slack webhook and the S3-upload trigger.

Wiring only: parse input into pydantic models, call one chalicelib service, shape the response.
Routes arrive with their issues; today the app answers its health check.
"""

from __future__ import annotations

from chalice import Chalice

app = Chalice(app_name="mmedeploy")


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}
