"""``mmedeploy completion SHELL`` and the global ``--debug``."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console

from mmedeploy import cli
from mmedeploy.admin_api import request


def test_the_completion_script_names_every_command_and_the_global_options() -> None:
    out = io.StringIO()
    assert cli.main(["completion", "bash"], out=Console(file=out)) == 0
    script = out.getvalue()
    assert script.startswith("#") and "_shtab_mmedeploy" in script
    for word in ("promote", "redeploy", "target", "--target", "--debug", "--no-validate"):
        assert word in script, word
    assert "#compdef mmedeploy" in _completion("zsh")


def _completion(shell: str) -> str:
    out = io.StringIO()
    cli.main(["completion", shell], out=Console(file=out))
    return out.getvalue()


def test_an_unknown_shell_is_a_usage_error() -> None:
    assert cli.main(["completion", "fish"], err=Console(file=io.StringIO())) == 2


@pytest.fixture
def quiet_loggers() -> Iterator[None]:
    names = ("urllib3.connectionpool", "mmedeploy")
    before = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield
    for name, (level, handlers) in before.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers


@pytest.mark.usefixtures("quiet_loggers")
def test_debug_logs_each_api_request_without_its_headers(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["--debug", "completion", "bash"], out=Console(file=io.StringIO()))
    with pytest.raises(Exception):  # noqa: B017 - nothing listens there: only the log line matters
        request("GET", "http://127.0.0.1:9/models", headers={"Authorization": "Bearer s3cr3t"}, timeout=1)
    logged = capsys.readouterr().err
    assert "GET http://127.0.0.1:9/models" in logged and "s3cr3t" not in logged


@pytest.mark.usefixtures("quiet_loggers")
def test_debug_shows_the_traceback_of_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("mmedeploy.cli.completion.cmd_completion", broken)  # bound as the parser is built
    monkeypatch.delenv("MMEDEPLOY_DEBUG", raising=False)
    # without --debug: one line asking for a bug report, exit 2
    err = io.StringIO()
    assert cli.main(["completion", "bash"], err=Console(file=err, width=200)) == 2
    assert "a bug" in err.getvalue() and "Traceback" not in err.getvalue()
    # with it: the exception itself, traceback and all
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["--debug", "completion", "bash"], err=Console(file=io.StringIO()))
