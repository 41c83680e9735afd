"""The local MME's front door: SageMaker Runtime's InvokeEndpoint over HTTP, so
``boto3.client("sagemaker-runtime")`` with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` pointing here
works unchanged.

``POST /endpoints/{name}/invocations`` with ``X-Amzn-SageMaker-Target-Model``: the endpoint is
looked up in the SageMaker control plane (the local stack's moto: endpoint -> config -> model ->
``ModelDataUrl`` prefix) and the TargetModel is fetched from under that prefix on first use.
Each endpoint gets its own Triton, started on its first invocation.
Also ``GET /ping`` and, local only, ``GET /endpoints/{name}/models`` (what is loaded).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socketserver
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mmedeploy.local.iam import emulator_client_config
from mmedeploy.local.mme.endpoint import EndpointSettings, LocalEndpoint
from mmedeploy.local.mme.errors import (
    MAX_BODY_BYTES,
    ContainerError,
    MmeError,
    ModelError,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationError,
)
from mmedeploy.local.mme.metrics import VARIANT, MetricsPublisher
from mmedeploy.local.mme.triton import TritonInstall

log = logging.getLogger("mmedeploy.local.mme")

INVOKE_PATH = re.compile(r"^/endpoints/(?P<endpoint>[^/]+)/invocations$")
MODELS_PATH = re.compile(r"^/endpoints/(?P<endpoint>[^/]+)/models$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's EndpointName pattern
# Triton model names travel in URL paths; SageMaker's sub-folder TargetModels are not supported here.
TARGET_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,1023}$")
DRAIN_LIMIT = 64 * 1024 * 1024  # read (and drop) an oversize body up to this, so the client sees the 413
RESOLVE_TTL_S = 10.0


@dataclass(frozen=True)
class MmeSettings:
    host: str
    port: int
    state_dir: Path
    region: str
    memory_budget_mb: int
    load_wait_s: float


@dataclass(frozen=True)
class ModelSource:
    bucket: str
    prefix: str


class EndpointDirectory:
    """Endpoint name -> S3 model prefix, from the SageMaker control plane (cached briefly)."""

    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self._cache: dict[str, tuple[float, ModelSource]] = {}

    def source(self, endpoint: str) -> ModelSource:
        cached = self._cache.get(endpoint)
        if cached and time.monotonic() - cached[0] < RESOLVE_TTL_S:
            return cached[1]
        try:
            config_name = self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
            variants = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
            model = self.sagemaker.describe_model(ModelName=variants[0]["ModelName"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ValidationException", "ValidationError", "ResourceNotFound"):
                raise ValidationError(f"Endpoint {endpoint} of account 123456789012 not found.") from None
            raise
        container = model.get("PrimaryContainer") or model["Containers"][0]
        if container.get("Mode") != "MultiModel":
            raise ValidationError(
                f"Endpoint {endpoint} is not a multi-model endpoint; the local MME serves only those."
            )
        url = urllib.parse.urlparse(container["ModelDataUrl"])
        prefix = url.path.lstrip("/")
        source = ModelSource(url.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/")
        self._cache[endpoint] = (time.monotonic(), source)
        return source


class LocalMme:
    """The endpoints and their Tritons; ``invoke`` is the whole InvokeEndpoint behaviour."""

    def __init__(self, settings: MmeSettings, session: Any) -> None:
        self.settings = settings
        self.install = TritonInstall()
        self.root = settings.state_dir / "mme"
        self.backends = self.install.prepare_backends(self.root / "backends")
        self.directory = EndpointDirectory(session.client("sagemaker"))
        self.s3 = session.client("s3")
        self.metrics = MetricsPublisher(session.client("cloudwatch", config=emulator_client_config()))
        self._endpoints: dict[str, LocalEndpoint] = {}
        self._lock = threading.Lock()
        self._closed = False

    def endpoint(self, name: str) -> LocalEndpoint:
        if not ENDPOINT_NAME.match(name):
            raise ValidationError(f"Endpoint name '{name[:100]}' is not a valid SageMaker endpoint name.")
        # every call: a deleted endpoint stops serving (the lookup is cached for RESOLVE_TTL_S)
        source = self.directory.source(name)
        endpoint = self._endpoints.get(name)
        if endpoint is not None:
            return endpoint
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("the local MME is stopping")
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                endpoint = LocalEndpoint(
                    name,
                    self.root / "endpoints" / name,
                    self.install,
                    self.backends,
                    fetch=lambda target, path: self._fetch(name, target, path),
                    settings=EndpointSettings(self.settings.memory_budget_mb << 20, self.settings.load_wait_s),
                    metric=self.metrics.record,
                )
                self._endpoints[name] = endpoint
        log.debug("endpoint %s models from s3://%s/%s", name, source.bucket, source.prefix)
        return endpoint

    def _fetch(self, endpoint: str, target: str, destination: Path) -> None:
        source = self.directory.source(endpoint)
        key = source.prefix + target
        try:
            body = self.s3.get_object(Bucket=source.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ContainerError(
                    404,
                    f"Failed to download model data (bucket: {source.bucket}, key: {key}). Please ensure that "
                    "there is an object located at the URL.",
                ) from None
            raise
        with destination.open("wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)

    def invoke(self, endpoint_name: str, target: str | None, body: bytes, content_type: str) -> tuple[bytes, str]:
        if not target:
            raise ValidationError("TargetModel header is required when invoking a multi-model endpoint.")
        if not TARGET_MODEL.match(target):
            raise ValidationError(
                f"TargetModel '{target[:100]}' is not supported by the local MME: use a file name of "
                "letters, digits, '.', '_' and '-' directly under the endpoint's S3 prefix."
            )
        endpoint = self.endpoint(endpoint_name)
        try:
            result = endpoint.invoke(target, body, content_type)
        except ContainerError as exc:
            raise ModelError(exc.status, exc.message, endpoint_name, self.settings.region) from None
        return result.body, result.content_type

    def loaded(self, endpoint_name: str) -> list[dict[str, Any]]:
        endpoint = self._endpoints.get(endpoint_name)
        if endpoint is None:
            return []
        return [
            {
                "target_model": m.target,
                "footprint_mib": round(m.footprint_bytes / (1 << 20), 1),
                "in_flight": m.in_flight,
            }
            for m in endpoint.cache.loaded()
        ]

    def tritons(self) -> dict[str, dict[str, Any]]:
        """Each endpoint's Triton: pid, HTTP port (for debugging and benchmarks) and restarts."""
        return {
            name: {"pid": e.process.pid, "port": e.process.port, "restarts": e.process.restarts}
            for name, e in self._endpoints.items()
        }

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            endpoints = list(self._endpoints.values())
            self._endpoints.clear()
        for endpoint in endpoints:
            endpoint.stop()
        self.metrics.stop()


