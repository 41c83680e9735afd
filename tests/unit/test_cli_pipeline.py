"""`mmedeploy push` and `status` without a local stack: argument errors, JSON shapes, rendering,
the watch loop and its exit codes (AWS in-process with moto where a bucket or table is needed;
status reads the registry through the stand-in API only, with the invoke token)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws
from rich.console import Console

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import FAILURE, SETTLED, Status
from chalicelib.domain.records import HistoryEntry, ModelVersion, RejectedUpload
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.inference.catalog import ModelCatalog
from mmedeploy import cli, push
from mmedeploy.follow import watch_version
from mmedeploy.status_view import model_json, version_view, versions_view, watch_exit_code
from mmedeploy.target import DeploymentTarget
from testkit.tarballs import pack, single_python_repo
from tests.unit.builders import a_version
from tests.unit.fake_api import FakeApi, serve_fake_api
from tests.unit.registry_table import create_registry_table

BUCKET, TABLE = "unit-staging", "unit-registry"
SHA = "ab" * 32


def record(status: Status = Status.REJECTED, version: str = "1", **changes: Any) -> ModelVersion:
    fields: dict[str, Any] = {
        "name": "fraud",
        "version": version,
        "status": status,
        "reason": "2 error(s)",
        "bucket": BUCKET,
        "key": f"fraud_{version}.tar.gz",
        "etag": "etag1",
        "size": 5224,
        "sha256": SHA,
        "uploaded_at": "2025-01-02T03:04:05.000Z",
        "updated_at": "2025-01-02T03:04:07.000Z",
        "findings": [
            Finding.of(Code.MULTIPLE_VERSIONS, "fraud/2", "only the highest version is served"),
            Finding.of(Code.VERSION_FILE_MISSING, "model_version.txt", "add model_version.txt"),
        ],
        "metrics": {"validation_ms": 12.5, "cold_load_ms": 1500.0, "warm_p50_ms": 3.25, "smoke_tests": 2.0},
        "rejected_uploads": [RejectedUpload(at="2025-01-02T04:00:00.000Z", etag="etag2", sha256="cd" * 32, reason="r")],
        "approval_id": "apv_0123456789abcdef",
    }
    fields.update(changes)
    made = a_version(**fields)
    made.history = [
        HistoryEntry(at="2025-01-02T03:04:05.000Z", status=Status.RECEIVED, actor="s3-upload", reason="uploaded"),
        HistoryEntry(at="2025-01-02T03:04:07.000Z", status=status, actor="pipeline/validate", reason="2 error(s)"),
    ]
    return made


def rendered(renderable: Any) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- JSON shapes and views ----------------------------------------------------------------------
class OneRecord:
    """The registry the API's catalog reads, holding one record."""

    def __init__(self, held: ModelVersion) -> None:
        self.held = held

    def find(self, name: str, version: str, with_history: bool = False) -> ModelVersion | None:
        return self.held if (name, version) == (self.held.name, self.held.version) else None


def test_version_json_is_the_api_s_version_shape_with_the_contract_fields() -> None:
    held = record()
    document = held.document()  # what status NAME VERSION --json prints
    # one version, one JSON shape: what GET /models/NAME/versions/VERSION answers
    assert document == ModelCatalog(cast(Any, OneRecord(held)), cast(Any, None), cast(Any, None)).version("fraud", "1")
    assert {
        "name", "version", "status", "reason", "sha256", "size", "findings", "history", "metrics",
        "rejected_uploads", "uploaded_at", "updated_at",
    } <= document.keys()  # fmt: skip
    assert (document["name"], document["version"], document["status"]) == ("fraud", "1", "REJECTED")
    assert [f["code"] for f in document["findings"]] == ["MULTIPLE_VERSIONS", "VERSION_FILE_MISSING"]  # as recorded
    assert set(document["findings"][0]) == {"code", "severity", "path", "message"}
    assert [h["status"] for h in document["history"]] == ["RECEIVED", "REJECTED"]
    assert set(document["history"][0]) == {"at", "status", "actor", "reason", "revision"}
    assert document["metrics"]["cold_load_ms"] == 1500.0
    assert document["rejected_uploads"][0]["etag"] == "etag2"
    assert document["approval_id"] == "apv_0123456789abcdef"


def test_model_json_lists_versions_and_keeps_the_aliases_key() -> None:
    document = model_json("fraud", [record(version="1"), record(Status.AWAITING_APPROVAL, version="2")])
    assert document["name"] == "fraud" and document["aliases"] == {}
    assert [(v["version"], v["status"]) for v in document["versions"]] == [
        ("1", "REJECTED"),
        ("2", "AWAITING_APPROVAL"),
    ]
    assert {"version", "status", "reason", "updated_at"} <= document["versions"][0].keys()


