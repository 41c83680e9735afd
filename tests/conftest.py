from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.build_examples import build  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """The examples' generated parts (ONNX model, env archive) exist for every test: built once, by
    the process that runs the session (with pytest-xdist, by the controller before its workers
    start, so no worker reads a file another is rewriting)."""
    if not hasattr(config, "workerinput"):
        build()