Response = tuple[int, dict[str, str], bytes]
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    411: "Length Required",
    413: "Payload Too Large",
    424: "Failed Dependency",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Handler(socketserver.StreamRequestHandler):
    """HTTP/1.1 with keep-alive, Content-Length bodies only (what botocore sends).

    Hand-rolled rather than http.server's handler: its header parsing was most of the proxy's
    added latency, and the issue's target is <= 1.3x Triton's own p50.
    """

    disable_nagle_algorithm = True  # Nagle + the client's delayed ACK would add ~40 ms a response
    timeout = 300  # idle keep-alive connections are closed after this
    server: MmeHttpServer

    def handle(self) -> None:
        try:
            while self._one_request():
                pass
        except OSError:
            pass  # the client went away or idled out

    def _one_request(self) -> bool:
        line = self.rfile.readline(65537)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            self._write((400, {"Content-Type": "application/json"}, b'{"message": "malformed request line"}'), False)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        while True:
            header = self.rfile.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._write(_error(ValidationError("send the body with a Content-Length"), 411), False)
            return False
        raw_length = headers.get("content-length", "0")
        # ASCII digits only (no sign, no spaces): a length we cannot trust ends the connection
        if not (raw_length.isascii() and raw_length.isdigit()):
            self._write(_error(ValidationError(f"invalid Content-Length: {raw_length[:40]}")), False)
            return False
        length = int(raw_length)
        if headers.get("expect", "").lower() == "100-continue":
            if length > MAX_BODY_BYTES:  # refuse before the client sends the body
                self._write(_error(PayloadTooLarge(length)), False)
                return False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        path = target.split("?", 1)[0]
        if method == "POST":
            response, keep_alive = self._post(path, headers, length, keep_alive)
        else:
            keep_alive = self._drain(length) and keep_alive
            response = self._get(path) if method == "GET" else _error(ValidationError(f"{method} not supported"), 400)
        self._write(response, keep_alive)
        return keep_alive

    def _post(self, path: str, headers: dict[str, str], length: int, keep_alive: bool) -> tuple[Response, bool]:
        match = INVOKE_PATH.match(path)
        if match is None or length > MAX_BODY_BYTES:
            drained = self._drain(length)
            error = PayloadTooLarge(length) if match else ValidationError(f"unknown path {path}")
            return _error(error, 404 if match is None else None), keep_alive and drained
        body = self.rfile.read(length) if length else b""
        if len(body) != length:  # the client closed mid-body: nothing to answer, nothing to invoke
            return _error(ValidationError("incomplete request body")), False
        endpoint = urllib.parse.unquote(match["endpoint"])
        try:
            data, content_type = self.server.mme.invoke(
                endpoint,
                headers.get("x-amzn-sagemaker-target-model"),
                body,
                headers.get("content-type") or "application/json",
            )
        except MmeError as exc:
            return _error(exc), keep_alive
        except Exception as exc:
            log.exception("local MME: invoking %s failed", endpoint)
            return _error(MmeError(f"internal failure: {exc}")), keep_alive
        return (200, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": VARIANT}, data), keep_alive

    def _get(self, path: str) -> Response:
        if path == "/ping":
            return _json(200, {"status": "healthy", "tritons": self.server.mme.tritons()})
        match = MODELS_PATH.match(path)
        if match:
            return _json(200, {"models": self.server.mme.loaded(urllib.parse.unquote(match["endpoint"]))})
        return _json(404, {"message": f"unknown path {path}"})

    def _drain(self, length: int) -> bool:
        """Read and drop a body the MME refuses, so the client sees the answer; False if too big."""
        if length > DRAIN_LIMIT:
            return False
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return False
            length -= len(chunk)
        return True

    def _write(self, response: Response, keep_alive: bool) -> None:
        status, headers, body = response
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if not keep_alive:
            lines.append("Connection: close")
        # one write, one segment
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _error(error: MmeError, status: int | None = None) -> Response:
    return status or error.status, error.headers(), error.body()


def _json(status: int, payload: dict[str, Any]) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


class MmeHttpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mme: LocalMme) -> None:
        self.mme = mme
        super().__init__((mme.settings.host, mme.settings.port), _Handler)


def start_mme(settings: MmeSettings, session: Any) -> tuple[LocalMme, MmeHttpServer]:
    """Start the front door; endpoints start their Triton on first use."""
    mme = LocalMme(settings, session)
    server = MmeHttpServer(mme)
    threading.Thread(target=server.serve_forever, daemon=True, name="local-mme").start()
    return mme, server
