"""The request path: ModelRuntime on a real sagemaker-runtime client with botocore's Stubber
(SageMaker's errors as the API answers them), and InferenceProxy end to end over a fake runtime
and a Router on an in-memory registry, with the per-model EMF line it prints."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chalicelib.adapters.model_runtime import Invoked, ModelRuntime
from chalicelib.domain.errors import (
    DomainError,
    InvalidRequest,
    ModelFailed,
    ModelNotReady,
    ModelTimedOut,
    NotFound,
    RequestTooLarge,
)
from chalicelib.domain.lifecycle import Status
from chalicelib.inference.kserve import JSON, MAX_BODY_BYTES, OCTET_STREAM, SAGEMAKER_BINARY
from chalicelib.inference.model_metrics import ModelMetrics
from chalicelib.inference.proxy import InferenceProxy
from chalicelib.inference.routing import CANARY, PINNED, PRODUCTION, Router
from tests.unit.http_answers import http_status
from tests.unit.test_inference_routing import PROD, STAGING, Chances, FakeClock, FakeRoutes

S = Status
ENDPOINT, TARGET = "mmedeploy-production", "fraud_2.tar.gz"
REQUEST = json.dumps({"inputs": [{"name": "IN_2", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()
ANSWER = {"model_name": TARGET, "model_version": "1", "outputs": [{"name": "OUT", "datatype": "FP32", "shape": [1, 1]}]}


class Steps:
    """A perf_counter that moves ``step`` seconds on each reading."""

    def __init__(self, step: float, start: float = 10.0) -> None:
        self._now, self._step = start, step

    def __call__(self) -> float:
        now, self._now = self._now, self._now + self._step
        return now


# -- ModelRuntime --------------------------------------------------------------------------------
@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    sagemaker = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(sagemaker) as stubber:
        yield sagemaker, stubber
        stubber.assert_no_pending_responses()


def expected(content_type: str = JSON, body: bytes = REQUEST) -> dict[str, Any]:
    return {"EndpointName": ENDPOINT, "TargetModel": TARGET, "ContentType": content_type, "Body": body}


def invoke(client: tuple[Any, Stubber], body: bytes = REQUEST, content_type: str = JSON) -> Invoked:
    return ModelRuntime(client[0], clock=Steps(0.125)).invoke(ENDPOINT, TARGET, body, content_type)


def refusal(client: tuple[Any, Stubber], code: str, status: int, **fields: Any) -> DomainError:
    """The error the runtime raises when SageMaker answers ``code``."""
    client[1].add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=f"{code} from SageMaker",
        http_status_code=status,
        modeled_fields=fields or None,
        expected_params=expected(),
    )
    with pytest.raises(DomainError) as raised:
        invoke(client)
    return raised.value


def test_an_answer_comes_back_with_its_content_type_and_time(client: tuple[Any, Stubber]) -> None:
    # GIVEN a binary request, and an endpoint that answers it
    body = REQUEST + b"\x00\x01\x02"
    content_type = f"{SAGEMAKER_BINARY};json-header-size={len(REQUEST)}"
    data = json.dumps(ANSWER).encode()
    client[1].add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"},
        expected(content_type, body),
    )
    # WHEN it is invoked / THEN the body was sent as given, and the answer comes back as sent
    invoked = invoke(client, body, content_type)
    assert invoked == Invoked(data, "application/json", 0.125)


def test_model_not_ready_is_503_with_retry_after(client: tuple[Any, Stubber]) -> None:
    error = refusal(client, "ModelNotReadyException", 429)
    assert isinstance(error, ModelNotReady)
    assert (http_status(error), error.retry_after_s) == (503, 5)
    assert TARGET in error.message and "loading" in error.message


def test_a_model_error_is_502_with_tritons_message(client: tuple[Any, Stubber]) -> None:
    triton = "inference request batch-size must be <= 4 for 'fraud_2.tar.gz'"
    error = refusal(
        client,
        "ModelError",
        424,
        OriginalStatusCode=400,
        OriginalMessage=triton,
        LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
    )
    assert isinstance(error, ModelFailed)
    assert http_status(error) == 502
    assert triton in error.message and "(400)" in error.message


def test_a_model_error_without_original_fields_uses_sagemakers_message(client: tuple[Any, Stubber]) -> None:
    error = refusal(client, "ModelError", 424)
    assert isinstance(error, ModelFailed)
    assert "no status" in error.message and "ModelError from SageMaker" in error.message


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400), ("ServiceUnavailable", 503)])
def test_throttling_is_503_with_a_short_retry_after(client: tuple[Any, Stubber], code: str, status: int) -> None:
    error = refusal(client, code, status)
    assert isinstance(error, ModelNotReady)
    assert (http_status(error), error.retry_after_s) == (503, 1)
    assert code in error.message


def test_another_refusal_is_502_naming_it(client: tuple[Any, Stubber]) -> None:
    error = refusal(client, "ValidationError", 400)
    assert isinstance(error, ModelFailed)
    assert "ValidationError" in error.message and "ValidationError from SageMaker" in error.message


class FailingClient:
    """A sagemaker-runtime client whose call raises ``error`` (a transport failure), with the
    real client's exception classes."""

    def __init__(self, error: Exception, on_read: bool = False) -> None:
        real = boto3.client(
            "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.exceptions = real.exceptions
        self._error, self._on_read = error, on_read

    def invoke_endpoint(self, **_: Any) -> dict[str, Any]:
        if not self._on_read:
            raise self._error
        error = self._error

        class Body:
            def read(self) -> bytes:
                raise error

        return {"Body": Body(), "ContentType": JSON}


URL = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/mmedeploy-production/invocations"


@pytest.mark.parametrize("on_read", [False, True])
@pytest.mark.parametrize("error", [ReadTimeoutError(endpoint_url=URL), ConnectTimeoutError(endpoint_url=URL)])
def test_a_timeout_is_504(error: Exception, on_read: bool) -> None:
    with pytest.raises(ModelTimedOut) as raised:
        ModelRuntime(FailingClient(error, on_read)).invoke(ENDPOINT, TARGET, REQUEST, JSON)
    assert http_status(raised.value) == 504
    assert ENDPOINT in raised.value.message


def test_an_unreachable_endpoint_is_502() -> None:
    with pytest.raises(ModelFailed, match="could not reach mmedeploy-production"):
        ModelRuntime(FailingClient(EndpointConnectionError(endpoint_url=URL))).invoke(ENDPOINT, TARGET, REQUEST, JSON)


# -- InferenceProxy ------------------------------------------------------------------------------
class FakeRuntime:
    """ModelRuntime's interface: records each call, answers ``answer`` or raises ``error``."""

    def __init__(self, answer: Invoked | None = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, bytes, str]] = []
        self._answer = answer or Invoked(json.dumps(ANSWER).encode(), JSON, 0.04)
        self._error = error

    def invoke(self, endpoint: str, target_model: str, body: bytes, content_type: str) -> Invoked:
        self.calls.append((endpoint, target_model, body, content_type))
        if self._error is not None:
            raise self._error
        return self._answer


