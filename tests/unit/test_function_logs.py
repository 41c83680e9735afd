"""``mmedeploy logs``: resolving a function from what a person types, ``--since``, merging a log
group's streams in time order, ``--follow``'s polling without repeats, and the command's output and
exit codes (Lambda and CloudWatch Logs in-process with moto; no real waiting)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mmedeploy import cli
from mmedeploy import function_logs as fl
from mmedeploy.target import DeploymentTarget

STAGE_FUNCTIONS = [
    "mmedeploy-dev-APIHandler",
    "mmedeploy-dev-BearerToken",
    "mmedeploy-dev-OnModelUploaded",
    "mmedeploy-dev-record-outcome",
    "mmedeploy-dev-record-promotion-outcome",
    "mmedeploy-dev-validate",
    "mmedeploy-dev-warm-production",
    "mmedeploy-dev-warm-staging",
]
STREAM_A = "2026/11/22/[$LATEST]2b7238d25d054d6bbd6c1cc580084493"
STREAM_B = "2026/11/22/[$LATEST]9f00aa11bb22cc33dd44ee55ff667788"
GROUP = "/aws/lambda/mmedeploy-dev-validate"


@pytest.fixture
def session() -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")


@pytest.fixture
def logs(session: boto3.session.Session) -> Any:
    return session.client("logs")


def create_functions(session: boto3.session.Session, names: list[str]) -> None:
    role = session.client("iam").create_role(
        RoleName="unit-lambda",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ]
            }
        ),
    )["Role"]["Arn"]
    client = session.client("lambda")
    for name in names:
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        )


def put(logs: Any, stream: str, *events: tuple[int, str], group: str = GROUP) -> None:
    """Ship events as the local stack (or Lambda) does: create the group and stream if needed."""
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": t, "message": m} for t, m in events]
    )


def now_ms() -> int:
    return int(time.time() * 1000)


# -- --since ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), (" 5m ", 300)])
def test_since_takes_a_whole_number_and_a_unit(text: str, seconds: int) -> None:
    assert fl.parse_since(text) == seconds


@pytest.mark.parametrize("text", ["10", "m", "1.5h", "-5m", "10 m", "1w", "10M", "", "0s", "0d"])
def test_since_refuses_anything_else_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"30s|more than 0"):
        fl.parse_since(text)


def test_the_start_time_is_since_before_the_clock_in_milliseconds() -> None:
    assert fl.start_time_ms(600, clock=lambda: 1_800_000_000.25) == 1_799_999_400_250


# -- which function --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "function"),
    [
        ("mmedeploy-dev-validate", "mmedeploy-dev-validate"),  # the full name
        ("validate", "mmedeploy-dev-validate"),
        ("APIHandler", "mmedeploy-dev-APIHandler"),
        ("apihandler", "mmedeploy-dev-APIHandler"),  # case is forgiven when nothing matches exactly
        ("warm-staging", "mmedeploy-dev-warm-staging"),
        ("staging", "mmedeploy-dev-warm-staging"),
        ("record-outcome", "mmedeploy-dev-record-outcome"),  # not record-promotion-outcome
        ("dev-validate", "mmedeploy-dev-validate"),
        ("bearer", "mmedeploy-dev-BearerToken"),  # a part of the name, when it is the only one
        ("OnModel", "mmedeploy-dev-OnModelUploaded"),
    ],
)
def test_a_function_is_found_by_its_name_or_a_short_form(typed: str, function: str) -> None:
    assert fl.resolve_function(typed, STAGE_FUNCTIONS) == function


def test_an_exact_name_wins_over_names_that_end_with_it() -> None:
    assert fl.resolve_function("validate", ["validate", "mmedeploy-dev-validate"]) == "validate"
    # exact case wins over the same name in another case
    assert fl.resolve_function("Validate", ["mmedeploy-dev-validate", "mmedeploy-dev-Validate"]) == (
        "mmedeploy-dev-Validate"
    )


@pytest.mark.parametrize(
    ("typed", "matches"),
    [
        ("warm", ["mmedeploy-dev-warm-production", "mmedeploy-dev-warm-staging"]),
        ("outcome", ["mmedeploy-dev-record-outcome", "mmedeploy-dev-record-promotion-outcome"]),
        ("mmedeploy-dev", STAGE_FUNCTIONS),
    ],
)
def test_a_short_form_that_fits_several_names_them_all(typed: str, matches: list[str]) -> None:
    with pytest.raises(fl.AmbiguousFunction) as raised:
        fl.resolve_function(typed, STAGE_FUNCTIONS)
    assert raised.value.matches == sorted(matches)
    assert all(name in str(raised.value) for name in matches)


def test_two_stages_make_a_short_form_ambiguous() -> None:
    with pytest.raises(fl.AmbiguousFunction) as raised:
        fl.resolve_function("validate", ["mmedeploy-dev-validate", "mmedeploy-prod-validate"])
    assert raised.value.matches == ["mmedeploy-dev-validate", "mmedeploy-prod-validate"]


@pytest.mark.parametrize("typed", ["nosuch", "", "   ", "validate-x"])
def test_a_name_that_fits_none_lists_the_functions_that_exist(typed: str) -> None:
    with pytest.raises(fl.FunctionNotFound) as raised:
        fl.resolve_function(typed, STAGE_FUNCTIONS)
    assert raised.value.names == sorted(STAGE_FUNCTIONS)
    assert "mmedeploy-dev-warm-staging" in str(raised.value)


def test_function_names_reads_every_page_of_list_functions(session: boto3.session.Session) -> None:
    many = [f"mmedeploy-dev-fn{i:02d}" for i in range(55)]  # ListFunctions pages by 50
    create_functions(session, many)
    assert fl.function_names(session.client("lambda")) == sorted(many)


# -- reading a group ------------------------------------------------------------------------------
def test_every_stream_is_read_and_merged_in_time_order(logs: Any) -> None:
    base = now_ms() - 60_000
    put(logs, STREAM_A, (base, "START a"), (base + 20, "END a"), (base + 21, "REPORT a"))
    put(logs, STREAM_B, (base + 10, "START b"), (base + 15, "END b"), (base + 30, "REPORT b"))
    events = fl.read_events(logs, GROUP, base - 1000)
    assert [e.message for e in events] == ["START a", "START b", "END b", "END a", "REPORT a", "REPORT b"]
    assert {e.stream for e in events} == {STREAM_A, STREAM_B}
    assert len({e.key for e in events}) == 6


def test_events_before_the_start_time_are_left_out(logs: Any) -> None:
    base = now_ms() - 60_000
    put(logs, STREAM_A, (base, "old"), (base + 5_000, "new"))
    assert [e.message for e in fl.read_events(logs, GROUP, base + 1)] == ["new"]


def test_every_page_of_filter_log_events_is_read(logs: Any) -> None:
    class SmallPages:  # CloudWatch Logs pages by size; moto by 10,000 events: force pages of 2
        calls = 0

        def filter_log_events(self, **request: Any) -> Any:
            self.calls += 1
            return logs.filter_log_events(limit=2, **request)

    base = now_ms() - 60_000
    put(logs, STREAM_A, *[(base + i, f"a{i}") for i in range(5)])
    put(logs, STREAM_B, *[(base + i, f"b{i}") for i in range(3)])
    paged = SmallPages()
    events = fl.read_events(paged, GROUP, base)
    assert paged.calls == 4
    assert sorted(e.message for e in events) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(3)])
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)


def test_a_function_that_never_ran_has_no_group(logs: Any) -> None:
    with pytest.raises(fl.LogGroupMissing):
        fl.read_events(logs, "/aws/lambda/never-ran", 0)


# -- --follow ------------------------------------------------------------------------------------
def test_follow_prints_each_event_once_including_late_ones(logs: Any) -> None:
    base = now_ms() - 60_000
    slept: list[float] = []
    put(logs, STREAM_A, (base, "START 1"), (base + 5, "END 1"))
    polls = fl.follow_events(logs, GROUP, base - 1000, sleep=slept.append, interval=0.25)

    assert [e.message for e in next(polls)] == ["START 1", "END 1"]
    assert next(polls) == []  # nothing new: nothing repeated
    put(logs, STREAM_A, (base + 8, "REPORT 1"))
    # another environment's event shipped after a later one was seen: within the settle window
    put(logs, STREAM_B, (base + 2, "START 2"))
    assert [e.message for e in next(polls)] == ["START 2", "REPORT 1"]
    assert next(polls) == []
    assert slept == [0.25, 0.25, 0.25]


def test_follow_reads_from_shortly_before_the_newest_event_and_forgets_older_ids() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.starts: list[int] = []
            self.pages: list[list[dict[str, Any]]] = []

        def filter_log_events(self, **request: Any) -> Any:
            self.starts.append(request["startTime"])
            return {"events": self.pages.pop(0) if self.pages else []}

    def event(event_id: str, at: int, stream: str = STREAM_A) -> dict[str, Any]:
        return {"logStreamName": stream, "timestamp": at, "message": event_id, "eventId": event_id}

    client = Recorder()
    client.pages = [
        [event("1", 100_000), event("2", 150_000)],
        # the service answers from the start time asked: 2 again (same id: not repeated), and 3
        [event("2", 150_000), event("3", 145_000, STREAM_B)],
        # the same id in another stream is another event
        [event("3", 145_000)],
    ]
    polls = fl.follow_events(client, GROUP, 50_000, sleep=lambda _: None, settle_ms=10_000)
    assert [e.message for e in next(polls)] == ["1", "2"]
    assert [e.message for e in next(polls)] == ["3"]
    assert [(e.message, e.stream) for e in next(polls)] == [("3", STREAM_A)]
    next(polls)
    assert client.starts == [50_000, 140_000, 140_000, 140_000]


def test_follow_waits_for_a_group_that_does_not_exist_yet(logs: Any) -> None:
    polls = fl.follow_events(logs, GROUP, 0, sleep=lambda _: None)
    assert list(islice(polls, 2)) == [[], []]
    put(logs, STREAM_A, (now_ms(), "START"))
    assert [e.message for e in next(polls)] == ["START"]


# -- one line per event ------------------------------------------------------------------------
def test_an_event_is_its_short_stream_id_its_utc_time_and_its_message() -> None:
    event = fl.LogEvent(STREAM_A, 1_763_800_831_969, "START RequestId: r1 Version: $LATEST\n", "7")
    assert fl.format_event(event) == "2b7238d2 2025-11-22T08:40:31.969Z START RequestId: r1 Version: $LATEST"


def test_a_message_of_several_lines_continues_under_the_first() -> None:
    traceback = '[ERROR] ValueError: bad\rTraceback (most recent call last):\r  File "app.py", line 3\n'
    lines = fl.format_event(fl.LogEvent(STREAM_B, 5, traceback, "1")).split("\n")
    assert lines[0] == "9f00aa11 1970-01-01T00:00:00.005Z [ERROR] ValueError: bad"
    indent = " " * len("9f00aa11 1970-01-01T00:00:00.005Z ")
    assert lines[1:] == [f"{indent}Traceback (most recent call last):", f'{indent}  File "app.py", line 3']


@pytest.mark.parametrize(
    ("stream", "short"),
    [(STREAM_A, "2b7238d2"), ("2026/11/22/[7]abc", "abc"), ("my-own-stream", "my-own-stream")],
)
def test_short_stream_ids(stream: str, short: str) -> None:
    assert fl.short_stream_id(stream) == short


# -- the command ---------------------------------------------------------------------------------
@pytest.fixture
def stack(session: boto3.session.Session) -> DeploymentTarget:
    create_functions(session, STAGE_FUNCTIONS)
    return DeploymentTarget("the test stack", "us-east-1", "unit-staging", "unit-registry", session)


def test_logs_prints_the_function_s_events(
    stack: DeploymentTarget, logs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    at = now_ms() - 30_000
    put(logs, STREAM_A, (at, "START RequestId: r1"), (at + 3, "REPORT RequestId: r1\tDuration: 1.00 ms"))
    put(logs, STREAM_B, (at - 3_600_000, "an hour ago"))
    assert cli.main(["logs", "validate"], target=stack) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 2)[2] for line in out] == ["START RequestId: r1", "REPORT RequestId: r1\tDuration: 1.00 ms"]
    assert all(line.startswith("2b7238d2 ") for line in out)

    assert cli.main(["logs", "mmedeploy-dev-validate", "--since", "2h"], target=stack) == 0
    messages = [line.split(" ", 2)[2] for line in capsys.readouterr().out.splitlines()]
    assert messages == ["an hour ago", "START RequestId: r1", "REPORT RequestId: r1\tDuration: 1.00 ms"]


def test_logs_of_a_function_that_never_ran_is_not_an_error(
    stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["logs", "APIHandler"], target=stack) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "mmedeploy-dev-APIHandler has not logged anything yet" in captured.err


def test_logs_of_no_events_in_the_window_says_so(
    stack: DeploymentTarget, logs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put(logs, STREAM_A, (now_ms() - 3_600_000, "an hour ago"))
    assert cli.main(["logs", "validate", "--since", "30s"], target=stack) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no log events of mmedeploy-dev-validate since" in captured.err


def test_logs_of_an_unknown_or_ambiguous_function_exit_1_naming_the_functions(
    stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["logs", "nosuch"], target=stack) == 1
    err = capsys.readouterr().err
    assert "no function of the test stack is named 'nosuch'" in err
    assert all(name in err for name in STAGE_FUNCTIONS)

    assert cli.main(["logs", "warm"], target=stack) == 1
    err = capsys.readouterr().err
    assert "'warm' matches 2 functions of the test stack" in err
    assert "mmedeploy-dev-warm-production, mmedeploy-dev-warm-staging" in err
    assert "mmedeploy-dev-validate" not in err


@pytest.mark.parametrize("since", ["10", "5x", "0m"])
def test_logs_with_a_bad_since_is_a_usage_error(
    stack: DeploymentTarget, since: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["logs", "validate", "--since", since], target=stack) == 2
    assert "--since" in capsys.readouterr().err


def test_logs_without_a_local_stack_exit_2_and_point_at_the_kept_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    assert cli.main(["logs", "validate", "--state-dir", str(state)]) == 2
    err = capsys.readouterr().err
    assert "no local stack is running" in err
    assert f"{state / 'logs'}/" in err


def test_logs_when_cloudwatch_refuses_exit_1(
    stack: DeploymentTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import ClientError

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "FilterLogEvents")

    monkeypatch.setattr(fl, "read_events", refuse)
    assert cli.main(["logs", "validate"], target=stack) == 1
    assert "reading /aws/lambda/mmedeploy-dev-validate on the test stack failed" in capsys.readouterr().err


def test_logs_follow_prints_new_events_once_and_ctrl_c_exits_130_quietly(
    stack: DeploymentTarget, logs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at = now_ms() - 5_000
    put(logs, STREAM_A, (at, "START RequestId: r1"))
    arrivals: list[Callable[[], None]] = [
        lambda: None,  # a poll with nothing new
        lambda: put(logs, STREAM_A, (at + 1, "REPORT RequestId: r1")),
        lambda: put(logs, STREAM_B, (at + 2, "START RequestId: r2")),
    ]

    def sleep(seconds: float) -> None:  # the next thing happens, or Ctrl-C once nothing is left
        if not arrivals:
            raise KeyboardInterrupt
        arrivals.pop(0)()

    follow = fl.follow_events
    monkeypatch.setattr(fl, "follow_events", lambda *args, **kwargs: follow(*args, sleep=sleep, **kwargs))
    assert cli.main(["logs", "validate", "--follow"], target=stack) == 130
    captured = capsys.readouterr()
    assert [line.split(" ", 2)[2] for line in captured.out.splitlines()] == [
        "START RequestId: r1",
        "REPORT RequestId: r1",
        "START RequestId: r2",
    ]
    assert [line.split(" ", 1)[0] for line in captured.out.splitlines()] == ["2b7238d2", "2b7238d2", "9f00aa11"]
    assert "interrupted" not in captured.err
    assert captured.err.startswith("following /aws/lambda/mmedeploy-dev-validate on the test stack from ")
