"""One inference request: route it, check its framing against the model, invoke the endpoint,
and answer as Triton would, with the version that served. Every request is metered per model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.adapters.model_runtime import ModelRuntime
from chalicelib.domain.errors import DomainError
from chalicelib.inference.kserve import InferAnswer, check_request, parse_request, served_response
from chalicelib.inference.model_metrics import ModelMetrics
from chalicelib.inference.routing import Route, Router


@dataclass(frozen=True, slots=True)
class Served:
    answer: InferAnswer
    route: Route


class InferenceProxy:
    def __init__(
        self,
        router: Router,
        runtime: ModelRuntime,
        metrics: ModelMetrics,
        status_of: Callable[[BaseException], int],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._router = router
        self._runtime = runtime
        self._metrics = metrics
        self._status_of = status_of  # the API's answer to an error (app.HTTP_STATUS), for the metrics
        self._clock = clock

    def infer(self, name: str, version: str | None, body: bytes, header_length: str | None) -> Served:
        started = self._clock()
        request = parse_request(body, header_length)  # size and framing first: no registry read for junk
        route = self._router.resolve(name, version)
        model_seconds: float | None = None
        status = 500
        try:
            check_request(request, route.model)
            invoked = self._runtime.invoke(route.endpoint, route.target_model, body, request.content_type)
            model_seconds = invoked.seconds
            answer = served_response(invoked.body, invoked.content_type, name, route.version)
            status = 200
            return Served(answer, route)
        except Exception as error:
            status = self._status_of(error)
            if isinstance(error, DomainError):
                error.served_by = (route.version, route.kind)
            raise
        finally:
            self._metrics.record(
                name,
                route.version,
                route.kind,
                status,
                (self._clock() - started) * 1000,
                None if model_seconds is None else model_seconds * 1000,
            )
