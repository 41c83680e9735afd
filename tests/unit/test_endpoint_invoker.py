"""EndpointInvoker on a real sagemaker-runtime client with botocore's Stubber (real exception
classes, real modeled error fields) and a fake clock: MME's loading answers, retried without
sleeping for real; ModelError mapped by Triton's original status."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chalicelib.adapters.endpoint_invoker import (
    EndpointInvoker,
    InvocationError,
    ModelArtifactNotFound,
    ModelInvocationFailed,
    ModelLoadFailed,
    ModelLoadTimedOut,
    ModelOutOfMemory,
)

ENDPOINT = "mmedeploy-staging"
TARGET = "fraud_1.tar.gz"
REQUEST = {"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
ANSWER = {"model_name": TARGET, "outputs": [{"name": "OUT", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}
CALL_S = 0.1  # how long each InvokeEndpoint call takes on the fake clock


class FakeTime:
    """A monotonic clock that only moves when slept on or called through."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class TimedRuntime:
    """The stubbed client, with each call taking CALL_S on the fake clock."""

    def __init__(self, client: Any, time: FakeTime, call_s: float) -> None:
        self._client, self._time, self._call_s = client, time, call_s
        self.exceptions = client.exceptions
        self.calls = 0

    def invoke_endpoint(self, **request: Any) -> Any:
        self.calls += 1
        self._time.now += self._call_s
        return self._client.invoke_endpoint(**request)


@pytest.fixture
def runtime() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()  # every queued answer was asked for, no more


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def invoker(
    runtime: tuple[Any, Stubber], time: FakeTime, load_timeout_s: float = 360.0, call_s: float = CALL_S
) -> tuple[EndpointInvoker, TimedRuntime]:
    timed = TimedRuntime(runtime[0], time, call_s)
    return EndpointInvoker(timed, ENDPOINT, load_timeout_s, sleep=time.sleep, clock=time.clock), timed


def expected_request() -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "TargetModel": TARGET,
        "ContentType": "application/json",
        "Accept": "application/json",
        "Body": json.dumps(REQUEST).encode(),
    }


def answer(stubber: Stubber, body: dict[str, Any] = ANSWER) -> None:
    data = json.dumps(body).encode()
    stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"},
        expected_request(),
    )


def not_ready(stubber: Stubber, times: int = 1) -> None:
    for _ in range(times):
        stubber.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelNotReadyException",
            service_message=f"Model {TARGET} is not ready yet; it is being loaded",
            http_status_code=429,
            expected_params=expected_request(),
        )


def model_error(stubber: Stubber, original_status: int | None, original_message: str) -> None:
    fields: dict[str, Any] = {"OriginalMessage": original_message}
    if original_status is not None:
        fields["OriginalStatusCode"] = original_status
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f'Received client error ({original_status}) from primary with message "{original_message}"',
        http_status_code=424,
        modeled_fields=fields,
    )


def test_an_answer_on_the_first_call(runtime: tuple[Any, Stubber], time: FakeTime) -> None:
    # GIVEN a loaded model / WHEN it is invoked
    answer(runtime[1])
    subject, _ = invoker(runtime, time)
    result = subject.invoke(TARGET, REQUEST)
    # THEN the answer's body and call time come back, with no waiting
    assert result.body == ANSWER
    assert result.seconds == pytest.approx(CALL_S)
    assert (result.waited_seconds, result.not_ready_answers, time.sleeps) == (0, 0, [])


def test_model_not_ready_is_retried_until_the_model_answers(runtime: tuple[Any, Stubber], time: FakeTime) -> None:
    # GIVEN an endpoint that is loading the model for two calls
    not_ready(runtime[1], 2)
    answer(runtime[1])
    subject, timed = invoker(runtime, time)
    # WHEN the model is invoked
    result = subject.invoke(TARGET, REQUEST)
    # THEN it answers on the third call; the wait and the not-ready answers are counted
    assert result.body == ANSWER
    assert (timed.calls, result.not_ready_answers) == (3, 2)
    assert time.sleeps == [0.25, 0.5]
    assert result.waited_seconds == pytest.approx(2 * CALL_S + 0.25 + 0.5)
    assert result.seconds == pytest.approx(CALL_S)  # the answered call alone


