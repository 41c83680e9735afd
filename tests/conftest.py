from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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


# What a test must not take from, or leave in, the user's own setup: targets and tokens
# (MMEDEPLOY_CONFIG_DIR), the record of running local stacks (MMEDEPLOY_USER_STATE_DIR), the OS
# keyring, the target and tokens of the shell running the tests.
_USER_SETUP = ("MMEDEPLOY_TARGET", "MMEDEPLOY_API_TOKEN", "MMEDEPLOY_ADMIN_TOKEN")


@pytest.fixture(scope="session", autouse=True)
def _apart_from_the_users_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test (and every process it starts, stacks included) has its own config and user
    state directories and no keyring: set in os.environ before any session fixture starts one."""
    names = ("MMEDEPLOY_CONFIG_DIR", "MMEDEPLOY_USER_STATE_DIR", "PYTHON_KEYRING_BACKEND", *_USER_SETUP)
    saved = {name: os.environ.get(name) for name in names}
    os.environ["MMEDEPLOY_CONFIG_DIR"] = str(tmp_path_factory.mktemp("user-config"))
    os.environ["MMEDEPLOY_USER_STATE_DIR"] = str(tmp_path_factory.mktemp("user-state"))
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    for name in _USER_SETUP:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