@pytest.fixture
def source() -> FakeRoutes:
    fake = FakeRoutes()
    fake.add("2", S.PRODUCTION)
    fake.add("3", S.AWAITING_APPROVAL, input_name="IN_2")  # the same signature
    fake.serve("2")
    return fake


def proxy(source: FakeRoutes, runtime: FakeRuntime, chance: Chances | None = None) -> InferenceProxy:
    router = Router(source, STAGING, PROD, clock=FakeClock(), chance=chance or Chances([]))
    # perf_counter readings: the start, then the end 0.25 s later
    return InferenceProxy(router, runtime, ModelMetrics(), http_status, clock=Steps(0.25))  # type: ignore[arg-type]


def emf_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents printed since the last call."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def one_metric_line(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    lines = emf_lines(capsys)
    assert len(lines) == 1, lines
    line = lines[0]
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "mmedeploy"
    assert ["Model", "Version"] in [sorted(d) for d in directive["Dimensions"]]
    assert {m["Name"] for m in directive["Metrics"]} >= {"Invocations", "Errors", "ClientErrors", "Latency"}
    return line


def first(value: Any) -> Any:
    """An EMF value (Powertools writes each as a list)."""
    return value[0] if isinstance(value, list) else value


def test_a_json_request_is_forwarded_as_sent_and_answered_as_the_model(
    source: FakeRoutes, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN production version 2 / WHEN a JSON request is made for the model
    runtime = FakeRuntime()
    served = proxy(source, runtime).infer("fraud", None, REQUEST, None)
    # THEN the body went to the production endpoint's TargetModel byte-identical, as JSON
    assert runtime.calls == [(PROD, "fraud_2.tar.gz", REQUEST, JSON)]
    # AND the answer names the model and version as the client knows them
    assert json.loads(served.answer.body) == {**ANSWER, "model_name": "fraud", "model_version": "2"}
    assert (served.answer.content_type, served.route.kind) == (JSON, PRODUCTION)
    # AND one EMF line was printed for the model and version: one invocation, no error
    line = one_metric_line(capsys)
    assert (line["Model"], line["Version"], line["route"], line["status"]) == ("fraud", "2", PRODUCTION, 200)
    assert [first(line[k]) for k in ("Invocations", "Errors", "ClientErrors")] == [1, 0, 0]
    assert first(line["Latency"]) == pytest.approx(250.0)
    assert first(line["ModelLatency"]) == pytest.approx(40.0)


def test_a_binary_request_is_forwarded_with_its_header_size_and_its_answer_tail_kept(
    source: FakeRoutes, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a binary request (16 bytes of FP32 after its header) and a binary answer
    header = json.dumps(
        {"inputs": [{"name": "IN_2", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}
    ).encode()
    body = header + bytes(range(16))
    answer_header = json.dumps({**ANSWER, "outputs": [{"name": "OUT", "parameters": {"binary_data_size": 4}}]}).encode()
    answer_tail = b"\x00\x00\x80\x3f"
    runtime = FakeRuntime(
        Invoked(answer_header + answer_tail, f"{SAGEMAKER_BINARY};json-header-size={len(answer_header)}", 0.01)
    )
    # WHEN it is pinned to the staged version 3
    served = proxy(source, runtime).infer("fraud", "3", body, str(len(header)))
    # THEN it went byte-identical to the staging endpoint with SageMaker's binary content type
    assert runtime.calls == [(STAGING, "fraud_3.tar.gz", body, f"{SAGEMAKER_BINARY};json-header-size={len(header)}")]
    # AND the answer's header is renamed, its new length given, its tail byte-identical
    answer = served.answer
    assert answer.content_type == OCTET_STREAM and answer.header_length is not None
    assert json.loads(answer.body[: answer.header_length])["model_name"] == "fraud"
    assert json.loads(answer.body[: answer.header_length])["model_version"] == "3"
    assert answer.body[answer.header_length :] == answer_tail
    line = one_metric_line(capsys)
    assert (line["Version"], line["route"], first(line["Errors"])) == ("3", PINNED, 0)


def test_a_canary_request_is_metered_under_the_canary_version(
    source: FakeRoutes, capsys: pytest.CaptureFixture[str]
) -> None:
    source.start_canary("3", 0.5)
    runtime = FakeRuntime()
    subject = proxy(source, runtime, Chances([0.1, 0.9]))
    subject.infer("fraud", None, REQUEST, None)
    subject.infer("fraud", None, REQUEST, None)
    assert [call[:2] for call in runtime.calls] == [(STAGING, "fraud_3.tar.gz"), (PROD, "fraud_2.tar.gz")]
    assert [(line["Version"], line["route"]) for line in emf_lines(capsys)] == [("3", CANARY), ("2", PRODUCTION)]


def test_a_request_the_model_would_refuse_is_a_client_error_without_invoking(
    source: FakeRoutes, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a request for an input version 2 does not have
    body = json.dumps({"inputs": [{"name": "PIXELS", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}).encode()
    runtime = FakeRuntime()
    # WHEN it is made / THEN 400, no InvokeEndpoint, and a ClientErrors metric for version 2
    with pytest.raises(InvalidRequest, match="no input 'PIXELS'"):
        proxy(source, runtime).infer("fraud", None, body, None)
    assert runtime.calls == []
    line = one_metric_line(capsys)
    assert (line["Version"], line["status"]) == ("2", 400)
    assert [first(line[k]) for k in ("Invocations", "Errors", "ClientErrors")] == [1, 0, 1]
    assert "Latency" in line and "ModelLatency" not in line


@pytest.mark.parametrize(
    "error",
    [
        ModelFailed("the model failed (500): CUDA error"),
        ModelNotReady("loading", 5),
        ModelTimedOut("slow"),
        RuntimeError("a bug"),
    ],
)
def test_an_upstream_failure_is_an_error_metric_and_raised(
    source: FakeRoutes, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    with pytest.raises(type(error)) as raised:
        proxy(source, FakeRuntime(error=error)).infer("fraud", None, REQUEST, None)
    line = one_metric_line(capsys)
    status = http_status(error)
    assert line["status"] == status
    assert [first(line[k]) for k in ("Invocations", "Errors", "ClientErrors")] == [1, 1, 0]
    # the answer names the version that failed, as a success names the one that served
    if isinstance(raised.value, DomainError):
        assert raised.value.served_by == (line["Version"], line["route"])


def test_an_oversized_body_is_refused_before_any_read_or_call(
    source: FakeRoutes, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = FakeRuntime()
    with pytest.raises(RequestTooLarge):
        proxy(source, runtime).infer("fraud", None, b"{" + b" " * MAX_BODY_BYTES, None)
    assert (source.reads, runtime.calls, emf_lines(capsys)) == (0, [], [])


def test_a_malformed_body_is_refused_before_any_read(source: FakeRoutes, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = FakeRuntime()
    with pytest.raises(InvalidRequest):
        proxy(source, runtime).infer("fraud", None, b"not json", None)
    assert (source.reads, runtime.calls, emf_lines(capsys)) == (0, [], [])


def test_an_unknown_model_is_not_found_and_not_metered(source: FakeRoutes, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = FakeRuntime()
    with pytest.raises(NotFound, match="unknown model nosuch"):
        proxy(source, runtime).infer("nosuch", None, REQUEST, None)
    assert (runtime.calls, emf_lines(capsys)) == ([], [])
