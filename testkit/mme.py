"""Helpers for tests and benchmarks against the local MME: a test endpoint in the SageMaker control plane, the
boto3 sagemaker-runtime client pointed at the MME, and KServe v2 requests for the examples."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import numpy as np
from botocore.config import Config

from mmedeploy.local.stack import StackInfo


def create_mme_endpoint(aws: Callable[[str], Any], name: str, bucket: str) -> str:
    """A multi-model endpoint serving ``s3://bucket/models/``, created through the control plane
    as CloudFormation would. Returns the endpoint name."""
    aws("s3").create_bucket(Bucket=bucket)
    sagemaker = aws("sagemaker")
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/mme-tests",
        PrimaryContainer={"Image": "triton:local", "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/models/"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name


def runtime_client(info: StackInfo) -> Any:
    """What every handler gets: boto3's own client, only the endpoint URL differs from AWS."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=info.mme_url,
        region_name=info.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 1}),
    )


def idcheck_body(raw: np.ndarray) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {"name": "RAW_FEATURES", "datatype": "FP32", "shape": list(raw.shape), "data": raw.ravel().tolist()}
            ]
        }
    ).encode()


def textstats_body(text: str) -> bytes:
    return json.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1, 1], "data": [text]}]}).encode()


def outputs(response: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(response["Body"].read())
    return {o["name"]: o["data"] for o in body["outputs"]}


def invoke_when_ready(runtime: Any, timeout: float = 60.0, **kwargs: Any) -> tuple[dict[str, Any], int]:
    """Invoke, retrying ModelNotReadyException as the pipeline does; returns (response, retries)."""
    deadline = time.monotonic() + timeout
    retries = 0
    while True:
        try:
            return runtime.invoke_endpoint(**kwargs), retries
        except runtime.exceptions.ModelNotReadyException:
            if time.monotonic() > deadline:
                raise
            retries += 1
            time.sleep(0.1)


def loaded_models(info: StackInfo, endpoint: str) -> list[str]:
    """The local MME's own view (GET /endpoints/{name}/models, local only)."""
    with urllib.request.urlopen(f"{info.mme_url}/endpoints/{endpoint}/models", timeout=10) as response:
        return [m["target_model"] for m in json.loads(response.read())["models"]]


def triton_pids(info: StackInfo) -> dict[str, int]:
    with urllib.request.urlopen(f"{info.mme_url}/ping", timeout=10) as response:
        return {name: triton["pid"] for name, triton in json.loads(response.read())["tritons"].items()}
