"""`mmedeploy invoke|canary|models` without a local stack: a real HTTP server in-process stands in
for the API (it records each request and answers canned JSON per method and path), and
`status NAME` shows the aliases read through the stand-in API from the registry on in-process moto."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import Status
from mmedeploy import cli
from mmedeploy.admin_api import ApiAnswer
from mmedeploy.inference_client import inference, inference_lines, models_lines, read_request, tensor_data
from mmedeploy.target import DeploymentTarget
from tests.unit.builders import a_version
from tests.unit.fake_api import FakeApi, closed_port_url, serve_fake_api
from tests.unit.registry_table import TABLE

INVOKE_TOKEN = "mmd_invoke-token"
ADMIN_TOKEN = "mmd_admin-token"

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON document, extra headers


# -- the stand-in API ------------------------------------------------------------------------------
@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serve_fake_api() as fake:
        yield fake


@pytest.fixture
def stack(api: FakeApi) -> DeploymentTarget:
    """A target whose API is the stand-in (no AWS call is made by these commands)."""
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    return DeploymentTarget(
        "the test stack",
        "us-east-1",
        "unit-staging",
        TABLE,
        session,
        api_url=api.url,
        admin_token=ADMIN_TOKEN,
        api_token=INVOKE_TOKEN,
    )


# -- invoke ----------------------------------------------------------------------------------------
REQUEST = {"inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}]}
ANSWER = {
    "model_name": "fraud",
    "model_version": "2",
    "outputs": [
        {"name": "SCORE", "datatype": "FP32", "shape": [1, 20], "data": [i / 8 for i in range(20)]},
        {"name": "LABEL", "datatype": "BYTES", "shape": [1], "data": ["fraud"]},
    ],
}


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST, indent=2))
    return path


def test_invoke_posts_the_request_with_the_invoke_token_and_prints_the_outputs(
    api: FakeApi, stack: DeploymentTarget, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer("POST", "/v2/models/fraud/infer", 200, ANSWER, Mmedeploy_Model_Version="2", Mmedeploy_Route="canary")
    assert cli.main(["invoke", "fraud", "--data", str(request_file)], target=stack) == 0

    sent = api.only()
    assert (sent.method, sent.path) == ("POST", "/v2/models/fraud/infer")
    assert sent.headers["authorization"] == f"Bearer {INVOKE_TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == REQUEST

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fraud 2 (route: canary)"
    score = next(line for line in lines if "SCORE" in line)
    assert "FP32" in score and "[1, 20]" in score
    assert "[0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, … 12 more]" in score  # a long tensor is cut
    label = next(line for line in lines if "LABEL" in line)
    assert "BYTES" in label and '["fraud"]' in label


def test_invoke_a_pinned_version_as_json_adds_status_version_and_route(
    api: FakeApi, stack: DeploymentTarget, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer(
        "POST",
        "/v2/models/fraud/versions/1.2/infer",
        200,
        {**ANSWER, "model_version": "1.2"},
        Mmedeploy_Model_Version="1.2",
        Mmedeploy_Route="pinned",
    )
    assert cli.main(["invoke", "fraud", "--data", str(request_file), "--version", "1.2", "--json"], target=stack) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        **ANSWER,
        "model_version": "1.2",
        "http_status": 200,
        "served_version": "1.2",
        "route": "pinned",
    }
    assert api.only().path == "/v2/models/fraud/versions/1.2/infer"


def test_invoke_reads_the_request_from_stdin_and_uses_the_admin_token_without_an_invoke_token(
    api: FakeApi, stack: DeploymentTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_invoke_token = replace(stack, api_token=None)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(REQUEST).encode())))
    api.answer("POST", "/v2/models/fraud/infer", 200, ANSWER, Mmedeploy_Model_Version="2", Mmedeploy_Route="production")
    assert cli.main(["invoke", "fraud", "--data", "-"], target=no_invoke_token) == 0
    sent = api.only()
    assert sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}" and sent.json() == REQUEST
    assert capsys.readouterr().out.startswith("fraud 2 (route: production)")


@pytest.mark.parametrize(
    ("status", "error", "headers", "expected"),
    [
        (404, "unknown model fraud", {}, "error 404: unknown model fraud"),
        (400, "the inference request needs a non-empty 'inputs' list", {}, "error 400: the inference request needs"),
        (403, "User is not authorized", {}, "error 403: User is not authorized (the API refused the invoke token"),
        (503, "fraud 2 is loading", {"Retry_After": "5"}, "error 503: fraud 2 is loading; try again in 5 s"),
    ],
)
def test_invoke_refused_by_the_api_exits_1_with_the_status_and_the_api_message(
    api: FakeApi,
    stack: DeploymentTarget,
    request_file: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    error: str,
    headers: dict[str, str],
    expected: str,
) -> None:
    api.answer("POST", "/v2/models/fraud/infer", status, {"error": error}, **headers)
    assert cli.main(["invoke", "fraud", "--data", str(request_file)], target=stack) == 1
    captured = capsys.readouterr()
    assert expected in captured.err and "Traceback" not in captured.err
    assert captured.out == ""

    assert cli.main(["invoke", "fraud", "--data", str(request_file), "--json"], target=stack) == 1
    document = json.loads(capsys.readouterr().out)
    assert document == {"error": error, "http_status": status, "served_version": None, "route": None}


def test_invoke_when_the_api_does_not_answer_exits_2(
    stack: DeploymentTarget, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down = replace(stack, api_url=closed_port_url())
    assert cli.main(["invoke", "fraud", "--data", str(request_file)], target=down) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot reach" in err and "mmedeploy up --detach" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b'{"inputs": [', "is not valid JSON"),
        (b'[{"name": "x"}]', "holds a JSON array, not an object"),
        (b"42", "holds a JSON number, not an object"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_invoke_with_a_bad_data_file_exits_2_and_sends_nothing(
    api: FakeApi,
    stack: DeploymentTarget,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / "request.json"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["invoke", "fraud", "--data", str(path)], target=stack) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err
    assert api.requests == []


def test_invoke_needs_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["invoke", "fraud"]) == cli.EXIT_USAGE
    assert "--data" in capsys.readouterr().err


def test_invoke_help_documents_the_request_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["invoke", "--help"]) == 0
    text = capsys.readouterr().out
    assert "KServe v2" in text and "exit codes" in text and "pinned" in text


# -- the views, without a server -------------------------------------------------------------------
def test_request_file_is_sent_compact() -> None:
    assert read_request("-", io.BytesIO(b'{ "inputs" : [] }')) == b'{"inputs":[]}'


def test_tensor_data_flattens_nested_data_and_names_binary_outputs() -> None:
    assert tensor_data({"data": [[1, 2], [3, 4]]}, shown=3) == "[1, 2, 3, … 1 more]"
    assert tensor_data({"parameters": {"binary_data_size": 64}}) == "(64 bytes of binary data, not shown)"
    assert tensor_data({"data": [0.1234567891]}) == "[0.123457]"


def test_a_binary_answer_is_read_from_its_json_head() -> None:
    output = {"name": "OUT", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}
    head = json.dumps({"model_name": "fraud", "model_version": "3", "outputs": [output]}).encode()
    raw = head + b"\x00" * 16
    answer = ApiAnswer(200, {"error": "not json"}, {"inference-header-content-length": str(len(head))}, raw)
    served = inference(answer)
    assert served.served_version == "3" and served.route is None
    assert inference_lines("fraud", served) == ["fraud 3", "  OUT  FP32  [1, 4]  (16 bytes of binary data, not shown)"]


# -- canary ----------------------------------------------------------------------------------------
CANARY = {"name": "fraud", "version": "2", "weight": 0.1, "started_at": "2025-01-02T03:04:05.000Z", "actor": "api:x"}


@pytest.mark.parametrize("weight", ["10%", "0.1", " 10 % "])
def test_canary_start_posts_version_and_weight_with_the_admin_token(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str], weight: str
) -> None:
    answer = {"name": "fraud", "production": "1", "canary": CANARY, "action": "canary started"}
    api.answer("POST", "/models/fraud/canary", 200, answer)
    assert cli.main(["canary", "fraud", "2", "--weight", weight], target=stack) == 0
    sent = api.only()
    assert (sent.method, sent.path) == ("POST", "/models/fraud/canary")
    assert sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"version": "2", "weight": 0.1}
    out = capsys.readouterr().out
    assert "fraud: 10% of traffic -> 2 (production 1)" in out and "mmedeploy canary fraud --stop" in out


def test_canary_stop_deletes_it_with_the_admin_token(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {"name": "fraud", "production": "1", "canary": CANARY, "action": "canary ended"}
    api.answer("DELETE", "/models/fraud/canary", 200, answer)
    assert cli.main(["canary", "fraud", "--stop"], target=stack) == 0
    sent = api.only()
    assert (sent.method, sent.path, sent.body) == ("DELETE", "/models/fraud/canary", b"")
    assert sent.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    assert "fraud: canary 2 ended (it had 10% of traffic); production 1 takes all" in capsys.readouterr().out

    assert cli.main(["canary", "fraud", "--stop", "--json"], target=stack) == 0
    assert json.loads(capsys.readouterr().out) == {**answer, "http_status": 200}


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, "model fraud has no canary"), (409, "fraud 2 is REJECTED; a canary must be APPROVED, ..."), (401, "no")],
)
def test_canary_refused_exits_1_with_the_api_message(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str], status: int, error: str
) -> None:
    api.answer("DELETE", "/models/fraud/canary", status, {"error": error})
    assert cli.main(["canary", "fraud", "--stop"], target=stack) == 1
    assert f"mmedeploy canary: error {status}: {error}" in capsys.readouterr().err
    assert cli.main(["canary", "fraud", "--stop", "--json"], target=stack) == 1
    assert json.loads(capsys.readouterr().out) == {"error": error, "http_status": status}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["canary", "fraud", "2", "--weight", "0"], "must be more than 0 and less than 1"),
        (["canary", "fraud", "2", "--weight", "1"], "must be more than 0 and less than 1"),
        (["canary", "fraud", "2", "--weight", "100%"], "must be more than 0 and less than 1"),
        (["canary", "fraud", "2", "--weight", "10"], "did you mean 10%?"),
        (["canary", "fraud", "2", "--weight", "-0.1"], "must be more than 0"),
        (["canary", "fraud", "2", "--weight", "nan"], "must be more than 0"),
        (["canary", "fraud", "2", "--weight", "lots"], "is not a weight"),
        (["canary", "fraud", "2"], "give NAME VERSION --weight W"),
        (["canary", "fraud", "--weight", "0.1"], "give NAME VERSION --weight W"),
        (["canary", "fraud", "2", "--stop"], "--stop ends the canary"),
    ],
)
def test_canary_usage_errors_exit_2_and_send_nothing(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main(argv, target=stack) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert api.requests == []


def test_canary_when_the_api_does_not_answer_exits_2(
    stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    down = replace(stack, api_url=closed_port_url())
    assert cli.main(["canary", "fraud", "2", "--weight", "5%"], target=down) == cli.EXIT_USAGE
    assert "cannot reach" in capsys.readouterr().err


def test_canary_without_an_admin_token_exits_2(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    no_admin_token = replace(stack, admin_token=None)
    assert cli.main(["canary", "fraud", "--stop"], target=no_admin_token) == cli.EXIT_USAGE
    assert "has no admin token" in capsys.readouterr().err
    assert api.requests == []


# -- models ----------------------------------------------------------------------------------------
def entry(name: str, production: str | None = None, canary: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"name": name, "latest_version": "3", "updated_at": "2025-01-02T03:04:05.000Z"}
    if production:
        document["production_version"] = production
    if canary:
        document["canary_version"] = canary
    return document


def test_models_follows_next_until_the_last_page(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer("GET", "/models", 200, {"models": [entry("alpha", "1"), entry("beta")], "next": "YmV0YQ=="})
    api.answer("GET", "/models?next=YmV0YQ%3D%3D", 200, {"models": [entry("fraud", "1", "2")], "next": None})
    assert cli.main(["models", "--json"], target=stack) == 0
    document = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in document["models"]] == ["alpha", "beta", "fraud"] and document["next"] is None
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/models"), ("GET", "/models?next=YmV0YQ%3D%3D")]
    assert all(r.headers["authorization"] == f"Bearer {INVOKE_TOKEN}" for r in api.requests)

    assert cli.main(["models"], target=stack) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PRODUCTION", "CANARY", "LATEST", "UPDATED", "(UTC)"]
    assert lines[1].split()[:4] == ["alpha", "1", "-", "3"]
    assert lines[2].split()[:4] == ["beta", "-", "-", "3"]
    assert lines[3].split()[:4] == ["fraud", "1", "2", "3"] and "2025-01-02 03:04:05.000" in lines[3]


def test_models_with_limit_reads_one_page_and_says_how_to_read_the_next(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer("GET", "/models?limit=2", 200, {"models": [entry("alpha"), entry("beta")], "next": "YmV0YQ=="})
    api.answer("GET", "/models?limit=2&next=YmV0YQ%3D%3D", 200, {"models": [entry("fraud")], "next": None})
    assert cli.main(["models", "--limit", "2", "--json"], target=stack) == 0
    assert json.loads(capsys.readouterr().out)["next"] == "YmV0YQ=="
    assert cli.main(["models", "--limit", "2"], target=stack) == 0
    assert "more: mmedeploy models --limit 2 --next YmV0YQ==" in capsys.readouterr().out
    assert cli.main(["models", "--limit", "2", "--next", "YmV0YQ=="], target=stack) == 0
    out = capsys.readouterr().out
    assert "fraud" in out and "more:" not in out
    assert len(api.requests) == 3


def test_models_refused_or_unreachable(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer("GET", "/models", 401, {"message": "Unauthorized"})
    assert cli.main(["models"], target=stack) == 1
    assert "error 401: Unauthorized (the API refused the invoke token" in capsys.readouterr().err
    down = replace(stack, api_url=closed_port_url())
    assert cli.main(["models"], target=down) == cli.EXIT_USAGE
    assert "cannot reach" in capsys.readouterr().err


def test_models_a_token_given_twice_ends_the_listing(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    api.answer("GET", "/models", 200, {"models": [entry("alpha")], "next": "YQ=="})
    api.answer("GET", "/models?next=YQ%3D%3D", 200, {"models": [entry("alpha")], "next": "YQ=="})
    assert cli.main(["models"], target=stack) == 1
    assert "twice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "--limit", "0"], "not a page size"),
        (["models", "--limit", "1001"], "not a page size"),
        (["models", "--limit", "²"], "not a page size"),
        (["models", "--limit", "-1"], "not a page size"),
        (["models", "--next", "YQ=="], "give --limit N too"),
    ],
)
def test_models_usage_errors_exit_2(
    api: FakeApi, stack: DeploymentTarget, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main(argv, target=stack) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert api.requests == []


def test_models_lines_align_the_columns() -> None:
    lines = models_lines([entry("a-long-model-name", "12"), entry("b")])
    assert len({line.index("PRODUCTION") if i == 0 else None for i, line in enumerate(lines)} - {None}) == 1
    assert lines[1].index("12") == lines[0].index("PRODUCTION")


# -- status NAME: the aliases ----------------------------------------------------------------------
TO_PROMOTING = [
    Status.VALIDATING, Status.VALIDATED, Status.WARMING, Status.STAGED, Status.AWAITING_APPROVAL, Status.APPROVED,
    Status.PROMOTING,
]  # fmt: skip


@pytest.fixture
def moto_target(moto_session: boto3.session.Session) -> Iterator[DeploymentTarget]:
    """A DeploymentTarget whose stand-in API answers the registry routes from the registry table on
    moto (emptied for each test): the CLI reads it only through the API."""
    with serve_fake_api() as api:
        api.registry = ModelRegistry(TABLE, moto_session.client("dynamodb"))
        yield DeploymentTarget(
            "moto", "us-east-1", "unit-staging", TABLE, moto_session, api_url=api.url, api_token="invoke-token"
        )


@pytest.fixture
def registry(moto_target: DeploymentTarget) -> ModelRegistry:
    return ModelRegistry(TABLE, moto_target.client("dynamodb"))


def put(registry: ModelRegistry, version: str, path: list[Status]) -> None:
    registry.register(
        a_version(
            version,
            bucket="unit-staging",
            etag="etag",
            uploaded_at="2025-01-02T03:04:05.000Z",
            updated_at="2025-01-02T03:04:05.000Z",
        ),
        "s3-upload",
        "uploaded",
    )
    for status in path:
        registry.transition("fraud", version, status, "pipeline/test", f"now {status.value}")


def test_status_of_a_model_shows_production_previous_and_canary(
    registry: ModelRegistry, moto_target: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put(registry, "1", TO_PROMOTING)
    registry.flip_production("fraud", "1", 0, "pipeline/promote", "promoted")
    put(registry, "2", TO_PROMOTING)
    registry.flip_production("fraud", "2", 1, "pipeline/promote", "promoted")
    put(registry, "3", TO_PROMOTING[:5])
    registry.put_canary("fraud", "3", 0.25, "api:admin")

    assert cli.main(["status", "fraud", "--json"], target=moto_target) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["aliases"] == {"production": "2", "previous": "1", "canary": "3"}
    assert document["production"]["version"] == "2" and document["production"]["previous"] == "1"
    assert {"revision", "updated_at", "actor"} <= document["production"].keys()
    assert document["canary"]["version"] == "3" and document["canary"]["weight"] == 0.25
    assert document["canary"]["actor"] == "api:admin" and document["canary"]["started_at"]
    assert [(v["version"], v["status"]) for v in document["versions"]] == [
        ("1", "RETIRED"),
        ("2", "PRODUCTION"),
        ("3", "AWAITING_APPROVAL"),
    ]

    assert cli.main(["status", "fraud"], target=moto_target) == 0
    out = capsys.readouterr().out
    assert "production 2 (a rollback goes to 1)" in out
    assert "canary 3 takes 25% of the traffic" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "previous" in rows["1"] and "production" in rows["2"] and "canary 25%" in rows["3"]


def test_status_of_a_model_never_promoted_has_no_aliases(
    registry: ModelRegistry, moto_target: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    put(registry, "1", TO_PROMOTING[:5])
    assert cli.main(["status", "fraud", "--json"], target=moto_target) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["aliases"] == {} and document["production"] is None and document["canary"] is None
