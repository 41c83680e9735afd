"""The local Lambda service on real processes: AWS's runtime client (awslambdaric) polling the
local Runtime API, one invocation per environment, Lambda's error shapes and Timeout."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmedeploy.local.lambdas.function import FunctionConfig
from mmedeploy.local.lambdas.logs import FunctionLogs
from mmedeploy.local.lambdas.runtime_api import Offered, RuntimeApi
from mmedeploy.local.lambdas.sandbox import Launch
from mmedeploy.local.lambdas.service import LOCAL_RUNTIME, LambdaService, ensure_runtime_client

ROOT = Path(__file__).resolve().parents[2]

HANDLERS = """
import os, time

import_started = time.time()
if os.environ.get("FAIL_AT_IMPORT"):
    raise RuntimeError("broken at import")


def echo(event, context):
    return {"event": event, "pid": os.getpid(), "request_id": context.aws_request_id,
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "home": os.environ.get("HOME"),
            "remaining_ms": context.get_remaining_time_in_millis(), "path": os.environ["PATH"],
            "key": os.environ.get("AWS_ACCESS_KEY_ID"), "custom": os.environ.get("CUSTOM")}


def slow(event, context):
    time.sleep(event["seconds"])
    return {"pid": os.getpid()}


class Refused(Exception):
    pass


def fails(event, context):
    raise Refused("this input can never succeed")


def exits(event, context):
    os._exit(3)


