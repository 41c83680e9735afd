"""The CLI's exit codes in one table: each command's help is rendered from it, and main maps what
a command raises through it (never a traceback); the one history feed the following commands use."""

from __future__ import annotations

import argparse

import pytest
from rich.console import Console

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import HistoryEntry, ModelVersion
from mmedeploy import cli
from mmedeploy.cli.errors import EXIT_CODES, CommandError, Exit, exit_for, target_option
from mmedeploy.follow import HistoryFeed
from mmedeploy.status_view import history_line
from tests.unit.test_cli_decisions import version_at


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_s_help_lists_its_exit_codes_from_the_table() -> None:
    parsers = subcommands()
    assert set(EXIT_CODES) <= set(parsers)
    for command, codes in EXIT_CODES.items():
        epilog = parsers[command].epilog or ""
        listed = epilog[epilog.index("exit codes:") :].splitlines()[1:]
        assert [int(line.split()[0]) for line in listed if not line.startswith("     ")] == [int(c) for c in codes]
        for meaning in codes.values():
            assert " ".join(meaning.split()) in " ".join(epilog.split()), (command, meaning)


def test_exit_for_maps_command_errors_and_the_target_errors() -> None:
    from mmedeploy.admin_api import ApiNotConfigured, ApiUnreachable
    from mmedeploy.target import TargetUnavailable

    args = argparse.Namespace(state_dir=None)
    assert exit_for(CommandError("mmedeploy x: no", Exit.NOT_FOUND), "mmedeploy x", args) == (
        Exit.NOT_FOUND,
        "mmedeploy x: no",
    )
    assert exit_for(TargetUnavailable("no stack"), "mmedeploy x", args) == (Exit.USAGE, "mmedeploy x: no stack")
    assert exit_for(ApiNotConfigured("no URL"), "mmedeploy x", args) == (Exit.USAGE, "mmedeploy x: no URL")
    code, message = exit_for(ApiUnreachable("refused"), "mmedeploy x", args) or (None, "")
    assert code is Exit.USAGE and message.startswith("mmedeploy x: refused; the local stack may not be running")
    assert exit_for(KeyboardInterrupt(), "mmedeploy x", args) == (Exit.INTERRUPTED, "mmedeploy: interrupted")
    assert exit_for(ValueError("bug"), "mmedeploy x", args) is None


def test_an_unexpected_error_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmedeploy.cli import pipeline

    def broken(*args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.delenv("MMEDEPLOY_DEBUG", raising=False)
    monkeypatch.setattr(pipeline, "cmd_validate", broken)
    assert cli.main(["validate", "x_1.tar.gz"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "internal error (RuntimeError: boom)" in err and "MMEDEPLOY_DEBUG=1" in err and "Traceback" not in err


# -- the history feed -------------------------------------------------------------------------------
def at(revision: int) -> ModelVersion:
    """The version at ``revision``, with one history entry per revision."""
    statuses = [Status.RECEIVED, Status.VALIDATING, Status.VALIDATED, Status.WARMING, Status.STAGED]
    record = version_at(statuses[revision - 1], revision)
    record.history = [
        HistoryEntry(at=f"2025-01-02T03:04:0{r}.000Z", status=statuses[r - 1], actor="a", reason=f"r{r}", revision=r)
        for r in range(1, revision + 1)
    ]
    return record


def shown(after: int | None, reads: list[ModelVersion | None]) -> list[str]:
    console = Console(record=True, width=200, color_system=None)
    feed = HistoryFeed(console, lambda entry, elapsed: history_line(entry, lead=f"{elapsed:g} s  "), after=after)
    for elapsed, read in enumerate(reads):
        feed(read, float(elapsed))
    return console.export_text().splitlines()


def test_the_history_feed_prints_each_entry_once_in_order() -> None:
    assert shown(0, [None, at(2), at(2), at(4)]) == [
        "1 s  2025-01-02 03:04:01.000  RECEIVED  a  r1",
        "1 s  2025-01-02 03:04:02.000  VALIDATING  a  r2",
        "3 s  2025-01-02 03:04:03.000  VALIDATED  a  r3",
        "3 s  2025-01-02 03:04:04.000  WARMING  a  r4",
    ]


def test_the_history_feed_after_a_revision_and_from_an_unknown_one() -> None:
    assert [line.split()[4] for line in shown(3, [at(3), at(5)])] == ["WARMING", "STAGED"]
    assert [line.split()[4] for line in shown(None, [at(3), at(4)])] == ["VALIDATED", "WARMING"]


def test_history_line_options_for_the_demo() -> None:
    console = Console(record=True, width=200, color_system=None)
    console.print(history_line(at(1).history[0], lead="    +0.25 s  ", at=False, status_width=17))
    assert console.export_text().rstrip("\n") == "    +0.25 s  RECEIVED           a  r1"


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["--target", "prod", "status", "fraud"], " --target prod"),
        (["status", "fraud", "--target", "prod"], " --target prod"),
        (["status", "fraud", "--state-dir", "/tmp/other"], " --state-dir /tmp/other"),
        (["status", "fraud"], ""),
    ],
)
def test_a_hint_names_the_target_the_command_acted_on(argv: list[str], shown: str) -> None:
    assert target_option(cli.build_parser().parse_args(argv)) == shown
