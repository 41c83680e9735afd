"""The deployed Triton's schema (issue 19, item 2): a config field newer than the Triton the
endpoints run is an error naming the version that introduced it; the version is read in one place
(template default, settings, CLI); the release table covers the compiled schema and is what its
generator makes of Triton's git history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from google.protobuf import descriptor
from moto import mock_aws

from chalicelib.domain.validation.findings import Code, Severity
from chalicelib.domain.validation.schemas import model_config_pb2
from chalicelib.domain.validation.schemas.triton_fields import INTRODUCED, RELEASES
from chalicelib.domain.validation.triton_release import DEFAULT_CONTAINER, DEFAULT_TRITON, TritonVersion, resolve
from chalicelib.settings import Settings
from mmedeploy import cli
from mmedeploy.deploy import triton_fields
from mmedeploy.project_files import CLONE
from mmedeploy.target import DeploymentTarget
from testkit.tarballs import codes, pack, python_config, single_python_repo, validate_bytes, write_tree

METRICS = 'model_metrics { metric_control { metric_identifier { family: "nv_inference_request_duration" } } }'
SETTINGS = {
    name: "x"
    for name in (
        "staging_bucket",
        "production_bucket",
        "registry_table",
        "idempotency_table",
        "staging_endpoint",
        "production_endpoint",
        "deploy_state_machine_arn",
        "promote_state_machine_arn",
        "slack_bot_token_secret",
        "slack_signing_secret",
        "api_tokens_secret",
    )
}


def simple(extra: str) -> bytes:
    return pack({**single_python_repo(), "simple/config.pbtxt": python_config("simple", extra=extra)})


def v(text: str) -> TritonVersion:
    return TritonVersion.parse(text)


# -- the check ----------------------------------------------------------------------------------


def test_model_metrics_is_refused_at_the_deployed_2_50_naming_the_version_that_introduced_it() -> None:
    report = validate_bytes(simple(METRICS))

    assert not report.valid
    (finding,) = [f for f in report.findings if f.code is Code.CONFIG_FIELD_UNSUPPORTED]
    assert finding.severity is Severity.ERROR and finding.path == "simple/config.pbtxt"
    assert "model_metrics (ModelConfig.model_metrics)" in finding.message
    assert "Triton 2.52.0 (container 24.11) introduced" in finding.message
    assert "runs Triton 2.50.0 (container 24.09)" in finding.message
    assert "Remove it" in finding.message and "--triton-version 2.52.0" in finding.message
    # one finding per field: its nested fields, also 2.52's, are not reported again
    assert sum(f.code is Code.CONFIG_FIELD_UNSUPPORTED for f in report.findings) == 1


def test_model_metrics_is_accepted_by_a_triton_that_has_it() -> None:
    for version in ("2.52", "2.52.0", "24.11", "2.64"):
        report = validate_bytes(simple(METRICS), triton_version=v(version))
        assert report.valid, (version, codes(report))


def test_a_plain_config_and_the_examples_pass_at_the_default() -> None:
    assert validate_bytes(pack(single_python_repo())).valid


@pytest.mark.parametrize(
    ("extra", "where", "introduced"),
    [
        # a field inside a map value (priority_queue_policy: map<uint64, ModelQueuePolicy>) is not
        # 2.50-new, but a message in a repeated field, and an enum value, are walked too
        ("instance_group [ { count: 1 }, { count: 1, passive: true } ]", "instance_group[1].passive", "2.11.0"),
        ("ensemble_scheduling { max_inflight_requests: 4 }", "ensemble_scheduling.max_inflight_requests", "2.63.0"),
        ("sequence_batching { iterative_sequence: true }", "sequence_batching.iterative_sequence", "2.40.0"),
    ],
)
def test_nested_repeated_and_oneof_fields_are_walked(extra: str, where: str, introduced: str) -> None:
    report = validate_bytes(simple(extra), triton_version=v("2.10"))

    messages = [f.message for f in report.findings if f.code is Code.CONFIG_FIELD_UNSUPPORTED]
    assert any(f"sets {where} (" in m and f"Triton {introduced}" in m for m in messages), messages


def test_map_values_and_enum_values_are_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = (
        "dynamic_batching { priority_levels: 2 default_priority_level: 1 "
        "priority_queue_policy { key: 2 value { max_queue_size: 3 } } }"
    )
    report = validate_bytes(simple(queue), triton_version=v("2.1"))
    assert Code.CONFIG_FIELD_UNSUPPORTED not in {f.code for f in report.findings}  # all 2.0's (backend: 2.1)
    # no map value of the schema holds a field newer than its map: pretend one does
    monkeypatch.setitem(INTRODUCED, "ModelQueuePolicy.max_queue_size", ("2.60.0", "common@r25.08", "0" * 40))
    messages = [f.message for f in validate_bytes(simple(queue)).findings if f.code is Code.CONFIG_FIELD_UNSUPPORTED]
    assert messages and "sets dynamic_batching.priority_queue_policy[2].max_queue_size (" in messages[0]

    bf16 = python_config("simple", inputs='{ name: "IN", data_type: TYPE_BF16, dims: [ 4 ] }')
    files = {**single_python_repo(), "simple/config.pbtxt": bf16}
    messages = [
        f.message
        for f in validate_bytes(pack(files), triton_version=v("2.21")).findings
        if f.code is Code.CONFIG_FIELD_UNSUPPORTED
    ]
    assert messages and "input[0].data_type: TYPE_BF16 (DataType.TYPE_BF16)" in messages[0]
    assert "Triton 2.22.0" in messages[0]
    assert validate_bytes(pack(files), triton_version=v("2.22")).valid


# -- the version: one default, read in one place ----------------------------------------------------


def test_the_default_is_the_image_the_template_deploys() -> None:
    template = yaml.safe_load((CLONE / "infra" / "template.yaml").read_text())
    image = template["Parameters"]["TritonImage"]["Default"]
    assert TritonVersion.of_image(image) == DEFAULT_TRITON == v(DEFAULT_CONTAINER) == v("2.50.0")
    assert template["Parameters"]["TritonVersion"]["Default"] == "auto"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TRITON_IMAGE"] == {"Ref": "TritonImage"}
    assert variables["TRITON_VERSION"] == {"Ref": "TritonVersion"}


def test_versions_parse_from_a_version_a_container_release_or_an_image_tag() -> None:
    assert str(v("2.50")) == "2.50.0" and v("24.09") == v("2.50.0") and v("2.59.1") > v("2.59")
    assert TritonVersion.of_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.11-py3") == v(
        "2.52"
    )
    assert resolve() == resolve("auto", "") == DEFAULT_TRITON
    assert resolve("auto", "x/sagemaker-tritonserver:25.01-py3") == v("2.54")
    assert resolve("2.60", "x/sagemaker-tritonserver:25.01-py3") == v("2.60")
    for bad in ("latest", "2", "19.99"):
        with pytest.raises(ValueError):
            v(bad)
    with pytest.raises(ValueError, match="set it explicitly"):
        TritonVersion.of_image("registry/my-triton:latest")


def test_settings_read_the_version_from_the_environment() -> None:
    assert Settings(**SETTINGS).deployed_triton == DEFAULT_TRITON  # type: ignore[arg-type]
    image = "x/sagemaker-tritonserver:24.11-py3"
    assert Settings(**SETTINGS, triton_image=image).deployed_triton == v("2.52")  # type: ignore[arg-type]
    assert Settings(**SETTINGS, triton_image=image, triton_version="2.60").deployed_triton == v("2.60")  # type: ignore[arg-type]


def test_an_unreadable_version_fails_only_the_validate_stage_not_the_other_functions() -> None:
    # GIVEN an image whose tag names no container release, and no TritonVersion
    settings = Settings(**SETTINGS, triton_image="registry/my-triton:latest")  # type: ignore[arg-type]
    # THEN the settings every function reads still build (the inference API starts) ...
    assert settings.approvers is not None
    # ... and the Validate stage, which reads the version, fails saying what to set
    with pytest.raises(ValueError, match="set it explicitly"):
        settings.deployed_triton  # noqa: B018


# -- the data file ----------------------------------------------------------------------------------


def _schema_names(message: descriptor.Descriptor) -> set[str]:
    prefix = message.full_name.removeprefix("inference.")
    names = set() if message.GetOptions().map_entry else {f"{prefix}.{f.name}" for f in message.fields}
    for enum in message.enum_types:
        names |= {f"{enum.full_name.removeprefix('inference.')}.{value.name}" for value in enum.values}
    for nested in message.nested_types:
        names |= _schema_names(nested)
    return names


def test_the_data_file_covers_every_field_and_enum_value_of_the_compiled_schema() -> None:
    schema = model_config_pb2.DESCRIPTOR
    names: set[str] = set()
    for message in schema.message_types_by_name.values():
        names |= _schema_names(message)
    for enum in schema.enum_types_by_name.values():
        names |= {f"{enum.name}.{value.name}" for value in enum.values}
    assert "ModelDynamicBatching.priority_queue_policy" in names and "DataType.TYPE_BF16" in names
    assert not names - INTRODUCED.keys(), "run 'make triton-fields' and commit the result"
    for name, (version, source, commit) in INTRODUCED.items():
        assert version in RELEASES.values(), name
        assert source.split("@")[0] in ("common", "server") and len(commit) == 40, name
    assert INTRODUCED["ModelConfig.model_metrics"][0] == "2.52.0" and RELEASES["24.09"] == "2.50.0"


def test_the_data_file_is_what_the_generator_renders() -> None:
    """Its text is the renderer's (so a regeneration changes only what Triton's history changed)."""
    text = (CLONE / "chalicelib/domain/validation/schemas/triton_fields.py").read_text()
    releases = [
        triton_fields.Release(container, version, "", Path(), "", "") for container, version in RELEASES.items()
    ]
    entries = [triton_fields.Entry(name, *values) for name, values in INTRODUCED.items()]
    assert triton_fields.render(releases, entries) == text


# -- the generator ----------------------------------------------------------------------------------

TINY = """
syntax = "proto3";
package inference;
// message Commented { int32 not_a_field = 1; }
/* enum Hidden { NOPE = 0; } */
enum DataType { TYPE_INVALID = 0; TYPE_FP32 = 11; }
message ModelConfig {
  string name = 1;  //@@ a comment with { braces }
  repeated ModelInput input = 2 [packed = true];
  map<string, Policy> policy = 3;
  message Policy {
    enum Action { REJECT = 0; }
    Action action = 1;
    reserved 2, 3;
    option deprecated = true;
  }
  oneof choice { int32 a = 4; string b = 5; }
}
message ModelInput { optional bool optional = 1; }
"""


def test_the_generator_parses_fields_oneofs_maps_nested_messages_and_enum_values() -> None:
    assert triton_fields.parse_proto(TINY) == {
        "DataType.TYPE_INVALID",
        "DataType.TYPE_FP32",
        "ModelConfig.name",
        "ModelConfig.input",
        "ModelConfig.policy",
        "ModelConfig.Policy.Action.REJECT",
        "ModelConfig.Policy.action",
        "ModelConfig.a",
        "ModelConfig.b",
        "ModelInput.optional",
    }


def test_the_generator_parses_the_compiled_schemas_source_as_protoc_did() -> None:
    source = (CLONE / "chalicelib/domain/validation/schemas/model_config.proto").read_text()
    names: set[str] = set()
    for message in model_config_pb2.DESCRIPTOR.message_types_by_name.values():
        names |= _schema_names(message)
    for enum in model_config_pb2.DESCRIPTOR.enum_types_by_name.values():
        names |= {f"{enum.name}.{value.name}" for value in enum.values}
    assert triton_fields.parse_proto(source) == names


def _commit(git: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (git / name).parent.mkdir(parents=True, exist_ok=True)
        (git / name).write_text(text)
    subprocess.run(["git", "-C", str(git), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(git), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], check=True
    )


def test_the_generator_dates_each_field_by_the_first_release_branch_that_has_it(tmp_path: Path) -> None:
    """Two tiny mirrors: the server's r20.06 (its own proto), common's r21.05 and r21.06."""
    server, common = tmp_path / "server", tmp_path / "common"
    for git in (server, common):
        git.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(git)], check=True)
    _commit(server, {"VERSION": "2.0.0\n", triton_fields.SERVER_PROTO: "message M { int32 a = 1; }"}, "2.0")
    subprocess.run(["git", "-C", str(server), "branch", "r20.06"], check=True)
    _commit(server, {"VERSION": "2.10.0\n", "TRITON_VERSION": "2.10.0\n"}, "2.10")
    subprocess.run(["git", "-C", str(server), "branch", "r21.05"], check=True)
    _commit(server, {"TRITON_VERSION": "2.11.0\n"}, "2.11")
    subprocess.run(["git", "-C", str(server), "branch", "r21.06"], check=True)
    _commit(common, {triton_fields.COMMON_PROTO: "message M { int32 a = 1; }"}, "moved")
    subprocess.run(["git", "-C", str(common), "branch", "r21.05"], check=True)
    _commit(common, {triton_fields.COMMON_PROTO: "message M { int32 a = 1; int32 b = 2; }"}, "add b")
    subprocess.run(["git", "-C", str(common), "branch", "r21.06"], check=True)
    added = subprocess.run(
        ["git", "-C", str(common), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()

    text = triton_fields.generate(common / ".git", server / ".git")

    namespace: dict[str, object] = {}
    exec(compile(text, "triton_fields.py", "exec"), namespace)
    assert namespace["RELEASES"] == {"20.06": "2.0.0", "21.05": "2.10.0", "21.06": "2.11.0"}
    introduced = namespace["INTRODUCED"]
    assert isinstance(introduced, dict)
    assert introduced["M.a"][:2] == ("2.0.0", "server@r20.06")
    assert introduced["M.b"] == ("2.11.0", "common@r21.06", added)


# -- the CLI --------------------------------------------------------------------------------------


def test_validate_takes_the_triton_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tarball = tmp_path / "simple_1.tar.gz"
    tarball.write_bytes(simple(METRICS))

    assert cli.main(["validate", str(tarball), "--json"]) == cli.EXIT_INVALID
    assert "Triton 2.50.0" in json.loads(capsys.readouterr().out)["findings"][0]["message"]
    assert cli.main(["validate", str(tarball)]) == cli.EXIT_INVALID
    assert cli.main(["validate", str(tarball), "--triton-version", "2.52"]) == 0
    assert cli.main(["validate", str(tarball), "--triton-version", "24.11", "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["validate", str(tarball), "--triton-version", "latest"]) == cli.EXIT_USAGE
    assert "is not a Triton version" in capsys.readouterr().err


def test_package_takes_the_triton_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a source folder whose config sets a field Triton 2.52 introduced
    source = tmp_path / "src"
    write_tree(source, {**single_python_repo(), "simple/config.pbtxt": python_config("simple", extra=METRICS)})
    argv = ["package", str(source), "--name", "simple", "--version", "1", "-o", str(tmp_path / "out")]
    # WHEN packaged for the default endpoints (2.50) THEN refused, nothing written
    assert cli.main([*argv, "--json"]) == cli.EXIT_INVALID
    assert "Triton 2.50.0" in json.loads(capsys.readouterr().out)["findings"][0]["message"]
    assert not (tmp_path / "out" / "simple_1.tar.gz").exists()
    # WHEN packaged for endpoints that run 2.52 THEN written
    assert cli.main([*argv, "--triton-version", "24.11"]) == 0
    assert (tmp_path / "out" / "simple_1.tar.gz").exists()


def test_push_validates_against_the_targets_triton(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tarball = tmp_path / "simple_1.tar.gz"
    tarball.write_bytes(simple(METRICS))
    with mock_aws():
        session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="staging")

        def target(**outputs: str) -> DeploymentTarget:
            return DeploymentTarget("moto", "us-east-1", "staging", "registry", session, outputs=outputs)

        # a stack whose outputs predate them: the template's default (2.50) refuses it
        assert cli.main(["push", str(tarball), "--json"], target=target()) == cli.EXIT_INVALID
        assert "Triton 2.50.0" in json.loads(capsys.readouterr().out)["findings"][0]["message"]
        old = target(TritonImage="x/sagemaker-tritonserver:24.09-py3", TritonVersion="auto")
        assert cli.main(["push", str(tarball)], target=old) == cli.EXIT_INVALID
        newer = target(TritonImage="x/sagemaker-tritonserver:24.11-py3", TritonVersion="auto")
        assert cli.main(["push", str(tarball), "--json"], target=newer) == 0
        assert cli.main(["push", str(tarball)], target=target(TritonVersion="2.52")) == 0
        assert session.client("s3").head_object(Bucket="staging", Key="simple_1.tar.gz")["ContentLength"] > 0