def test_version_view_shows_status_evidence_metrics_findings_history_and_refused_uploads() -> None:
    text = rendered(version_view(record()))
    assert "fraud 1" in text and "REJECTED" in text and "2 error(s)" in text
    assert SHA[:16] + "…" in text and SHA not in text
    assert "validation 12.5 ms" in text and "cold load 1.50 s" in text and "warm p50 3.2 ms" in text
    assert text.index("VERSION_FILE_MISSING") < text.index("MULTIPLE_VERSIONS")  # errors first
    assert "pipeline/validate" in text and "2025-01-02 03:04:05.000" in text
    assert "refused uploads" in text and "etag2" in text


def test_versions_view_is_a_table_of_versions() -> None:
    text = rendered(versions_view("fraud", [record(version="1"), record(Status.PRODUCTION, version="2")]))
    assert "fraud: 2 version(s)" in text and "REJECTED" in text and "PRODUCTION" in text


@pytest.mark.parametrize("status", sorted(SETTLED))
def test_watch_exits_1_only_for_failed_endings(status: Status) -> None:
    failed = {Status.REJECTED, Status.FAILED, Status.EXPIRED, Status.DECLINED, Status.ROLLED_BACK}
    expected = 1 if status in failed else 0
    assert watch_exit_code(status) == expected
    assert FAILURE <= SETTLED


# -- the watch loop -----------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_watch_waits_for_registration_then_for_a_settled_status() -> None:
    reads = iter([None, record(Status.RECEIVED), record(Status.VALIDATING), record(Status.REJECTED)])
    seen: list[tuple[Status | None, float]] = []
    fake = FakeTime()
    result = watch_version(
        lambda: next(reads),
        lambda r, elapsed: seen.append((r.status if r else None, elapsed)),
        interval=1.0,
        timeout=60,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert not result.timed_out and result.record is not None and result.record.status is Status.REJECTED
    assert seen == [(None, 0.0), (Status.RECEIVED, 1.0), (Status.VALIDATING, 2.0), (Status.REJECTED, 3.0)]


def test_watch_times_out_at_the_timeout_not_after_a_last_full_interval() -> None:
    fake = FakeTime()
    result = watch_version(
        lambda: record(Status.WARMING), lambda r, e: None, interval=4.0, timeout=10, clock=fake.clock, sleep=fake.sleep
    )
    assert result.timed_out and result.record is not None and result.record.status is Status.WARMING
    assert fake.now == 10.0


# -- argument errors: nothing is uploaded ---------------------------------------------------------
@pytest.fixture
def no_upload(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    monkeypatch.setattr(push, "push_tarball", lambda *a, **k: calls.append(a))
    return calls


@pytest.mark.parametrize("filename", ["fraud.tar.gz", "fraud_v1.tar.gz", "fraud_1.tgz", "_1.tar.gz"])
def test_push_refuses_a_misnamed_tarball_before_any_upload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_upload: list[Any], filename: str
) -> None:
    tarball = tmp_path / filename
    tarball.write_bytes(pack(single_python_repo()))
    assert cli.main(["push", str(tarball), "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "<model_name>_<model_version>.tar.gz" in err and "Traceback" not in err
    assert no_upload == []


def test_push_refuses_a_missing_file_and_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_upload: list[Any]
) -> None:
    assert cli.main(["push", str(tmp_path / "fraud_1.tar.gz"), "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    folder = tmp_path / "fraud_2.tar.gz"
    folder.mkdir()
    assert cli.main(["push", str(folder), "--state-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "is a directory" in capsys.readouterr().err
    assert no_upload == []


def test_push_and_status_without_a_stack_say_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_upload: list[Any]
) -> None:
    tarball = tmp_path / "fraud_1.tar.gz"
    tarball.write_bytes(pack(single_python_repo()))
    state_dir = tmp_path / "nostack"
    assert cli.main(["push", str(tarball), "--state-dir", str(state_dir)]) == cli.EXIT_USAGE
    assert f"mmedeploy up --detach --state-dir {state_dir}" in capsys.readouterr().err
    assert cli.main(["status", "fraud", "1", "--state-dir", str(state_dir)]) == cli.EXIT_USAGE
    assert "no local stack is running" in capsys.readouterr().err
    assert no_upload == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "fraud", "--watch"], "--watch follows one version"),
        (["status", "fraud", "1", "--watch", "--interval", "0"], "must be more than 0"),
        (["status", "fraud", "1", "--timeout", "soon"], "is not a number"),
    ],
)
def test_status_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_status_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--help"]) == 0
    text = capsys.readouterr().out
    assert (
        "exit codes" in text
        and "REJECTED, FAILED, EXPIRED, DECLINED or ROLLED_BACK" in text
        and "3  no such model" in text
    )


# -- against AWS in-process (moto) ------------------------------------------------------------------
INVOKE_TOKEN = "invoke-token-123"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serve_fake_api() as fake:
        yield fake


@pytest.fixture
def fake_aws(api: FakeApi) -> Iterator[DeploymentTarget]:
    """The staging bucket and the registry table on moto; the registry read only through the
    stand-in API (which answers its routes from the table) with the invoke token."""
    with mock_aws():
        session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
        session.client("s3").create_bucket(Bucket=BUCKET)
        create_registry_table(session.client("dynamodb"), TABLE)
        api.registry = ModelRegistry(TABLE, session.client("dynamodb"))
        yield DeploymentTarget("moto", "us-east-1", BUCKET, TABLE, session, api_url=api.url, api_token=INVOKE_TOKEN)


def register(fake: DeploymentTarget, status: Status, version: str = "1") -> None:
    registry = ModelRegistry(TABLE, fake.client("dynamodb"))
    registry.register(record(Status.RECEIVED, version=version), "s3-upload", "uploaded")
    if status is not Status.RECEIVED:
        registry.transition("fraud", version, Status.VALIDATING, "pipeline/validate")
        registry.transition("fraud", version, status, "pipeline/validate", "2 error(s)")


def test_push_json_names_the_object(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_aws: Any) -> None:
    tarball = tmp_path / "fraud_1.2.tar.gz"
    tarball.write_bytes(pack(single_python_repo(version="1.2")))
    assert cli.main(["push", str(tarball), "--json"], target=fake_aws) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"bucket", "key", "etag", "version_id", "size"}
    assert (document["bucket"], document["key"], document["size"]) == (
        BUCKET,
        "fraud_1.2.tar.gz",
        tarball.stat().st_size,
    )
    head = fake_aws.client("s3").head_object(Bucket=BUCKET, Key="fraud_1.2.tar.gz")
    assert head["ETag"].strip('"') == document["etag"]


