"""One local multi-model endpoint: its own Triton (as each SageMaker endpoint has its own
instances), its model cache, and the invoke path in the shape of SageMaker's Triton front end
(content types, error statuses)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chalicelib.inference.api_contract import HEADER_LENGTH
from mmedeploy.local.mme.errors import ContainerError, ServiceUnavailable
from mmedeploy.local.mme.model_cache import Fetch, ModelCache
from mmedeploy.local.mme.staging import StagedModel, stage_tarball
from mmedeploy.local.mme.triton import TritonInstall, TritonProcess, TritonRefused, error_text

log = logging.getLogger("mmedeploy.local.mme")

BINARY_MIME = "application/vnd.sagemaker-triton.binary+json;json-header-size="
OOM_MARKERS = ("out of memory", "failed to allocate memory", "cuda_error_out_of_memory")


@dataclass(frozen=True)
class EndpointSettings:
    memory_budget_bytes: int
    load_wait_s: float


@dataclass(frozen=True)
class InvokeResult:
    body: bytes
    content_type: str


class TritonHost:
    """The cache's ``ModelHost``: stages into this endpoint's repository and (un)loads in Triton."""

    def __init__(self, process: TritonProcess, repository: Path) -> None:
        self.process, self.repository = process, repository

    def stage(self, tarball: Path, target: str) -> StagedModel:
        return stage_tarball(tarball, target, self.repository)

    def load(self, staged: StagedModel) -> None:
        if not self.process.wait_live():
            raise ContainerError(503, "the model server is restarting; retry")
        try:
            self.process.client.load(staged.target)  # the ensemble's members load with it
        except TritonRefused as exc:
            self.unload(staged)
            raise ContainerError(_status(exc.message), exc.message) from None

    def unload(self, staged: StagedModel) -> None:
        for name in staged.names:
            try:
                self.process.client.unload(name)
            except TritonRefused as exc:
                log.debug("unload %s: %s", name, exc.message)  # never loaded: nothing to do
            shutil.rmtree(self.repository / name, ignore_errors=True)


class LocalEndpoint:
    def __init__(
        self,
        name: str,
        directory: Path,
        install: TritonInstall,
        backends: Path,
        fetch: Fetch,
        settings: EndpointSettings,
        metric: Callable[[str, str, float, str], None],
    ) -> None:
        self.name = name
        self.repository = directory / "repository"
        for path in (self.repository, directory / "downloads", directory / "extracting"):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        self.metric: Callable[[str, float, str], None] = lambda metric_name, value, unit: metric(
            name, metric_name, value, unit
        )
        self.process = TritonProcess(install, self.repository, backends, directory / "triton.log", self._restarted)
        self.cache = ModelCache(
            TritonHost(self.process, self.repository),
            fetch,
            directory / "downloads",
            settings.memory_budget_bytes,
            settings.load_wait_s,
            metric=self.metric,
            endpoint=name,
        )
        self.process.start()
        log.info(
            "local MME: endpoint %s served by tritonserver pid %s (log %s)",
            name,
            self.process.pid,
            directory / "triton.log",
        )

    def _restarted(self) -> None:
        self.cache.forget_all()
        for child in self.repository.iterdir():
            shutil.rmtree(child, ignore_errors=True)

    def invoke(self, target: str, body: bytes, content_type: str) -> InvokeResult:
        headers = {"Content-Type": "application/json"}
        if content_type.startswith(BINARY_MIME):
            headers = {
                "Content-Type": "application/octet-stream",
                HEADER_LENGTH: str(_header_size(content_type, len(body))),
            }
        with self.cache.use(target):
            started = time.monotonic()
            try:
                status, response_headers, data = self.process.client.request(
                    "POST", f"/v2/models/{target}/infer", body, headers, timeout=60.0
                )
            except TimeoutError:
                raise ContainerError(
                    504, "Your invocation timed out while waiting for a response from container primary (60 s)."
                ) from None
            except OSError:
                raise ServiceUnavailable(f"the model server of endpoint {self.name} is restarting; retry") from None
            self.metric("ModelLatency", (time.monotonic() - started) * 1e6, "Microseconds")
        self.metric("Invocations", 1.0, "Count")
        if status != 200:
            message = error_text(data)
            raise ContainerError(_status(message), message)
        size = response_headers.get(HEADER_LENGTH.lower())
        return InvokeResult(data, f"{BINARY_MIME}{size}" if size is not None else "application/json")

    def stop(self) -> None:
        self.cache.close()
        self.process.stop()


def _header_size(content_type: str, content_length: int) -> int:
    """As sagemaker_server.cc's GetInferenceHeaderLength: a number within the body's length."""
    raw = content_type[len(BINARY_MIME) :].split(";", 1)[0].strip()
    try:
        size = int(raw)
    except ValueError:
        raise ContainerError(400, f"Unable to parse inference header size, got: {raw}") from None
    if not 0 <= size <= content_length:
        raise ContainerError(400, f"inference header size should be in range (0, {content_length}), got: {raw}")
    return size


def _status(message: str) -> int:
    """SageMaker's front end answers 400 for any Triton error, 507 for out-of-memory ones."""
    return 507 if any(marker in message.lower() for marker in OOM_MARKERS) else 400
