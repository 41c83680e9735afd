"""What API Gateway does around the Chalice app that Chalice's local server does not.

- A TOKEN authorizer that fails with exactly "Unauthorized" is a 401; any other authorizer
  failure is a 500. Chalice's local gateway lets the exception escape (the connection drops).
- Gateway-made errors (401, 403, missing route) are answered in the KServe shape
  ``{"error": "..."}``, as the template's GatewayResponses configure API Gateway to.

Used by the local stack's server and by the tests' Chalice client, so both see the same gateway.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    InvalidAuthorizerError,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    NotAuthorizedError,
)
from chalice.test import Client, TestHTTPClient

logger = logging.getLogger(__name__)

UNAUTHORIZED = "Unauthorized"
# API Gateway's own messages, as our GatewayResponses put them into {"error": ...}
GATEWAY_MESSAGES = {
    401: "Unauthorized: send 'Authorization: Bearer <token>' with a valid API token",
    403: "Forbidden: this token's scope does not allow this route",
}


class ApiGatewayEmulation(LocalGateway):
    def handle_request(self, method: str, path: str, headers: dict[str, Any], body: bytes | None) -> Any:
        try:
            return super().handle_request(method, path, headers, body)
        except LocalGatewayException as error:
            raise _kserve_shaped(error) from None
        except Exception as error:  # the app answers its views' errors itself: this is the authorizer
            if str(error) == UNAUTHORIZED:
                raise _kserve_shaped(NotAuthorizedError({}, None)) from None
            logger.exception("the authorizer failed")
            raise _kserve_shaped(InvalidAuthorizerError({}, None)) from None


def _kserve_shaped(error: LocalGatewayException) -> LocalGatewayException:
    message = GATEWAY_MESSAGES.get(error.CODE)
    if message is None:
        try:
            found = json.loads(error.body or b"{}")
            message = str(found.get("message") or found.get("Message") or "API Gateway refused the request")
        except ValueError:
            message = "API Gateway refused the request"
    error.body = json.dumps({"error": message}).encode()
    error.headers = {**error.headers, "Content-Type": "application/json"}
    return error


class EmulatedRequestHandler(ChaliceRequestHandler):
    def __init__(
        self, request: bytes, client_address: tuple[str, int], server: HTTPServer, app_object: Chalice, config: Config
    ) -> None:
        self.local_gateway = ApiGatewayEmulation(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)  # type: ignore[arg-type]


def local_server(app: Chalice, config: Config, host: str, port: int) -> LocalDevServer:
    return LocalDevServer(app, config, host, port, handler_cls=EmulatedRequestHandler)


class _EmulatedHttpClient(TestHTTPClient):
    def __init__(self, app: Chalice, config: Config) -> None:
        super().__init__(app, config)
        self._local_gateway = ApiGatewayEmulation(app, config)


class GatewayTestClient(Client):
    """chalice.test.Client behind the same gateway emulation as the local stack."""

    @property
    def http(self) -> TestHTTPClient:
        if self._http_client is None:
            self._http_client = _EmulatedHttpClient(self._app, self._chalice_config)
        return self._http_client
