from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.build_examples import build  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def example_binaries() -> None:
    """The examples' generated parts (ONNX model, env archive) exist for every test."""
    build()
