"""Waiting for what the stack does asynchronously (as AWS does): the tests' and benchmarks' one poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class TimedOut(AssertionError):
    """The probe never answered within the time given (an AssertionError: a test's failure)."""


def wait_for(probe: Callable[[], Any], timeout: float = 20.0, what: str = "condition", every: float = 0.1) -> Any:
    """Poll ``probe`` every ``every`` seconds until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise TimedOut(f"timed out after {timeout} s waiting for {what}")
