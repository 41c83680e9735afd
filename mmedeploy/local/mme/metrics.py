"""CloudWatch metrics of the local MME, published to the local CloudWatch (moto) as SageMaker
publishes them for a multi-model endpoint: namespace ``AWS/SageMaker``, dimensions
``EndpointName`` and ``VariantName``. Recording is a queue append, so the invoke path never
waits on CloudWatch; a thread sends batches once a second.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("mmedeploy.local.mme")

NAMESPACE = "AWS/SageMaker"
VARIANT = "AllTraffic"
FLUSH_INTERVAL_S = 1.0
BATCH = 500  # PutMetricData takes up to 1000 datums


class MetricsPublisher:
    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="mme-metrics")
        self._thread.start()

    def record(self, endpoint: str, name: str, value: float, unit: str) -> None:
        self._queue.put(
            {
                "MetricName": name,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": VARIANT},
                ],
                "Timestamp": datetime.now(UTC),
                "Value": value,
                "Unit": unit,
            }
        )

    def flush(self) -> None:
        datums: list[dict[str, Any]] = []
        while True:
            try:
                datums.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for start in range(0, len(datums), BATCH):
            try:
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=datums[start : start + BATCH])
            except Exception as exc:  # noqa: BLE001 - metrics must never break serving
                log.warning("local MME: publishing %d metric(s) failed: %s", len(datums), exc)

    def _run(self) -> None:
        while not self._stopping.wait(FLUSH_INTERVAL_S):
            self.flush()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self.flush()