def test_push_human_output_gives_the_uri_and_the_watch_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_aws: Any
) -> None:
    tarball = tmp_path / "fraud_3.tar.gz"
    tarball.write_bytes(pack(single_python_repo(version="3")))
    assert cli.main(["push", str(tarball)], target=fake_aws) == 0
    out = capsys.readouterr().out
    assert f"s3://{BUCKET}/fraud_3.tar.gz" in out and "etag" in out
    assert "mmedeploy status fraud 3 --watch" in out
    assert "━" not in out  # no progress bar when not a terminal


def test_status_json_found_and_not_found(capsys: pytest.CaptureFixture[str], fake_aws: Any) -> None:
    register(fake_aws, Status.REJECTED)
    assert cli.main(["status", "fraud", "1", "--json"], target=fake_aws) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "REJECTED"
    assert [h["status"] for h in document["history"]] == ["RECEIVED", "VALIDATING", "REJECTED"]
    assert cli.main(["status", "fraud", "--json"], target=fake_aws) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)["versions"]] == ["1"]

    assert cli.main(["status", "fraud", "9"], target=fake_aws) == cli.EXIT_NOT_FOUND
    assert "no version 9 of model fraud" in capsys.readouterr().err
    assert cli.main(["status", "nosuchmodel"], target=fake_aws) == cli.EXIT_NOT_FOUND
    assert "no versions of model nosuchmodel" in capsys.readouterr().err
    assert cli.main(["status", "fraud_1.tar.gz"], target=fake_aws) == cli.EXIT_NOT_FOUND
    assert "did you mean: mmedeploy status fraud 1" in capsys.readouterr().err


def test_status_watch_exit_codes_and_log_lines(capsys: pytest.CaptureFixture[str], fake_aws: Any) -> None:
    register(fake_aws, Status.REJECTED, "1")
    assert cli.main(["status", "fraud", "1", "--watch"], target=fake_aws) == 1
    out = capsys.readouterr().out
    assert out.count("REJECTED") >= 2 and "pipeline/validate" in out  # a line per history entry, then the view

    assert cli.main(["status", "fraud", "1", "--watch", "--json"], target=fake_aws) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "REJECTED"

    register(fake_aws, Status.RECEIVED, "2")
    code = cli.main(
        ["status", "fraud", "2", "--watch", "--json", "--interval", "0.01", "--timeout", "0.05"], target=fake_aws
    )
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["status"] == "RECEIVED"
    assert "still RECEIVED after 0.05 s" in captured.err

    code = cli.main(["status", "fraud", "7", "--watch", "--interval", "0.01", "--timeout", "0.03"], target=fake_aws)
    assert code == 1 and "was not registered within 0.03 s" in capsys.readouterr().err