def hog(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    return {"size": len(block)}
"""


class _MemoryLogs:
    """CloudWatch Logs stand-in: what the service ships, in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

        class exceptions:
            ResourceAlreadyExistsException = KeyError

        self.exceptions = exceptions

    def create_log_group(self, **kwargs: Any) -> None:
        pass

    def create_log_stream(self, **kwargs: Any) -> None:
        pass

    def put_log_events(self, logGroupName: str, logStreamName: str, logEvents: list[dict[str, Any]]) -> None:
        self.events += [(logGroupName, logStreamName, e["message"]) for e in logEvents]


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handlers.py", HANDLERS)
    return buffer.getvalue()


CODE = _code()


def config(handler: str, timeout_s: int = 10, memory_mb: int = 128, **environment: str) -> FunctionConfig:
    return FunctionConfig(
        name=f"fn-{handler.replace('.', '-')}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:fn-{handler.replace('.', '-')}",
        handler=handler,
        runtime=LOCAL_RUNTIME,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        environment={"CUSTOM": "from-the-template", **environment},
        role_arn="arn:aws:iam::123456789012:role/test",
        code_sha256="sha-of-the-test-code",
    )


@pytest.fixture(scope="module")
def runtime_dir() -> Path:
    return ensure_runtime_client(ROOT / "build" / ".runtime" / LOCAL_RUNTIME)


@pytest.fixture
def cloudwatch() -> _MemoryLogs:
    return _MemoryLogs()


@pytest.fixture
def service(tmp_path: Path, runtime_dir: Path, cloudwatch: _MemoryLogs) -> Iterator[LambdaService]:
    launch = Launch(
        python=getattr(sys, "_base_executable", sys.executable),
        runtime_dir=runtime_dir,
        platform_environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
        region="us-east-1",
    )
    logs = FunctionLogs(tmp_path / "logs", lambda: cloudwatch)
    credentials = {"AWS_ACCESS_KEY_ID": "role-key", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    running = LambdaService(tmp_path / "code", launch, lambda function: credentials, logs, max_environments=2)
    yield running
    running.stop()


def answer(service: LambdaService, function: FunctionConfig, event: Any) -> tuple[Any, str | None]:
    result = service.invoke(function, lambda: CODE, json.dumps(event).encode())
    return json.loads(result.payload), result.function_error


def test_a_warm_environment_is_reused_and_sees_only_what_lambda_sets(service: LambdaService) -> None:
    # GIVEN a function, WHEN it is invoked twice in a row
    first, error = answer(service, config("handlers.echo"), {"n": 1})
    second, _ = answer(service, config("handlers.echo"), {"n": 2})
    # THEN one process served both, each with its own request id, with the function's environment
    assert error is None
    assert first["event"] == {"n": 1} and second["event"] == {"n": 2}
    assert first["pid"] == second["pid"]
    assert first["request_id"] != second["request_id"]
    assert first["function"] == "fn-handlers-echo"
    assert first["custom"] == "from-the-template"
    assert first["key"] == "role-key"
    assert first["home"] is None  # nothing of the developer's shell
    assert 0 < first["remaining_ms"] <= 10_000


def test_an_exception_comes_back_in_lambdas_error_shape(service: LambdaService) -> None:
    payload, error = answer(service, config("handlers.fails"), {})
    assert error == "Unhandled"
    assert payload["errorType"] == "Refused"
    assert payload["errorMessage"] == "this input can never succeed"


@pytest.mark.parametrize(
    ("handler", "environment", "error_type", "message"),
    [
        ("missing_module.handler", {}, "Runtime.ImportModuleError", "Unable to import module 'missing_module'"),
        ("handlers.nothing_here", {}, "Runtime.HandlerNotFound", "Handler 'nothing_here' missing"),
        ("handlers.echo", {"FAIL_AT_IMPORT": "1"}, "RuntimeError", "broken at import"),
    ],
)
def test_init_errors_come_back_as_lambda_reports_them(
    service: LambdaService, handler: str, environment: dict[str, str], error_type: str, message: str
) -> None:
    payload, error = answer(service, config(handler, **environment), {})
    assert error == "Unhandled"
    assert payload["errorType"] == error_type
    assert message in payload["errorMessage"]


def test_the_timeout_kills_the_process_and_the_next_invocation_gets_a_fresh_one(service: LambdaService) -> None:
    slow = config("handlers.slow", timeout_s=1)
    warm, _ = answer(service, slow, {"seconds": 0})
    payload, error = answer(service, slow, {"seconds": 5})
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    again, error = answer(service, slow, {"seconds": 0})
    assert error is None and again["pid"] != warm["pid"]


def test_a_runtime_that_exits_fails_the_invocation_with_runtime_exit_error(service: LambdaService) -> None:
    payload, error = answer(service, config("handlers.exits"), {})
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]


def test_concurrent_invocations_run_in_separate_environments_up_to_the_bound(service: LambdaService) -> None:
    slow = config("handlers.slow")
    pids: list[int] = []

    def call() -> None:
        pids.append(answer(service, slow, {"seconds": 1})[0]["pid"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # the bound is 2: three concurrent calls were served by two environments, none by one twice at once
    assert len(pids) == 3
    assert len(set(pids)) == 2
    assert service.environments()["fn-handlers-slow"]["environments"] == 2


def test_logs_carry_lambdas_platform_lines_and_warn_past_memory_size(
    service: LambdaService, cloudwatch: _MemoryLogs, tmp_path: Path
) -> None:
    hog = config("handlers.hog", memory_mb=128)
    payload, error = answer(service, hog, {"mb": 200})
    assert error is None and payload["size"] == 200 * 1024 * 1024
    service.stop()  # flushes the logs
    text = (tmp_path / "logs" / "fn-handlers-hog.log").read_text()
    assert "START RequestId:" in text and "END RequestId:" in text
    assert "Memory Size: 128 MB" in text and "Init Duration:" in text
    assert "over its MemorySize 128 MB" in text
    groups = {group for group, _, _ in cloudwatch.events}
    assert groups == {"/aws/lambda/fn-handlers-hog"}
    assert any(message.startswith("REPORT RequestId:") for _, _, message in cloudwatch.events)


def test_a_function_of_another_runtime_is_refused_clearly(service: LambdaService) -> None:
    other = config("handlers.echo").model_copy(update={"runtime": "python3.11"})
    payload, error = answer(service, other, {})
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.InvalidRuntime"
    assert LOCAL_RUNTIME in payload["errorMessage"]


# -- the Runtime API's own protocol, with a raw HTTP client in place of awslambdaric ---------------


def _runtime_request(
    sock: socket.socket, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    head = [f"{method} {path} HTTP/1.1", "Host: runtime", f"Content-Length: {len(body)}"]
    head += [f"{key}: {value}" for key, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(65536)
    head_bytes, _, rest = reply.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head_bytes.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head_bytes.split(b" ")[1]), rest


def test_the_runtime_api_refuses_a_foreign_request_id_and_takes_the_right_answer() -> None:
    api = RuntimeApi()
    host, port = api.address.split(":")
    results: list[Any] = []
    exchanging = threading.Thread(
        target=lambda: results.append(
            api.exchange(Offered("req-1", b'{"n": 1}', {"Lambda-Runtime-Aws-Request-Id": "req-1"}), 5, 5)
        )
    )
    exchanging.start()
    with socket.create_connection((host, int(port))) as runtime:
        # WHEN the runtime fetches, answers for another request id, then for its own
        status, event = _runtime_request(runtime, "GET", "/2018-06-01/runtime/invocation/next")
        foreign, _ = _runtime_request(runtime, "POST", "/2018-06-01/runtime/invocation/req-9/response", b"{}")
        accepted, _ = _runtime_request(runtime, "POST", "/2018-06-01/runtime/invocation/req-1/response", b'"done"')
    exchanging.join(5)
    api.close()
    # THEN the event was delivered, the foreign id refused as Lambda does, and the right answer taken
    assert (status, json.loads(event)) == (200, {"n": 1})
    assert (foreign, accepted) == (400, 202)
    assert results[0].answer.payload == b'"done"' and results[0].answer.error_type is None


def test_the_runtime_api_answers_a_malformed_request_with_a_400() -> None:
    api = RuntimeApi()
    host, port = api.address.split(":")
    results: list[Any] = []
    exchanging = threading.Thread(target=lambda: results.append(api.exchange(Offered("r", b"{}", {}), 5, 5)))
    exchanging.start()
    with socket.create_connection((host, int(port))) as runtime:
        runtime.sendall(b"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
        reply = runtime.recv(65536)
    api.process_ended()  # and an exchange waiting on a runtime that is gone returns at once
    exchanging.join(5)
    api.close()
    assert reply.startswith(b"HTTP/1.1 400 ") and b"Content-Length is not a number" in reply
    assert not exchanging.is_alive() and results[0].answer is None and results[0].fetched_at is None
