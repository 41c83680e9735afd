"""EventBridge schedules, run locally: moto keeps a rule's ``ScheduleExpression`` but never fires
it. Here each enabled ``rate(...)`` rule of the default bus sends AWS's "Scheduled Event" to its
targets at its rate, through the same delivery as the other rules (moto_seams.Deliverer).
``cron(...)`` expressions are not run (the template has none); ``run_all`` fires every schedule
once, which the stack does as it starts with kept state.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any

from mmedeploy.local.moto_seams import ClientFactory, Deliverer

log = logging.getLogger("mmedeploy.local.schedules")

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """``rate(5 minutes)`` -> 300.0; None for what is not a rate expression."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_arn: str, region: str, account: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Schedules:
    def __init__(self, client: ClientFactory, region: str, account: str, tick_s: float = 1.0) -> None:
        self._client = client
        self._region = region
        self._account = account
        self._deliver = Deliverer(client)
        self._tick_s = tick_s
        self._next_due: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="local-schedules")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def run_all(self) -> int:
        """Fire every schedule now; the number of rules fired."""
        fired = 0
        for rule, _rate in self._rules():
            self._fire(rule)
            fired += 1
        return fired

    def _loop(self) -> None:
        while not self._stopping.wait(self._tick_s):
            try:
                now = time.monotonic()
                for rule, rate in self._rules():
                    due = self._next_due.setdefault(rule["Arn"], now + rate)
                    if now >= due:
                        self._next_due[rule["Arn"]] = now + rate
                        self._fire(rule)
            except Exception as exc:  # noqa: BLE001 - a failed tick must not end the schedules
                log.warning("running the schedules failed: %s", exc)

    def _rules(self) -> list[tuple[dict[str, Any], float]]:
        events = self._client("events", self._region)
        found = []
        for rule in events.list_rules().get("Rules", []):
            expression = rule.get("ScheduleExpression")
            if not expression or rule.get("State") != "ENABLED":
                continue
            rate = rate_seconds(expression)
            if rate is None:
                log.warning("schedule %s (%s) is not run locally: only rate(...) is", rule["Name"], expression)
                continue
            found.append((rule, rate))
        return found

    def _fire(self, rule: dict[str, Any]) -> None:
        event = scheduled_event(rule["Arn"], self._region, self._account)
        targets = self._client("events", self._region).list_targets_by_rule(Rule=rule["Name"])["Targets"]
        for target in targets:
            self._deliver.deliver(target, event)
