"""One data path: the CLI reads the registry only through the API's registry routes, with the
invoke token (the target's registry table does not even exist here), follows with backoff,
stops on Ctrl-C with one line and exit 130; ``push`` validates first and goes multipart for
large tarballs; ``approve``/``decline`` on a deployed stack are Slack's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.adapters.registry import ModelRegistry
from chalicelib.domain.lifecycle import Status
from mmedeploy import cli, push
from mmedeploy.follow import backoff_s, poll_version
from mmedeploy.registry_client import RegistryUnavailable, find_model, find_version
from mmedeploy.target import DeploymentTarget
from testkit.tarballs import pack, single_python_repo
from tests.unit.builders import a_version
from tests.unit.fake_api import FakeApi, closed_port_url, serve_fake_api
from tests.unit.registry_table import create_registry_table

BUCKET, TABLE = "unit-staging", "unit-registry"
INVOKE_TOKEN, ADMIN_TOKEN = "invoke-token-1", "admin-token-1"
MIB = 1024 * 1024


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serve_fake_api() as fake:
        yield fake


@pytest.fixture
def deployed(api: FakeApi) -> Iterator[DeploymentTarget]:
    """A deployed stack as the CLI sees it: a staging bucket, an API with tokens, no Slack signing
    secret, and a registry table name the CLI's credentials cannot read (it does not exist)."""
    with mock_aws():
        session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        create_registry_table(session.client("dynamodb"), TABLE)
        api.registry = ModelRegistry(TABLE, session.client("dynamodb"))  # the API's, not the CLI's
        yield DeploymentTarget(
            "the staging stack",
            "us-east-1",
            BUCKET,
            "no-such-table",
            session,
            api_url=api.url,
            api_token=INVOKE_TOKEN,
            admin_token=ADMIN_TOKEN,
        )


def walk(api: FakeApi, version: str, path: list[Status], approval_id: str | None = None) -> None:
    registry: ModelRegistry = api.registry
    registry.register(a_version(version, bucket=BUCKET), "s3-upload", "uploaded")
    for status in path:
        changes = (lambda _: {"approval_id": approval_id}) if status is Status.AWAITING_APPROVAL else None
        registry.transition("fraud", version, status, "pipeline/test", f"now {status.value}", changes)


TO_AWAITING = [Status.VALIDATING, Status.VALIDATED, Status.WARMING, Status.STAGED, Status.AWAITING_APPROVAL]


