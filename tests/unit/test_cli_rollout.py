"""`mmedeploy rollout` without a stack: its two forms (NAME VERSION starts one, pause|resume|abort
NAME controls the one running), the options sent as the request's body (only those given), usage
errors (exit 2, nothing sent), the API's refusals, and following a rollout step by step to its end,
against the stand-in API of the CLI's tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.records import HistoryEntry, ModelVersion
from chalicelib.domain.rollout.gates import Outcome
from mmedeploy import cli
from mmedeploy.target import DeploymentTarget
from tests.unit.fake_api import FakeApi
from tests.unit.test_cli_inference import ADMIN_TOKEN, api, stack  # noqa: F401 (fixtures)
from tests.unit.test_rollout_views import POLICY, a_reading, a_run, rolling_out

START = "/models/fraud/versions/2/rollout"
READ = "/models/fraud/versions/2"
ACCEPTED = {
    "name": "fraud",
    "version": "2",
    "status": "APPROVED",
    "action": "rollout requested",
    "production": "1",
    "policy": POLICY.model_dump(mode="json"),
    "rollout": None,
}


def control_answer(action: str, **run: Any) -> dict[str, Any]:
    return {**ACCEPTED, "status": "PROMOTING", "action": action, "rollout": a_run(**run).model_dump(mode="json")}


# -- starting one: the options sent ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "body"),
    [
        ([], {}),
        (["--steps", "5,25,50,100"], {"steps": [5.0, 25.0, 50.0, 100.0]}),
        (["--steps", "10%, 50%,100%"], {"steps": [10.0, 50.0, 100.0]}),
        (["--bake", "10m", "--interval", "30s"], {"bake_seconds": 600, "evaluation_interval_seconds": 30}),
        (["--bake", "1h", "--interval", "90"], {"bake_seconds": 3600, "evaluation_interval_seconds": 90}),
        (
            ["--min-requests", "500", "--max-error-margin", "0.02", "--max-latency-ratio", "1.5"],
            {"min_requests": 500, "max_error_rate_margin": 0.02, "max_p99_latency_ratio": 1.5},
        ),
    ],
)
def test_start_sends_only_the_options_given_with_the_admin_token(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    body: dict[str, Any],
) -> None:
    api.answer("POST", START, 202, ACCEPTED)
    assert cli.main(["rollout", "fraud", "2", *options, "--no-wait"], target=stack) == 0
    sent = api.only()
    assert (sent.method, sent.path) == ("POST", START)
    assert sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert sent.json() == body
    out = capsys.readouterr().out
    assert "rollout of fraud 2 accepted (APPROVED): judged against production 1" in out
    assert "steps 5% 25% 50% 100%, each bakes 10m, read every 1m" in out
    assert "mmedeploy status fraud 2 --watch" in out and "mmedeploy rollout pause|resume|abort fraud" in out


def test_a_version_named_like_an_action_s_model_is_still_a_rollout(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
) -> None:
    """`rollout pause 1.0`: 1.0 is no model name, so it is model pause, version 1.0."""
    api.answer("POST", "/models/pause/versions/1.0/rollout", 202, {**ACCEPTED, "name": "pause", "version": "1.0"})
    assert cli.main(["rollout", "pause", "1.0", "--no-wait", "--json"], target=stack) == 0
    assert api.only().path == "/models/pause/versions/1.0/rollout"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rollout", "fraud"], "the following arguments are required: VERSION"),
        (["rollout", "fraud", "2", "3"], "unrecognized arguments: 3"),
        (["rollout", "fraud", "two"], "'two' is not a version"),
        (["rollout", "paws", "fraud"], "'fraud' is not a version"),
        (["rollout", "fraud.x", "2"], "'fraud.x' is not a model name"),
        (["rollout", "fraud", "2", "--steps", "5,lots,100"], "'lots' in '5,lots,100' is not a percentage"),
        (["rollout", "fraud", "2", "--steps", "50,25,100"], "--steps: must rise strictly"),
        (["rollout", "fraud", "2", "--steps", "5,25,50"], "--steps: ends at 50%"),
        (["rollout", "fraud", "2", "--steps", "0,100"], "--steps[0]: input should be greater than 0"),
        (["rollout", "fraud", "2", "--bake", "10x"], "'10x' is not a duration"),
        (["rollout", "fraud", "2", "--bake", "1.5s"], "1.5s is not a whole number of seconds"),
        (["rollout", "fraud", "2", "--bake", "8d"], "'8d' is not a duration"),
        (["rollout", "fraud", "2", "--bake", "200h"], "--bake: input should be less than or equal to 604800"),
        (["rollout", "fraud", "2", "--interval", "0"], "0 is not a whole number of seconds above 0"),
        (["rollout", "fraud", "2", "--min-requests", "0"], "--min-requests: input should be greater than or equal"),
        (["rollout", "fraud", "2", "--min-requests", "1.5"], "invalid int value: '1.5'"),
        (["rollout", "fraud", "2", "--max-error-margin", "2"], "--max-error-margin: input should be less than"),
        (["rollout", "fraud", "2", "--max-latency-ratio", "0"], "--max-latency-ratio: input should be greater"),
        (["rollout", "pause", "fraud", "--steps", "5,100"], "--steps: options of a rollout being started"),
        (["rollout", "abort", "fraud", "--no-wait"], "abort takes only NAME (mmedeploy rollout abort fraud)"),
        (["rollout", "resume", "fraud", "--timeout", "5"], "--timeout: options of a rollout being started"),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert cli.main(argv, target=stack) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert api.requests == []


@pytest.mark.parametrize(
    ("status", "error", "exit"),
    [
        (409, "fraud has no production version to judge 2 against: promote it instead", 1),
        (409, "a rollout of fraud 3 is in progress; one rollout per model", 1),
        (400, "the rollout policy does not hold together: evaluation_interval_seconds (900) is longer", 1),
        (401, "no", 1),
        (404, "no version 2 of model fraud in the registry", 3),
    ],
)
def test_a_refused_start_says_why(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    status: int,
    error: str,
    exit: int,
) -> None:
    api.answer("POST", START, status, {"error": error})
    assert cli.main(["rollout", "fraud", "2", "--no-wait"], target=stack) == exit
    assert f"mmedeploy rollout: error {status}: {error}" in capsys.readouterr().err
    assert cli.main(["rollout", "fraud", "2", "--no-wait", "--json"], target=stack) == exit
    assert json.loads(capsys.readouterr().out) == {"error": error, "http_status": status}


# -- pause, resume, abort --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "answer", "said"),
    [
        (
            "pause",
            control_answer("rollout paused", paused_by="api:admin", paused_at="2026-01-01T10:03:00Z"),
            "fraud 2: rollout paused (step 2 of 4 (25%): 25% of the traffic, paused by api:admin); production 1",
        ),
        (
            "pause",
            control_answer("already paused by api:alice", paused_by="api:alice"),
            "fraud 2: already paused by api:alice (step 2 of 4 (25%)",
        ),
        ("resume", control_answer("rollout resumed"), "fraud 2: rollout resumed (step 2 of 4 (25%)"),
        ("resume", control_answer("not paused"), "fraud 2: not paused (step 2 of 4 (25%)"),
        (
            "abort",
            {**control_answer("rollout aborted"), "status": "ROLLED_BACK"},
            "fraud 2 is ROLLED_BACK: production 1 unchanged",
        ),
    ],
)
def test_control_posts_the_action_and_says_where_the_rollout_is(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    action: str,
    answer: dict[str, Any],
    said: str,
) -> None:
    api.answer("POST", f"/models/fraud/rollout/{action}", 200, answer)
    assert cli.main(["rollout", action, "fraud"], target=stack) == 0
    sent = api.only()
    assert (sent.method, sent.path, sent.json()) == ("POST", f"/models/fraud/rollout/{action}", {})
    assert sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert said in capsys.readouterr().out
    assert cli.main(["rollout", action, "fraud", "--json"], target=stack) == 0
    assert json.loads(capsys.readouterr().out) == {**answer, "http_status": 200}


def test_control_without_a_rollout_in_progress_exits_1(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.answer("POST", "/models/fraud/rollout/abort", 404, {"error": "no rollout of fraud is in progress"})
    assert cli.main(["rollout", "abort", "fraud"], target=stack) == 1
    assert "mmedeploy rollout: error 404: no rollout of fraud is in progress" in capsys.readouterr().err


# -- following one -----------------------------------------------------------------------------------
def entry(revision: int, status: Status, reason: str, actor: str = "pipeline/rollout") -> HistoryEntry:
    return HistoryEntry(
        at=f"2026-01-01T10:0{revision}:00Z", status=status, actor=actor, reason=reason, revision=revision
    )


def serve_reads(fake: FakeApi, records: list[ModelVersion]) -> None:
    """Each read of fraud 2 answers the next record (the last one again once they run out)."""
    left = list(records)

    def next_read() -> None:
        record = left.pop(0) if len(left) > 1 else left[0]
        fake.answer("GET", READ, 200, record.document())

    fake.hooks[READ] = next_read


def approved() -> ModelVersion:
    from tests.unit.builders import a_version

    return a_version("2", status=Status.APPROVED, reason="approved", revision=5)


def step(revision: int, history: list[HistoryEntry], **run: Any) -> ModelVersion:
    record = rolling_out(a_run(**run), revision=revision)
    record.history = history
    return record


def test_following_prints_each_step_and_reading_once_and_exits_0_in_production(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    requested = entry(6, Status.PROMOTING, "rollout requested by api:admin", "api:admin")
    started = entry(7, Status.PROMOTING, "rollout step 1 of 4 (5%) started")
    waiting = a_reading(Outcome.WAIT, "too little traffic to judge")
    passed = a_reading().model_copy(update={"at": "2026-01-01T10:08:00Z"})
    done = step(9, [requested, started, entry(9, Status.PRODUCTION, "promoted")])
    done.status = Status.PRODUCTION
    serve_reads(
        api,
        [
            approved(),  # before the request: the baseline
            step(6, [requested], step=-1, step_started_at=None, last=None, next_evaluation_at=None),
            step(7, [requested, started], step=0, last=waiting),
            step(7, [requested, started], step=0, last=waiting),  # nothing new: nothing printed
            step(7, [requested, started], step=0, last=passed),  # a new reading
            done,
        ],
    )
    api.answer("POST", START, 202, ACCEPTED)
    assert cli.main(["rollout", "fraud", "2", "--poll", "0.01"], target=stack) == 0
    out = capsys.readouterr().out
    assert out.count("warming before its first step of 4: no traffic yet") == 1
    assert out.count("step 1 of 4 (5%): 5% of the traffic  WAIT  too little traffic to judge") == 1
    assert out.count("step 1 of 4 (5%): 5% of the traffic  PASS") == 1
    assert out.count("rollout step 1 of 4 (5%) started") == 1  # the history entry, once
    assert "fraud 2 is PRODUCTION" in out


def test_a_rollout_rolled_back_exits_1_with_the_reason(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    reason = "rolled back at step 2 of 4 (25%), production 1 unchanged: error_rate gate failed"
    ended = step(8, [entry(8, Status.ROLLED_BACK, reason)], last=a_reading(Outcome.FAIL, "error_rate gate failed"))
    ended.status, ended.reason = Status.ROLLED_BACK, reason
    serve_reads(api, [approved(), ended])
    api.answer("POST", START, 202, ACCEPTED)
    assert cli.main(["rollout", "fraud", "2", "--poll", "0.01"], target=stack) == 1
    assert "mmedeploy rollout: fraud 2 is ROLLED_BACK (after" in capsys.readouterr().err
    assert cli.main(["rollout", "fraud", "2", "--poll", "0.01", "--json"], target=stack) == 1
    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["outcome"], outcome["status"], outcome["reason"]) == ("failed", "ROLLED_BACK", reason)


def test_the_default_timeout_is_the_policy_s_bakes_plus_a_margin(
    api: FakeApi,  # noqa: F811
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, float] = {}

    def follow(args: Any, *rest: Any) -> int:
        seen["timeout"] = args.timeout
        return 0

    monkeypatch.setattr("mmedeploy.cli.admin._follow", follow)
    serve_reads(api, [approved()])
    api.answer("POST", START, 202, ACCEPTED)
    assert cli.main(["rollout", "fraud", "2"], target=stack) == 0
    assert seen["timeout"] == 3 * 600 + 900  # three canary steps of 10 minutes, plus 15 minutes
    assert cli.main(["rollout", "fraud", "2", "--timeout", "60"], target=stack) == 0
    assert seen["timeout"] == 60


# -- status ----------------------------------------------------------------------------------------
def test_status_of_the_model_and_of_the_version_show_the_rollout(
    stack: DeploymentTarget,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.domain.records import Alias, Canary, ModelRoutes
    from mmedeploy.registry_client import ModelListing, VersionSummary

    candidate = rolling_out(a_run())
    routes = ModelRoutes(
        production=Alias(name="fraud", alias="production", version="1", revision=3, updated_at="t", actor="api:x"),
        canary=Canary(
            name="fraud", version="2", weight=0.25, started_at="t", actor="pipeline/rollout", rollout_execution="arn"
        ),
    )
    lines = [
        VersionSummary(version="1", status=Status.PRODUCTION, updated_at="t"),
        VersionSummary(version="2", status=Status.PROMOTING, updated_at="t"),
    ]
    monkeypatch.setattr("mmedeploy.registry_client.find_model", lambda *_: ModelListing("fraud", lines, routes))
    monkeypatch.setattr("mmedeploy.registry_client.find_version", lambda *_: candidate)
    assert cli.main(["status", "fraud"], target=stack) == 0
    out = capsys.readouterr().out
    assert "rollout 25%" in out and "rollout of fraud 2" in out and "step 2 of 4 (25%)" in out
    assert cli.main(["status", "fraud", "2"], target=stack) == 0
    assert "rollout of fraud 2" in capsys.readouterr().out
    assert cli.main(["status", "fraud", "2", "--json"], target=stack) == 0
    shown = json.loads(capsys.readouterr().out)["promotion"]["rollout"]
    assert (shown["step"], shown["production_version"], shown["last"]["outcome"]) == (1, "1", "PASS")
    assert cli.main(["status", "fraud", "--json"], target=stack) == 0
    assert json.loads(capsys.readouterr().out)["canary"]["rollout_execution"] == "arn"
