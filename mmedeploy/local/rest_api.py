"""API Gateway, locally: the REST API the packaged template defines (its Swagger body, its TOKEN
authorizer, its gateway responses), in front of the API's Lambda functions.

Each HTTP request becomes the REST proxy event API Gateway sends; the authorizer function decides
(its answer cached per token for the authorizer's TTL, as API Gateway does) and the integration's
function answers, each an invocation of the local Lambda service, so each one is served by an
execution environment that serves one request at a time, as on AWS. What API Gateway itself
answers (401, 403, a missing route, a failed function, a timeout) is shaped by the template's
GatewayResponses. Bodies are base64 both ways when the API's binary media types say so.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mmedeploy.local.lambdas.function import Invocation

log = logging.getLogger("mmedeploy.local.api")

Invoke = Callable[[str, bytes], Invocation]  # (function name, event) -> what Lambda returned

# API Gateway's own limits
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_S = 29.0
# A client that stops sending mid-request, or idles on a kept-alive connection, is let go
CLIENT_TIMEOUT_S = 30.0
LOCAL_API_ID = "local"
ACCOUNT_ID = "123456789012"

# gateway response type -> (status, message) API Gateway uses when the template does not override
DEFAULT_RESPONSES = {
    "UNAUTHORIZED": (401, "Unauthorized"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error"),
    "BAD_REQUEST_BODY": (400, "Bad request"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_FAILURE": (502, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
}


class GatewayError(Exception):
    def __init__(self, response_type: str, detail: str = "") -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.detail = detail  # for the stack's log and the local-only diagnostic header


@dataclass(frozen=True)
class Route:
    resource: str  # the Swagger path, e.g. /v2/models/{name}/infer
    method: str
    function: str
    authorizer: str | None
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Authorizer:
    function: str
    header: str
    ttl_s: int


@dataclass
class RestApi:
    """The REST API of the packaged template, resolved to local function names."""

    routes: list[Route]
    authorizers: dict[str, Authorizer]
    binary_types: list[str]
    responses: dict[str, tuple[int, str]]  # response type -> (status, application/json template)
    stage: str
    region: str
    _cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_template(cls, template: dict[str, Any], function_name: Callable[[str], str], region: str) -> RestApi:
        api_id, api = next(
            (lid, r) for lid, r in template["Resources"].items() if r.get("Type") == "AWS::Serverless::Api"
        )
        body = api["Properties"]["DefinitionBody"]
        authorizers = {
            name: Authorizer(
                function=function_name(_function_of(spec["x-amazon-apigateway-authorizer"]["authorizerUri"])),
                header=spec.get("name", "Authorization"),
                ttl_s=int(spec["x-amazon-apigateway-authorizer"].get("authorizerResultTtlInSeconds", 300)),
            )
            for name, spec in body.get("securityDefinitions", {}).items()
            if spec.get("x-amazon-apigateway-authtype") == "custom"
        }
        routes = []
        for resource, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                if integration.get("type") != "aws_proxy":
                    raise ValueError(f"the local API runs Lambda proxy integrations only, not {method} {resource}")
                security = [name for entry in operation.get("security", []) for name in entry]
                routes.append(
                    Route(
                        resource=resource,
                        method=method.upper(),
                        function=function_name(_function_of(integration["uri"])),
                        authorizer=security[0] if security else None,
                        pattern=_path_pattern(resource),
                    )
                )
        responses = {}
        for resource in template["Resources"].values():
            if resource.get("Type") != "AWS::ApiGateway::GatewayResponse":
                continue
            properties = resource["Properties"]
            if properties.get("RestApiId", {}).get("Ref") != api_id:
                continue
            kind = properties["ResponseType"]
            status = int(properties.get("StatusCode") or DEFAULT_RESPONSES.get(kind, (500, ""))[0])
            responses[kind] = (status, properties.get("ResponseTemplates", {}).get("application/json", ""))
        return cls(
            routes=routes,
            authorizers=authorizers,
            binary_types=list(body.get("x-amazon-apigateway-binary-media-types", [])),
            responses=responses,
            stage=str(api["Properties"].get("StageName", "api")),
            region=region,
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        found = False
        for route in self.routes:
            matched = route.pattern.match(path)
            if matched is None:
                continue
            found = True
            if route.method in (method, "ANY"):
                return route, {k: urllib.parse.unquote(v) for k, v in matched.groupdict().items()}
        # API Gateway answers an unknown resource and an unknown method alike
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN", f"no route {method} {path}" if not found else "")

    def is_binary(self, content_type: str) -> bool:
        base = content_type.split(";")[0].strip().lower()
        return any(fnmatch.fnmatch(base, pattern.lower()) for pattern in self.binary_types)

    def gateway_response(self, response_type: str) -> tuple[int, bytes]:
        """The status and body API Gateway sends for one of its own responses."""
        default_status, message = DEFAULT_RESPONSES.get(response_type, (500, "Internal server error"))
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        status, body_template = self.responses.get(response_type) or self.responses.get(family) or (default_status, "")
        if response_type not in self.responses:
            status = default_status  # DEFAULT_4XX/5XX change the body, not the status
        if not body_template:
            return status, json.dumps({"message": message}).encode()
        return status, body_template.replace("$context.error.messageString", json.dumps(message)).encode()

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{LOCAL_API_ID}/{self.stage}/{method}{path}"

    def authorize(
        self, route: Route, method: str, path: str, headers: dict[str, str], invoke: Invoke
    ) -> dict[str, Any]:
        """The authorizer's context for this request, or GatewayError (401/403/500)."""
        if route.authorizer is None:
            return {}
        authorizer = self.authorizers[route.authorizer]
        token = next((v for k, v in headers.items() if k.lower() == authorizer.header.lower()), "")
        if not token:
            raise GatewayError("UNAUTHORIZED", "no token")
        arn = self.method_arn(method, path)
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is None or cached[0] < now:
            event = {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
            answer = invoke(authorizer.function, json.dumps(event).encode())
            if answer.function_error:
                message = _error_message(answer.payload)
                if message == "Unauthorized":
                    raise GatewayError("UNAUTHORIZED", "the authorizer refused the token")
                raise GatewayError("AUTHORIZER_FAILURE", f"the authorizer failed: {answer.error_type}: {message}")
            try:
                decision = json.loads(answer.payload)
                statements = decision["policyDocument"]["Statement"]
            except (ValueError, KeyError, TypeError):
                raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR", "the authorizer returned no policy") from None
            cached = (now + authorizer.ttl_s, {"statements": statements, "decision": decision})
            if authorizer.ttl_s > 0:
                self._cache[token] = cached
        statements, decision = cached[1]["statements"], cached[1]["decision"]
        if not _allowed(statements, arn):
            raise GatewayError("ACCESS_DENIED", f"the policy does not allow {arn}")
        context = {k: str(v) for k, v in (decision.get("context") or {}).items()}
        return {"principalId": decision.get("principalId"), **context}

    def event(
        self,
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        parameters: dict[str, str],
        authorizer: dict[str, Any],
        source_ip: str,
    ) -> dict[str, Any]:
        """The REST API (v1) proxy event."""
        multi_headers: dict[str, list[str]] = {}
        for key, value in headers:
            multi_headers.setdefault(key, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(key, []).append(value)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        binary = bool(body) and self.is_binary(content_type or "application/json")
        request_id = str(uuid.uuid4())
        now = time.time()
        context: dict[str, Any] = {
            "resourceId": route.resource,
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{self.stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": self.stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": multi_headers.get("User-Agent", [None])[-1]},
            "domainName": "localhost",
            "apiId": LOCAL_API_ID,
        }
        if authorizer:
            context["authorizer"] = authorizer
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": method,
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "requestContext": context,
            "body": (base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace")) if body else None,
            "isBase64Encoded": binary,
        }

    def handle(
        self,
        invoke: Invoke,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request through the gateway: (status, headers, body)."""
        split = urllib.parse.urlsplit(target)
        path = split.path or "/"
        try:
            if len(body) > MAX_PAYLOAD_BYTES:
                raise GatewayError("REQUEST_TOO_LARGE", f"{len(body)} bytes")
            route, parameters = self.match(method, path)
            authorizer = self.authorize(route, method, path, dict(headers), invoke)
            event = self.event(route, method, path, split.query, headers, body, parameters, authorizer, source_ip)
            started = time.monotonic()
            answer = invoke(route.function, json.dumps(event).encode())
            if answer.function_error:
                if answer.error_type == "Sandbox.Timedout" and time.monotonic() - started >= INTEGRATION_TIMEOUT_S:
                    raise GatewayError("INTEGRATION_TIMEOUT", "the function ran past API Gateway's 29 s")
                detail = f"{answer.error_type}: {_error_message(answer.payload)}"
                raise GatewayError("INTEGRATION_FAILURE", detail)
            return _proxy_response(answer.payload)
        except GatewayError as error:
            status, payload = self.gateway_response(error.response_type)
            extra = [("x-amzn-ErrorType", _error_type_header(error.response_type))]
            if error.detail:
                log.info("API Gateway %s for %s %s: %s", error.response_type, method, path, error.detail)
                # local only: why, so a developer need not search the logs (API Gateway sends no such header)
                extra.append(
                    ("X-Mmedeploy-Local-Gateway-Detail", error.detail[:500].encode("ascii", "replace").decode())
                )
            return status, [("Content-Type", "application/json"), *extra], payload


def _function_of(uri: Any) -> str:
    """The logical id of the function in an integration or authorizer URI (``${X.Arn}``)."""
    text = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
    match = re.search(r"\$\{([A-Za-z0-9]+)\.Arn\}", str(text))
    if match is None:
        raise ValueError(f"cannot tell which function {uri} invokes")
    return match.group(1)


def _path_pattern(resource: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", resource):
        if piece.startswith("{") and piece.endswith("+}"):
            parts.append(f"(?P<{piece[1:-2]}>.+)")
        elif piece.startswith("{"):
            parts.append(f"(?P<{piece[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + "/?$")


def _allowed(statements: Any, arn: str) -> bool:
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        resources = statement.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        if not any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", ""))
    except (ValueError, AttributeError):
        return ""


def _error_type_header(response_type: str) -> str:
    return {
        "UNAUTHORIZED": "UnauthorizedException",
        "ACCESS_DENIED": "AccessDeniedException",
        "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    }.get(response_type, "InternalServerErrorException")


def _proxy_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy integration's answer, or INTEGRATION_FAILURE when it is malformed."""
    try:
        answer = json.loads(payload)
        status = int(answer["statusCode"])
        headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
        for key, values in (answer.get("multiValueHeaders") or {}).items():
            headers += [(str(key), str(v)) for v in values if (str(key), str(v)) not in headers]
        body = answer.get("body") or ""
        data = base64.b64decode(body, validate=True) if answer.get("isBase64Encoded") else str(body).encode()
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise GatewayError("INTEGRATION_FAILURE", f"malformed Lambda proxy response: {exc}") from None
    return status, headers, data


# -- the HTTP front door ------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


def _handler_for(api: RestApi, invoke: Invoke, client_timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = client_timeout_s
        # what http.server answers itself (a malformed request line or header): JSON, not HTML
        error_content_type = "application/json"
        error_message_format = '{"message": "%(message)s"}'

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # a request line too broken to name its version still gets a status line (not HTTP/0.9)
            self.request_version = "HTTP/1.1"
            self.close_connection = True
            super().send_error(code, message, explain)

        def _serve(self) -> None:
            try:
                body = self._read_body()
            except _BadRequest as error:
                self._send(400, [("Content-Type", "application/json")], json.dumps({"message": str(error)}).encode())
                self.close_connection = True
                return
            except TimeoutError:
                self.close_connection = True
                return
            status, headers, data = api.handle(
                invoke, self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            self._send(status, headers, data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            raw = self.headers.get_all("Content-Length") or []
            if len(set(raw)) > 1:
                raise _BadRequest("conflicting Content-Length headers")
            if not raw:
                return b""
            if not raw[0].strip().isdigit():
                raise _BadRequest(f"Content-Length is not a number: {raw[0]!r}")
            length = int(raw[0])
            if length > MAX_PAYLOAD_BYTES:
                # read nothing of it: the answer says why and the connection closes
                self.close_connection = True
                return b"\0" * (MAX_PAYLOAD_BYTES + 1)
            body = self.rfile.read(length)
            if len(body) < length:
                raise TimeoutError("the client closed mid-body")
            return body

        def _read_chunked(self) -> bytes:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:
                    raise _BadRequest("malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    self.close_connection = True
                    return b"\0" * (MAX_PAYLOAD_BYTES + 1)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)

        def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            reason = self.responses.get(status, ("",))[0]
            lines = [f"HTTP/1.1 {status} {reason}"]
            skip = {"content-length", "connection", "transfer-encoding"}
            lines += [f"{k}: {v}" for k, v in headers if k.lower() not in skip]
            lines.append(f"Content-Length: {len(data)}")
            if self.close_connection:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
            # one write: headers and body in one segment, so no client waits on a delayed ACK
            self.wfile.write(head + (b"" if self.command == "HEAD" else data))
            self.wfile.flush()

    return Handler


class LocalRestApi:
    """The HTTP server of the local API."""

    def __init__(
        self, api: RestApi, invoke: Invoke, host: str, port: int, client_timeout_s: float = CLIENT_TIMEOUT_S
    ) -> None:
        self.api = api
        self._server = ThreadingHTTPServer((host, port), _handler_for(api, invoke, client_timeout_s))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="local-rest-api")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
