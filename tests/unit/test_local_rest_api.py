"""The local API Gateway: routes, the TOKEN authorizer and its cache, proxy events, gateway
responses, and HTTP framing, with a stand-in for the Lambda service."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mmedeploy.local.lambdas.function import Invocation, error_payload
from mmedeploy.local.rest_api import LocalRestApi, RestApi

URI = "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${%s.Arn}/invocations"


def template() -> dict[str, Any]:
    def operation(secured: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": {"Fn::Sub": URI % "APIHandler"}}
        }
        if secured:
            found["security"] = [{"bearer": []}]
        return found

    body = {
        "swagger": "2.0",
        "x-amazon-apigateway-binary-media-types": ["*/*"],
        "securityDefinitions": {
            "bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {
                    "type": "token",
                    "authorizerUri": {"Fn::Sub": URI % "Authorizer"},
                    "authorizerResultTtlInSeconds": 300,
                },
            }
        },
        "paths": {
            "/health": {"get": operation(False)},
            "/models/{name}": {"get": operation(True)},
            "/models/{name}/promote": {"post": operation(True)},
        },
    }
    return {
        "Resources": {
            "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "api", "DefinitionBody": body}},
            "Unauthorized": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "RestApiId": {"Ref": "RestAPI"},
                    "ResponseType": "UNAUTHORIZED",
                    "StatusCode": "401",
                    "ResponseTemplates": {"application/json": '{"error": "Unauthorized: send a token"}'},
                },
            },
            "Default4xx": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "RestApiId": {"Ref": "RestAPI"},
                    "ResponseType": "DEFAULT_4XX",
                    "ResponseTemplates": {"application/json": '{"error": $context.error.messageString}'},
                },
            },
            "Default5xx": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "RestApiId": {"Ref": "RestAPI"},
                    "ResponseType": "DEFAULT_5XX",
                    "ResponseTemplates": {"application/json": '{"error": $context.error.messageString}'},
                },
            },
        }
    }


class Functions:
    """The API's two functions, as the Lambda service would answer for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.api_answer: Invocation | None = None

    def __call__(self, name: str, event: bytes) -> Invocation:
        decoded = json.loads(event)
        self.events.append((name, decoded))
        if name == "authorizer":
            if decoded["authorizationToken"] == "Bearer good":
                arn_prefix = decoded["methodArn"].split("/", 1)[0]
                policy = {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "execute-api:Invoke",
                            "Resource": [f"{arn_prefix}/api/GET/models/*"],
                        }
                    ]
                }
                return Invocation(
                    request_id="a",
                    payload=json.dumps(
                        {"principalId": "alice", "policyDocument": policy, "context": {"scopes": "invoke"}}
                    ).encode(),
                )
            return Invocation(
                request_id="a", payload=error_payload("Exception", "Unauthorized"), function_error="Unhandled"
            )
        if self.api_answer is not None:
            return self.api_answer
        body = {"path": decoded["path"], "parameters": decoded["pathParameters"]}
        return Invocation(
            request_id="b",
            payload=json.dumps(
                {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
            ).encode(),
        )


@pytest.fixture
def functions() -> Functions:
    return Functions()


@pytest.fixture
def api() -> RestApi:
    names = {"APIHandler": "api", "Authorizer": "authorizer"}
    return RestApi.from_template(template(), names.__getitem__, "us-east-1")


def call(
    api: RestApi,
    functions: Functions,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], Any]:
    status, answer_headers, data = api.handle(functions, method, path, headers or [], body, "127.0.0.1")
    return status, dict(answer_headers), json.loads(data)


def test_an_open_route_reaches_the_function_with_a_proxy_event(api: RestApi, functions: Functions) -> None:
    status, _, body = call(api, functions, "GET", "/health?verbose=1&verbose=2")
    assert status == 200 and body["path"] == "/health"
    ((name, event),) = functions.events
    assert name == "api"
    assert event["resource"] == "/health" and event["httpMethod"] == "GET"
    assert event["multiValueQueryStringParameters"] == {"verbose": ["1", "2"]}
    assert event["queryStringParameters"] == {"verbose": "2"}
    assert event["requestContext"]["stage"] == "api"