# -- reads go through the API, with the invoke token ------------------------------------------------
def test_status_reads_only_the_api_with_the_invoke_token(
    api: FakeApi, deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    walk(api, "1", [Status.VALIDATING, Status.REJECTED])
    walk(api, "2", TO_AWAITING)
    assert cli.main(["status", "fraud", "2", "--json"], target=deployed) == 0
    version = json.loads(capsys.readouterr().out)
    assert version["status"] == "AWAITING_APPROVAL" and [h["status"] for h in version["history"]][-1] == (
        "AWAITING_APPROVAL"
    )
    assert cli.main(["status", "fraud", "--json"], target=deployed) == 0
    model = json.loads(capsys.readouterr().out)
    assert set(model) == {"name", "versions", "aliases", "production", "canary"}  # status --json keeps its shape
    assert [(v["version"], v["status"]) for v in model["versions"]] == [("1", "REJECTED"), ("2", "AWAITING_APPROVAL")]
    assert set(model["versions"][0]) == {"version", "status", "reason", "uploaded_at", "updated_at"}
    assert model["aliases"] == {} and model["production"] is None
    assert {sent.headers["authorization"] for sent in api.requests} == {f"Bearer {INVOKE_TOKEN}"}
    assert {sent.method for sent in api.requests} == {"GET"}


def test_a_model_listing_follows_every_page_and_sorts_by_upload(api: FakeApi, deployed: DeploymentTarget) -> None:
    first = {
        "name": "fraud",
        "versions": [{"version": "2", "status": "STAGED", "uploaded_at": "2025-01-02", "updated_at": "u"}],
        "production": {"name": "fraud", "version": "1", "previous": None, "revision": 3, "updated_at": "u",
                       "actor": "a"},
        "canary": None,
        "next": "tok",
    }  # fmt: skip
    second = {
        "name": "fraud",
        "versions": [{"version": "1", "status": "PRODUCTION", "uploaded_at": "2025-01-01", "updated_at": "u"}],
        "next": None,
    }
    api.answer("GET", "/models/fraud?limit=1000", 200, first)
    api.answer("GET", "/models/fraud?limit=1000&next=tok", 200, second)
    listing = find_model(deployed, "fraud")
    assert listing is not None and [line.version for line in listing.versions] == ["1", "2"]
    assert listing.routes.production is not None and listing.routes.production.version == "1"


@pytest.mark.parametrize(
    ("status", "code", "said"),
    [
        (403, cli.EXIT_USAGE, "refused the invoke token of the staging stack"),
        (503, cli.EXIT_USAGE, "failed (HTTP 503)"),
    ],
)
def test_a_refused_or_failed_read_says_why(
    api: FakeApi, deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str], status: int, code: int, said: str
) -> None:
    api.answer("GET", "/models/fraud/versions/1", status, {"error": "no"})
    assert cli.main(["status", "fraud", "1"], target=deployed) == code
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- following: backoff on failures, Ctrl-C --------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def busy(retry_after: str | None = None) -> RegistryUnavailable:
    from mmedeploy.admin_api import ApiAnswer

    headers = {"retry-after": retry_after} if retry_after else {}
    return RegistryUnavailable("busy", ApiAnswer(503, {"error": "busy"}, headers))


def test_backoff_doubles_to_a_cap_and_honours_retry_after() -> None:
    whole = [backoff_s(1.0, failures, jitter=lambda: 1.0) for failures in range(1, 8)]
    assert whole == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_s(1.0, 3, jitter=lambda: 0.0) == 2.0  # jittered down to half
    assert backoff_s(1.0, 1, retry_after=7.0, jitter=lambda: 1.0) == 7.0


def test_a_poll_backs_off_while_reads_fail_then_goes_on() -> None:
    reads: list[Any] = [busy(), busy("5"), a_version(status=Status.REJECTED)]
    fake = FakeTime()
    seen: list[Status | None] = []

    def fetch() -> Any:
        read = reads.pop(0)
        if isinstance(read, Exception):
            raise read
        return read

    result = poll_version(
        fetch,
        lambda record, elapsed: seen.append(record.status if record else None),
        lambda record: record.status is Status.REJECTED,
        interval=0.5,
        timeout=60,
        clock=fake.clock,
        sleep=fake.sleep,
        retry_on=(RegistryUnavailable,),
        jitter=lambda: 1.0,
    )
    assert result.record is not None and not result.timed_out and seen == [Status.REJECTED]
    assert fake.sleeps == [1.0, 5.0]  # backed off, then at least Retry-After


def test_a_failure_still_there_at_the_timeout_is_raised() -> None:
    fake = FakeTime()

    def fetch() -> Any:
        raise busy()

    with pytest.raises(RegistryUnavailable):
        poll_version(
            fetch, lambda r, e: None, lambda r: True, 1.0, 10.0, fake.clock, fake.sleep, (RegistryUnavailable,)
        )
    assert fake.now == 10.0