def test_the_backoff_doubles_and_is_capped(runtime: tuple[Any, Stubber], time: FakeTime) -> None:
    # GIVEN a model that takes a long (but allowed) time to load
    not_ready(runtime[1], 10)
    answer(runtime[1])
    subject, _ = invoker(runtime, time, load_timeout_s=360.0, call_s=0.0)
    # WHEN it is invoked
    result = subject.invoke(TARGET, REQUEST)
    # THEN the pauses grow from 0.25 s and never exceed 10 s
    assert time.sleeps == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
    assert result.not_ready_answers == 10
    assert result.waited_seconds == pytest.approx(sum(time.sleeps))


def test_it_gives_up_at_the_load_timeout(runtime: tuple[Any, Stubber], time: FakeTime) -> None:
    # GIVEN a model that never finishes loading, and a 5 s load timeout
    not_ready(runtime[1], 6)
    subject, timed = invoker(runtime, time, load_timeout_s=5.0, call_s=0.0)
    # WHEN it is invoked
    with pytest.raises(ModelLoadTimedOut) as raised:
        subject.invoke(TARGET, REQUEST)
    # THEN it stops after waiting exactly the timeout (the last pause is cut short), not longer
    assert time.sleeps == [0.25, 0.5, 1.0, 2.0, 1.25]
    assert sum(time.sleeps) == pytest.approx(5.0)
    assert timed.calls == 6
    assert TARGET in str(raised.value) and ENDPOINT in str(raised.value) and "5 s" in str(raised.value)
    assert isinstance(raised.value.__cause__, timed.exceptions.ModelNotReadyException)


def test_slow_calls_count_toward_the_load_timeout(runtime: tuple[Any, Stubber], time: FakeTime) -> None:
    # GIVEN not-ready answers that each take 3 s to come back, and a 5 s load timeout
    not_ready(runtime[1], 2)
    subject, timed = invoker(runtime, time, load_timeout_s=5.0, call_s=3.0)
    # WHEN it is invoked / THEN it gives up once the calls themselves used the time
    with pytest.raises(ModelLoadTimedOut):
        subject.invoke(TARGET, REQUEST)
    assert timed.calls == 2 and time.sleeps == [0.25]


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (400, ModelLoadFailed, "could not load or run"),
        (404, ModelArtifactNotFound, "found no artifact"),
        (507, ModelOutOfMemory, "no memory"),
        (500, ModelInvocationFailed, "failed (500)"),
    ],
)
def test_model_errors_are_mapped_by_the_original_status(
    runtime: tuple[Any, Stubber], time: FakeTime, status: int, error: type[InvocationError], words: str
) -> None:
    # GIVEN an endpoint answering ModelError with Triton's status and message
    message = f"load failed for model '{TARGET}': triton said {status}"
    model_error(runtime[1], status, message)
    subject, timed = invoker(runtime, time)
    # WHEN the model is invoked
    with pytest.raises(error) as raised:
        subject.invoke(TARGET, REQUEST)
    # THEN the error says what happened, keeps Triton's message, and is not retried
    text = str(raised.value)
    assert words in text and message in text and TARGET in text and f"({status})" in text
    assert type(raised.value) is error and isinstance(raised.value, InvocationError)
    assert (timed.calls, time.sleeps) == (1, [])


def test_a_model_error_without_an_original_status_is_an_invocation_failure(
    runtime: tuple[Any, Stubber], time: FakeTime
) -> None:
    model_error(runtime[1], None, "something odd")
    subject, _ = invoker(runtime, time)
    with pytest.raises(ModelInvocationFailed, match=r"no status.*something odd"):
        subject.invoke(TARGET, REQUEST)


def test_a_model_error_after_loading_is_not_a_timeout(runtime: tuple[Any, Stubber], time: FakeTime) -> None:
    # GIVEN a model that loads for a while and then fails to load
    not_ready(runtime[1], 3)
    model_error(runtime[1], 400, "model.py raised ImportError")
    subject, timed = invoker(runtime, time)
    # WHEN it is invoked / THEN the load failure comes back as such
    with pytest.raises(ModelLoadFailed, match="ImportError"):
        subject.invoke(TARGET, REQUEST)
    assert timed.calls == 4 and len(time.sleeps) == 3


def test_other_client_errors_are_invocation_failures_with_code_and_message(
    runtime: tuple[Any, Stubber], time: FakeTime
) -> None:
    runtime[1].add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message=f"Endpoint {ENDPOINT} of account 123456789012 not found.",
        http_status_code=400,
    )
    subject, timed = invoker(runtime, time)
    with pytest.raises(ModelInvocationFailed) as raised:
        subject.invoke(TARGET, REQUEST)
    assert "ValidationError" in str(raised.value) and "not found" in str(raised.value)
    assert (timed.calls, time.sleeps) == (1, [])