def test_a_binary_body_travels_base64_as_api_gateway_sends_it(api: RestApi, functions: Functions) -> None:
    call(api, functions, "GET", "/health", [("Content-Type", "application/octet-stream")], b"\x00\xff")
    event = functions.events[-1][1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"


def test_no_token_is_a_401_without_calling_the_authorizer(api: RestApi, functions: Functions) -> None:
    status, _headers, body = call(api, functions, "GET", "/models/idcheck")
    assert status == 401 and body == {"error": "Unauthorized: send a token"}
    assert functions.events == []


def test_a_token_the_authorizer_refuses_is_a_401(api: RestApi, functions: Functions) -> None:
    status, _, _ = call(api, functions, "GET", "/models/idcheck", [("Authorization", "Bearer bad")])
    assert status == 401


def test_an_allowed_token_reaches_the_route_with_its_context_and_is_cached(api: RestApi, functions: Functions) -> None:
    for _ in range(3):
        status, _, body = call(api, functions, "GET", "/models/id%20check", [("Authorization", "Bearer good")])
        assert status == 200 and body["parameters"] == {"name": "id check"}
    authorizer_calls = [name for name, _ in functions.events if name == "authorizer"]
    assert authorizer_calls == ["authorizer"]  # one decision for three requests (TTL 300 s)
    event = functions.events[-1][1]
    assert event["requestContext"]["authorizer"] == {"principalId": "alice", "scopes": "invoke"}


def test_a_route_outside_the_tokens_policy_is_a_403(api: RestApi, functions: Functions) -> None:
    status, headers, body = call(api, functions, "POST", "/models/idcheck/promote", [("Authorization", "Bearer good")])
    assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert "error" in body


def test_an_unknown_route_is_api_gateways_missing_token_answer(api: RestApi, functions: Functions) -> None:
    status, _, body = call(api, functions, "GET", "/nowhere")
    assert status == 403 and body == {"error": "Missing Authentication Token"}


def test_a_function_error_is_a_502_naming_the_error_for_the_developer(api: RestApi, functions: Functions) -> None:
    functions.api_answer = Invocation(
        request_id="c",
        payload=error_payload("Runtime.ImportModuleError", "Unable to import module 'app': No module named 'x'"),
        function_error="Unhandled",
    )
    status, headers, body = call(api, functions, "GET", "/health")
    assert status == 502 and body == {"error": "Internal server error"}
    assert headers["X-Mmedeploy-Local-Gateway-Detail"].startswith("Runtime.ImportModuleError")


def test_a_malformed_proxy_answer_is_a_502(api: RestApi, functions: Functions) -> None:
    functions.api_answer = Invocation(request_id="d", payload=b'{"body": "no status"}')
    status, _, _ = call(api, functions, "GET", "/health")
    assert status == 502


# -- HTTP framing -------------------------------------------------------------------------------


@pytest.fixture
def server(api: RestApi, functions: Functions) -> Iterator[LocalRestApi]:
    running = LocalRestApi(api, functions, "127.0.0.1", 0, client_timeout_s=1.0)
    running.start()
    yield running
    running.stop()


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_a_kept_alive_connection_serves_request_after_request(server: LocalRestApi) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for _ in range(3):
            answer = _exchange(sock, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200")


def test_a_content_length_that_is_not_a_number_is_a_400(server: LocalRestApi) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        answer = _exchange(sock, b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400")


def test_a_malformed_request_line_is_a_400(server: LocalRestApi) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1 extra\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            assert chunk, f"connection closed after {answer!r}"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400")
        assert b'{"message": "Bad request version' in answer


def test_a_client_that_stops_mid_body_is_let_go(server: LocalRestApi) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        sock.settimeout(5)
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed the connection
        assert time.monotonic() - started < 4