def test_status_watch_rides_out_a_throttled_api(
    api: FakeApi, deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    walk(api, "1", [Status.VALIDATING, Status.REJECTED])
    path = "/models/fraud/versions/1"
    api.answer("GET", path, 429, {"error": "Too Many Requests"}, Retry_After="0")
    reads: list[int] = []

    def throttled_once() -> None:  # runs before the answer is chosen: the second read is served
        reads.append(1)
        if len(reads) == 2:
            api.answers.pop(("GET", path))

    api.hooks[path] = throttled_once
    monkeypatch.setattr("mmedeploy.follow.backoff_s", lambda *a, **k: 0.01)
    code = cli.main(["status", "fraud", "1", "--watch", "--json", "--interval", "0.01"], target=deployed)
    assert code == 1 and json.loads(capsys.readouterr().out)["status"] == "REJECTED"
    assert [sent.path for sent in api.requests] == [path, path]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["status", "fraud", "1", "--watch"], "stopped watching; the deployment goes on: mmedeploy status fraud 1"),
        (["promote", "fraud", "1"], "stopped waiting; the promotion goes on: mmedeploy status fraud 1 --watch"),
        (["redeploy", "fraud", "1", "--watch"], "stopped watching; the deployment goes on"),
    ],
)
def test_ctrl_c_while_following_is_one_line_and_exit_130(
    api: FakeApi,
    deployed: DeploymentTarget,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    said: str,
) -> None:
    walk(api, "1", [Status.VALIDATING, Status.VALIDATED])
    api.answer("POST", "/models/fraud/versions/1/promote", 202, {"name": "fraud", "version": "1", "status": "APPROVED"})
    api.answer("POST", "/models/fraud/versions/1/redeploy", 202, {"name": "fraud", "version": "1"})
    reads = {"n": 0}

    def interrupted_on_second_read(target: Any, name: str, version: str) -> Any:
        reads["n"] += 1
        if reads["n"] >= 2:
            raise KeyboardInterrupt
        return find_version(target, name, version)

    monkeypatch.setattr("mmedeploy.registry_client.find_version", interrupted_on_second_read)
    assert cli.main([*argv, "--interval", "0.01"], target=deployed) == 130
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- approve / decline on a deployed stack ------------------------------------------------------------
@pytest.mark.parametrize("command", ["approve", "decline"])
def test_approve_and_decline_on_a_deployed_stack_are_slacks(
    api: FakeApi, deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    walk(api, "1", TO_AWAITING, approval_id="apv_0123456789abcdef")
    assert cli.main([command, "fraud", "1", "--user", "U0APPROVER"], target=deployed) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "approvals are made in Slack" in err and "mmedeploy promote fraud 1" in err
    assert api.requests == []  # nothing signed, nothing sent


# -- push -------------------------------------------------------------------------------------------
def test_push_validates_first_and_refuses_an_invalid_tarball(
    tmp_path: Path, deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    files = single_python_repo(version="4")
    del files["model_version.txt"]
    tarball = tmp_path / "fraud_4.tar.gz"
    tarball.write_bytes(pack(files))
    assert cli.main(["push", str(tarball)], target=deployed) == cli.EXIT_INVALID
    captured = capsys.readouterr()
    assert "VERSION_FILE_MISSING" in captured.out and "not uploaded: fraud_4.tar.gz is invalid" in captured.err
    s3 = deployed.client("s3")
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0

    assert cli.main(["push", str(tarball), "--no-validate", "--json"], target=deployed) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["key"] == "fraud_4.tar.gz" and document["version_id"]  # the bucket keeps versions
    head = s3.head_object(Bucket=BUCKET, Key="fraud_4.tar.gz")
    assert (head["VersionId"], head["ETag"].strip('"')) == (document["version_id"], document["etag"])


def test_push_prints_the_version_id(
    tmp_path: Path, deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = tmp_path / "fraud_5.tar.gz"
    tarball.write_bytes(pack(single_python_repo(version="5")))
    assert cli.main(["push", str(tarball)], target=deployed) == 0
    head = deployed.client("s3").head_object(Bucket=BUCKET, Key="fraud_5.tar.gz")
    assert f"version id {head['VersionId']}" in capsys.readouterr().out


class CountingTarget:
    """The target's S3 client, with a count of the requests it sends per operation."""

    def __init__(self, target: DeploymentTarget) -> None:
        self.target = target
        self.staging_bucket = target.staging_bucket
        self.calls: list[str] = []

    def client(self, service: str) -> Any:
        client = self.target.client(service)
        client.meta.events.register("before-call.s3", lambda model, **_: self.calls.append(model.name))
        return client


def test_a_large_tarball_goes_up_in_parts(tmp_path: Path, deployed: DeploymentTarget) -> None:
    # GIVEN a 12 MiB tarball and a 5 MiB threshold and part size (the multipart minimum)
    tarball = tmp_path / "fraud_6.tar.gz"
    tarball.write_bytes(b"\0" * (12 * MIB))
    counting = CountingTarget(deployed)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2)
    sent: list[int] = []
    # WHEN it is pushed
    result = push.push_tarball(cast(DeploymentTarget, counting), tarball, sent.append, config=config)
    # THEN three parts, no single PUT, and the bar saw every byte
    assert counting.calls.count("UploadPart") == 3 and "PutObject" not in counting.calls
    assert counting.calls.count("CreateMultipartUpload") == 1 and counting.calls.count("CompleteMultipartUpload") == 1
    assert sum(sent) == 12 * MIB and result.size == 12 * MIB and result.version_id
    head = deployed.client("s3").head_object(Bucket=BUCKET, Key="fraud_6.tar.gz")
    assert head["ContentLength"] == 12 * MIB and head["VersionId"] == result.version_id


def test_the_default_transfer_is_multipart_for_5_gb() -> None:
    assert push.TRANSFER.multipart_threshold <= 5 * 1024 * MIB // 2
    assert 5 * 10**9 / push.TRANSFER.multipart_chunksize < 10_000  # within S3's part count


def test_a_transient_failure_starts_the_upload_again(
    tmp_path: Path, deployed: DeploymentTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = tmp_path / "fraud_7.tar.gz"
    tarball.write_bytes(b"x" * 1000)
    counting = CountingTarget(deployed)
    failures = {"left": 1}

    def slow_down(model: Any, **_: Any) -> None:
        if model.name == "PutObject" and failures["left"]:
            failures["left"] -= 1
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "slow"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
                "PutObject",
            )

    real_client = counting.client

    def client(service: str) -> Any:
        made = real_client(service)
        made.meta.events.register("before-call.s3", slow_down)
        return made

    monkeypatch.setattr(counting, "client", client)
    waits: list[float] = []
    result = push.push_tarball(cast(DeploymentTarget, counting), tarball, sleep=waits.append)
    assert result.size == 1000 and waits == [2.0] and counting.calls.count("PutObject") == 2


def test_a_lasting_refusal_is_not_retried(tmp_path: Path, deployed: DeploymentTarget) -> None:
    tarball = tmp_path / "fraud_8.tar.gz"
    tarball.write_bytes(b"x" * 1000)
    nowhere = replace(deployed, staging_bucket="no-such-bucket")
    waits: list[float] = []
    with pytest.raises(Exception, match="NoSuchBucket"):
        push.push_tarball(nowhere, tarball, sleep=waits.append)
    assert waits == []


def test_a_watch_whose_api_never_answers_fails_at_once(
    deployed: DeploymentTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    down = replace(deployed, api_url=closed_port_url())
    assert cli.main(["status", "fraud", "1", "--watch", "--timeout", "600"], target=down) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "cannot reach" in err and "Traceback" not in err


def test_an_api_lost_after_answering_is_asked_again(api: FakeApi, deployed: DeploymentTarget) -> None:
    from mmedeploy.admin_api import ApiUnreachable
    from mmedeploy.registry_client import version_reader

    walk(api, "1", [Status.VALIDATING])
    read = version_reader(deployed, "fraud", "1")
    assert read() is not None
    lost = version_reader(replace(deployed, api_url=closed_port_url()), "fraud", "1")
    with pytest.raises(ApiUnreachable):
        lost()  # never answered: nothing to wait for
    reader = version_reader(deployed, "fraud", "1")
    reader()
    object.__setattr__(deployed, "api_url", closed_port_url())  # the API goes away mid-watch
    with pytest.raises(RegistryUnavailable, match="cannot reach"):
        reader()
