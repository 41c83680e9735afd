"""The local MME on a real Triton, through boto3's sagemaker-runtime client, as handlers use it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton_http
from botocore.exceptions import ClientError

from examples.build_examples import MODELS, reference_pipeline
from mmedeploy.local.stack import StackInfo
from mmedeploy.packaging import package
from testkit.mme import (
    create_mme_endpoint,
    idcheck_body,
    invoke_when_ready,
    outputs,
    runtime_client,
    textstats_body,
    triton_pids,
)
from testkit.tarballs import PYTHON_MODEL, idcheck_repo, pack, python_config, single_python_repo
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "mme-tests"
RAW = np.random.default_rng(7).normal(size=(3, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def endpoint(aws: Callable[[str], Any]) -> str:
    return create_mme_endpoint(aws, "mme-tests", BUCKET)


@pytest.fixture(scope="module")
def runtime(local_stack: StackInfo) -> Any:
    return runtime_client(local_stack)


@pytest.fixture(scope="module")
def upload(aws: Callable[[str], Any], endpoint: str) -> Callable[[str, bytes], str]:
    s3 = aws("s3")

    def put(target: str, data: bytes) -> str:
        s3.put_object(Bucket=BUCKET, Key=f"models/{target}", Body=data)
        return target

    return put


def idcheck_v2() -> dict[str, bytes | None]:
    """The example ensemble with the same member names but other decision labels."""
    files = idcheck_repo("2")
    post = files["idcheck_postprocessing/1/model.py"]
    assert isinstance(post, bytes)
    files["idcheck_postprocessing/1/model.py"] = re.sub(rb'b"([a-z_]+)"', rb'b"v2:\1"', post)
    return files


def test_example_ensemble_returns_the_reference_numbers(runtime: Any, endpoint: str, upload: Any) -> None:
    target = upload("idcheck_1.tar.gz", pack(idcheck_repo()))
    response, _ = invoke_when_ready(
        runtime, EndpointName=endpoint, TargetModel=target, Body=idcheck_body(RAW), ContentType="application/json"
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    got = outputs(response)
    probabilities, decisions = reference_pipeline(RAW)
    np.testing.assert_allclose(np.array(got["PROBABILITIES"]).reshape(3, 4), probabilities, atol=1e-5)
    assert got["DECISION"] == decisions


def test_binary_tensor_extension_passes_through(runtime: Any, endpoint: str, upload: Any) -> None:
    target = upload("idcheck_1.tar.gz", pack(idcheck_repo()))
    tensor = triton_http.InferInput("RAW_FEATURES", list(RAW.shape), "FP32")
    tensor.set_data_from_numpy(RAW, binary_data=True)
    wanted = [triton_http.InferRequestedOutput("PROBABILITIES", binary_data=True)]
    body, header_size = triton_http.InferenceServerClient.generate_request_body([tensor], outputs=wanted)
    assert header_size is not None
    response, _ = invoke_when_ready(
        runtime,
        EndpointName=endpoint,
        TargetModel=target,
        Body=body,
        ContentType=f"application/vnd.sagemaker-triton.binary+json;json-header-size={header_size}",
    )
    content_type = response["ContentType"]
    assert content_type.startswith("application/vnd.sagemaker-triton.binary+json;json-header-size=")
    result = triton_http.InferenceServerClient.parse_response_body(
        response["Body"].read(), header_length=int(content_type.rsplit("=", 1)[1])
    )
    np.testing.assert_allclose(result.as_numpy("PROBABILITIES"), reference_pipeline(RAW)[0], atol=1e-5)


def test_two_tarballs_whose_ensembles_share_member_names_both_serve(runtime: Any, endpoint: str, upload: Any) -> None:
    first = upload("idcheck_1.tar.gz", pack(idcheck_repo()))
    second = upload("idcheck_2.tar.gz", pack(idcheck_v2()))
    decisions = reference_pipeline(RAW)[1]
    for _ in range(2):  # interleaved, both loaded at once
        for target, prefix in ((first, ""), (second, "v2:")):
            response, _ = invoke_when_ready(
                runtime,
                EndpointName=endpoint,
                TargetModel=target,
                Body=idcheck_body(RAW),
                ContentType="application/json",
            )
            assert outputs(response)["DECISION"] == [prefix + d for d in decisions]


@pytest.fixture(scope="module")
def textstats(tmp_path_factory: pytest.TempPathFactory, upload: Any) -> str:
    """The textstats example as a user packages it."""
    result = package(MODELS / "textstats", "textstats", "1.0", tmp_path_factory.mktemp("dist"))
    return str(upload(result.path.name, result.path.read_bytes()))


def test_a_python_model_with_string_tensors(runtime: Any, endpoint: str, textstats: str) -> None:
    target = textstats
    response, _ = invoke_when_ready(
        runtime, EndpointName=endpoint, TargetModel=target, Body=textstats_body("three short words")
    )
    assert outputs(response) == {"CHARACTERS": [17], "WORDS": [3]}


def model_error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int | None, str]:
    response = excinfo.value.response
    return response["Error"]["Code"], response.get("OriginalStatusCode"), response.get("OriginalMessage", "")


def test_unknown_target_model_is_a_404_model_error(runtime: Any, endpoint: str) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel="absent_1.tar.gz", Body=b"{}")
    code, status, message = model_error(raised)
    assert (code, status) == ("ModelError", 404)
    assert "models/absent_1.tar.gz" in message
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_a_model_that_fails_to_load_is_a_400_model_error_every_time(runtime: Any, endpoint: str, upload: Any) -> None:
    files = single_python_repo("broken")
    files["broken/1/model.py"] = PYTHON_MODEL.replace(
        b"    def execute",
        b"    def initialize(self, args):\n        raise ValueError('weights missing')\n\n    def execute",
    )
    target = upload("broken_1.tar.gz", pack(files))
    for _ in range(2):  # not remembered as loaded: the second call tries again and fails the same way
        with pytest.raises(runtime.exceptions.ModelError) as raised:
            invoke_when_ready(runtime, EndpointName=endpoint, TargetModel=target, Body=b"{}")
        code, status, message = model_error(raised)
        assert (code, status) == ("ModelError", 400)
        assert "weights missing" in message


def test_a_tensorrt_plan_is_reported_as_not_runnable_locally(runtime: Any, endpoint: str, upload: Any) -> None:
    files = {
        "model_version.txt": b"1\n",
        "engine/config.pbtxt": python_config("engine").replace(b'backend: "python"', b'platform: "tensorrt_plan"'),
        "engine/1/model.plan": b"\x00" * 64,
    }
    target = upload("engine_1.tar.gz", pack(files))
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel=target, Body=b"{}")
    code, status, message = model_error(raised)
    assert (code, status) == ("ModelError", 400)
    assert "not runnable locally" in message


def test_a_torchscript_model_loads_through_the_torch_adapter_or_says_what_is_missing(
    runtime: Any, endpoint: str, upload: Any
) -> None:
    files = {
        "model_version.txt": b"1\n",
        "scorer/config.pbtxt": python_config("scorer").replace(b'backend: "python"', b'platform: "pytorch_libtorch"'),
        "scorer/1/model.pt": b"PK\x03\x04 not really torchscript",
    }
    target = upload("scorer_1.tar.gz", pack(files))
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        invoke_when_ready(runtime, EndpointName=endpoint, TargetModel=target, Body=b"{}")
    code, status, message = model_error(raised)
    assert (code, status) == ("ModelError", 400)
    try:
        import torch  # noqa: F401
    except ImportError:  # the stack's Python has no torch: the adapter says how to get it
        assert "PyTorch models need torch" in message and "pip install torch" in message
    else:  # torch present: the adapter reached torch.jit.load, which refuses the bogus file
        assert "PytorchStreamReader" in message or "zip" in message.lower()


def test_a_body_over_6_mb_is_refused_before_the_model_and_the_connection_stays_usable(
    runtime: Any, endpoint: str, upload: Any
) -> None:
    target = upload("idcheck_1.tar.gz", pack(idcheck_repo()))
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel=target, Body=b" " * (6 * 1024 * 1024 + 1))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "HTTP content length exceeded 6291456 bytes" in str(raised.value)
    response, _ = invoke_when_ready(runtime, EndpointName=endpoint, TargetModel=target, Body=idcheck_body(RAW))
    assert "DECISION" in outputs(response)


def test_a_missing_target_model_or_endpoint_is_a_validation_error(runtime: Any, endpoint: str) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="TargetModel header is required"):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"{}")
    with pytest.raises(runtime.exceptions.ValidationError, match=r"Endpoint no-such-endpoint .* not found"):
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", TargetModel="idcheck_1.tar.gz", Body=b"{}")


def test_a_triton_error_on_a_bad_request_is_a_400_model_error(runtime: Any, endpoint: str, upload: Any) -> None:
    target = upload("idcheck_1.tar.gz", pack(idcheck_repo()))
    invoke_when_ready(runtime, EndpointName=endpoint, TargetModel=target, Body=idcheck_body(RAW))
    bad = json.dumps({"inputs": [{"name": "NOPE", "datatype": "FP32", "shape": [1, 16], "data": [0.0] * 16}]})
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=endpoint, TargetModel=target, Body=bad)
    code, status, message = model_error(raised)
    assert (code, status) == ("ModelError", 400)
    assert "NOPE" in message


def test_the_templates_staging_endpoint_serves_from_the_staging_bucket(runtime: Any, local_stack: StackInfo) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName=local_stack.staging_endpoint, TargetModel="absent_9.tar.gz", Body=b"{}")
    assert f"bucket: {local_stack.staging_bucket}" in model_error(raised)[2]


def test_mme_metrics_reach_the_local_cloudwatch(
    runtime: Any, endpoint: str, upload: Any, aws: Callable[[str], Any]
) -> None:
    target = upload("idcheck_1.tar.gz", pack(idcheck_repo()))
    for _ in range(2):
        invoke_when_ready(runtime, EndpointName=endpoint, TargetModel=target, Body=idcheck_body(RAW))
    cloudwatch = aws("cloudwatch")
    wanted = {"ModelCacheHit", "ModelLoadingWaitTime", "LoadedModelCount", "ModelLoadingTime"}

    def published() -> set[str]:
        metrics = cloudwatch.list_metrics(
            Namespace="AWS/SageMaker", Dimensions=[{"Name": "EndpointName", "Value": endpoint}]
        )["Metrics"]
        names = {m["MetricName"] for m in metrics}
        return names if wanted <= names else set()

    wait_for(published, timeout=15, what=f"metrics {sorted(wanted)}")


def test_a_dead_triton_is_restarted_and_models_load_again(
    runtime: Any, endpoint: str, textstats: str, local_stack: StackInfo, local_stack_dir: Path
) -> None:
    request = {"EndpointName": endpoint, "TargetModel": textstats, "Body": textstats_body("still here")}
    invoke_when_ready(runtime, **request)
    pid = triton_pids(local_stack)[endpoint]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: triton_pids(local_stack).get(endpoint, pid) != pid, timeout=20, what="a new tritonserver")

    def served() -> bool:
        try:
            response, _ = invoke_when_ready(runtime, **request)
        except runtime.exceptions.ServiceUnavailable:
            return False
        return bool(outputs(response) == {"CHARACTERS": [10], "WORDS": [2]})

    wait_for(served, timeout=30, what="the model to serve again")
    log = (local_stack_dir / "stack.log").read_text()
    assert f"tritonserver for {endpoint} exited with code" in log and "restarting it" in log


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "\u00b2"])
def test_an_untrustworthy_content_length_is_refused_and_the_connection_closed(
    local_stack: StackInfo, endpoint: str, length: str
) -> None:
    url = urllib.parse.urlparse(local_stack.mme_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):  # the server closes: recv returns b"" instead of hanging
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"invalid Content-Length" in answer
