"""`make package`: the packaged SAM template, the Lambda zips and the IAM policy check.

``packaged_template`` is the real build of STAGE=staging (``build/staging``, built or reused by
``package.ensure_built``: the ``staging_package`` fixture of conftest.py). Assertions about the
deployed wiring go at the end of this file, next to the first test, written with the helpers
``resources_of_type(template, type)``, ``policy_statements(template, logical_id)`` and
``granted_actions(template, logical_id)``. The other tests use small synthetic inputs.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mmedeploy.deploy import package
from mmedeploy.deploy.app_modules import AppModuleError, app_files
from mmedeploy.deploy.lambda_zip import (
    DependencyLayer,
    LambdaPlatform,
    LambdaZipError,
    compile_bytecode,
    lambda_platform,
    merge_files,
    tree_files,
    write_zip,
)
from mmedeploy.deploy.policy_check import check_statement, check_template, policy_statements
from mmedeploy.deploy.policy_check import main as policy_check_main
from mmedeploy.deploy.template import (
    TemplateError,
    load_template,
    local_artifacts,
    make_packageable,
    missing_artifacts,
    properties,
    resources_of_type,
)

# with pytest-xdist (make test-unit), on one worker: they share build/staging (the staging_package fixture)
pytestmark = pytest.mark.xdist_group("staging_package")

ROOT = Path(__file__).resolve().parents[2]
STAGE = "staging"

# -- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packaged:
    path: Path  # .../sam.yaml
    template: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.path.parent


def granted_actions(template: dict[str, Any], logical_id: str) -> set[str]:
    """Every action the resource's policies allow (SAM policy templates expanded)."""
    actions: set[str] = set()
    for statement in policy_statements(template, logical_id):
        if statement.get("Effect", "Allow") == "Allow":
            value = statement.get("Action", [])
            actions.update([value] if isinstance(value, str) else value)
    return actions


@pytest.fixture(scope="session")
def packaged_template(staging_package: package.BuildResult) -> Packaged:
    return Packaged(staging_package.template_path, staging_package.template)


# -- the real package ---------------------------------------------------------------------------


def test_packaged_template_is_ready_for_cloudformation_package(packaged_template: Packaged) -> None:
    template, folder = packaged_template.template, packaged_template.folder

    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert functions
    for lid, function in functions.items():
        code = properties(function).get("CodeUri")
        assert isinstance(code, str), f"{lid}: CodeUri {code!r} is not a literal path"
        assert (folder / code).is_file(), f"{lid}: {code} is not next to the template"
    stage = [lid for lid, f in functions.items() if str(properties(f).get("Handler")).startswith("functions.")]
    assert stage and all(properties(functions[lid])["CodeUri"] == "./functions.zip" for lid in stage)

    machines = resources_of_type(template, "AWS::Serverless::StateMachine")
    assert machines
    for lid, machine in machines.items():
        definition = properties(machine).get("DefinitionUri")
        assert isinstance(definition, str) and "/" not in definition, f"{lid}: DefinitionUri {definition!r}"
        assert (folder / definition).is_file(), f"{lid}: {definition} is not next to the template"

    assert "FunctionsCodeUri" not in template.get("Parameters", {})
    assert missing_artifacts(template, folder) == []

    report = check_template(template)
    assert report.ok, "\n".join(str(offence) for offence in report.offences)

    with zipfile.ZipFile(folder / "functions.zip") as archive:
        names = set(archive.namelist())
    for lid in stage:
        module = str(properties(functions[lid])["Handler"]).rsplit(".", 1)[0]
        assert module.replace(".", "/") + ".py" in names, f"{lid}: its handler module is not in functions.zip"
    assert not {name for name in names if name.startswith(("tests/", "mmedeploy/", "examples/"))}


def test_the_stage_defaults_to_the_packaged_stage(packaged_template: Packaged) -> None:
    # Chalice names its functions mmedeploy-STAGE*: the template's resource names must agree
    assert packaged_template.template["Parameters"]["Stage"]["Default"] == STAGE


def test_uploads_to_the_staging_bucket_trigger_the_upload_function(packaged_template: Packaged) -> None:
    template = packaged_template.template
    trigger = properties(resources_of_type(template, "AWS::Serverless::Function")["OnModelUploaded"])
    pattern = trigger["Events"]["OnModelUploadedEvent"]["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "StagingBucket"}]  # the stack's bucket, by Ref
    assert pattern["detail"]["object"]["key"] == [{"suffix": ".tar.gz"}]
    staging = properties(template["Resources"]["StagingBucket"])
    assert staging["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert trigger["Environment"]["Variables"]["STAGING_BUCKET"] == {"Ref": "StagingBucket"}
    assert "states:StartExecution" in granted_actions(template, "OnModelUploadedRole")


def test_the_promotion_rule_starts_promote_model_with_retries_and_a_dead_letter_queue(
    packaged_template: Packaged,
) -> None:
    template = packaged_template.template
    rule = properties(template["Resources"]["PromotionRule"])
    assert rule["EventPattern"]["detail-type"] == ["ModelApproved", "PromotionRequested", "RolloutRequested"]
    assert rule["EventBusName"] == {"Fn::GetAtt": ["LifecycleBus", "Name"]}
    (target,) = rule["Targets"]
    machine_name = properties(template["Resources"]["PromoteModelStateMachine"])["Name"]["Fn::Sub"]
    assert target["Arn"]["Fn::Sub"].endswith(":stateMachine:" + machine_name)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["PromotionDeadLetterQueue", "Arn"]}
    role = properties(template["Resources"]["PromotionRuleRole"])
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:StartExecution" and statement["Resource"] == target["Arn"]
    queue_policy = properties(template["Resources"]["PromotionDeadLetterQueuePolicy"])
    condition = queue_policy["PolicyDocument"]["Statement"][0]["Condition"]
    assert condition["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["PromotionRule", "Arn"]}


def test_each_state_machine_invokes_exactly_its_own_stage_functions(packaged_template: Packaged) -> None:
    template = packaged_template.template
    for machine in ("DeployModelStateMachine", "PromoteModelStateMachine"):
        props = properties(template["Resources"][machine])
        substituted = {v["Fn::GetAtt"][0] for v in props["DefinitionSubstitutions"].values() if "Fn::GetAtt" in v}
        invoked = {p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in props["Policies"]}
        assert substituted == invoked, machine
        definition = (packaged_template.folder / props["DefinitionUri"]).read_text()
        assert all("${" + key + "}" in definition for key in props["DefinitionSubstitutions"]), machine


def test_both_endpoints_scale_on_invocations_per_instance(packaged_template: Packaged) -> None:
    template = packaged_template.template
    targets = resources_of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = resources_of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    scaled = {}
    for lid, target in targets.items():
        props = properties(target)
        assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        scaled[lid] = props["ResourceId"]["Fn::Sub"]
    assert scaled == {
        "ProductionScalableTarget": "endpoint/${ProductionEndpoint.EndpointName}/variant/AllTraffic",
        "StagingScalableTarget": "endpoint/${StagingEndpoint.EndpointName}/variant/AllTraffic",
    }
    tracked = {properties(p)["ScalingTargetId"]["Ref"]: properties(p) for p in policies.values()}
    assert set(tracked) == set(targets)
    for props in tracked.values():
        config = props["TargetTrackingScalingPolicyConfiguration"]
        assert (
            config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
        )
    for endpoint in ("StagingModel", "ProductionModel"):
        assert properties(template["Resources"][endpoint])["PrimaryContainer"]["Mode"] == "MultiModel"


def test_alarms_watch_the_api_the_pipelines_and_the_model_cache(packaged_template: Packaged) -> None:
    template = packaged_template.template
    alarms = {
        properties(a)["MetricName"]: properties(a)
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    assert {"5XXError", "ExecutionsFailed", "ModelLoadingWaitTime", "ModelCacheHit"} <= set(alarms)
    failures = [
        properties(a)["Dimensions"][0]["Value"]["Fn::Sub"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if properties(a)["MetricName"] == "ExecutionsFailed"
    ]
    assert sorted(f.rsplit(":", 1)[-1] for f in failures) == [
        "mmedeploy-${Stage}-deploy-model",
        "mmedeploy-${Stage}-promote-model",
    ]
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        assert properties(alarm)["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_storage_is_versioned_encrypted_private_recoverable_and_retained(packaged_template: Packaged) -> None:
    template = packaged_template.template
    for bucket in resources_of_type(template, "AWS::S3::Bucket").values():
        props = properties(bucket)
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert bucket["DeletionPolicy"] == "Retain"
    for table in resources_of_type(template, "AWS::DynamoDB::Table").values():
        assert properties(table)["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"


def test_chalices_functions_run_under_the_hand_written_roles(packaged_template: Packaged) -> None:
    template = packaged_template.template
    functions = resources_of_type(template, "AWS::Serverless::Function")
    for function, role in (
        ("APIHandler", "ApiHandlerRole"),
        ("BearerToken", "BearerTokenRole"),
        ("OnModelUploaded", "OnModelUploadedRole"),
    ):
        assert properties(functions[function])["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert granted_actions(template, "BearerTokenRole") - {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    } == {"secretsmanager:GetSecretValue"}
    api = granted_actions(template, "ApiHandlerRole")
    assert {"sagemaker:InvokeEndpoint", "states:SendTaskSuccess", "events:PutEvents"} <= api
    # its only S3 call: a redeploy checks that the pinned object version is still there
    assert {a for a in api if a.startswith(("s3:", "iam:", "lambda:"))} == {"s3:GetObjectVersion"}
    assert properties(functions["APIHandler"])["Timeout"] <= 29  # API Gateway's integration limit
    assert template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-binary-media-types"
    ] == ["*/*"]
    responses = {
        properties(r)["ResponseType"] for r in resources_of_type(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"UNAUTHORIZED", "ACCESS_DENIED"} <= responses


def test_people_attach_a_publisher_and_an_operator_policy(packaged_template: Packaged) -> None:
    template = packaged_template.template
    for logical in ("PublisherPolicy", "OperatorPolicy"):
        assert template["Resources"][logical]["Type"] == "AWS::IAM::ManagedPolicy"
        assert template["Outputs"][logical]["Value"] == {"Ref": logical}
    # the publisher puts tarballs into the staging bucket and nothing else (its reads are the API's)
    publisher = policy_statements(template, "PublisherPolicy")
    assert granted_actions(template, "PublisherPolicy") == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "cloudformation:DescribeStacks",
    }
    [push] = [statement for statement in publisher if "s3:PutObject" in statement["Action"]]
    assert push["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${StagingBucket}/*"}
    # promote, rollback, canary, redeploy: the admin token; the operator only resolves the target
    assert granted_actions(template, "OperatorPolicy") == {"cloudformation:DescribeStacks"}
    assert not any("execute-api" in action for action in granted_actions(template, "PublisherPolicy"))


# -- the template rewrite -----------------------------------------------------------------------


def _synthetic() -> dict[str, Any]:
    return {
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {
            "Stage": {"Type": "String"},
            "FunctionsCodeUri": {"Type": "String", "Default": "build/functions.zip"},
        },
        "Resources": {
            "APIHandler": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": "app.app", "CodeUri": "./deployment.zip"},
            },
            "ValidateFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": "functions.validate.handler", "CodeUri": {"Ref": "FunctionsCodeUri"}},
            },
            "FlipFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": "functions.flip.handler", "CodeUri": {"Ref": "FunctionsCodeUri"}},
            },
            "DeployModel": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {
                    "DefinitionUri": "functions/deploy.asl.json",
                    "DefinitionSubstitutions": {"Validate": {"Fn::GetAtt": ["ValidateFunction", "Arn"]}},
                },
            },
        },
        "Outputs": {"Stage": {"Value": {"Fn::Sub": "${Stage}"}}},
    }


@pytest.fixture
def source_root(tmp_path: Path) -> Path:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "deploy.asl.json").write_text('{"StartAt": "A", "States": {}}')
    return tmp_path


def test_rewrite_points_stage_functions_at_the_zip_and_drops_their_parameter(source_root: Path) -> None:
    original = _synthetic()
    result = make_packageable(original, source_root=source_root)

    functions = resources_of_type(result.template, "AWS::Serverless::Function")
    assert properties(functions["ValidateFunction"])["CodeUri"] == "./functions.zip"
    assert properties(functions["FlipFunction"])["CodeUri"] == "./functions.zip"
    assert properties(functions["APIHandler"])["CodeUri"] == "./deployment.zip"
    assert result.stage_functions == ("ValidateFunction", "FlipFunction")
    assert result.removed_parameters == ("FunctionsCodeUri",)
    assert list(result.template["Parameters"]) == ["Stage"]  # still referenced by an output
    assert original == _synthetic(), "the input template was changed"


def test_rewrite_names_definition_files_next_to_the_template(source_root: Path) -> None:
    result = make_packageable(_synthetic(), source_root=source_root)

    machine = resources_of_type(result.template, "AWS::Serverless::StateMachine")["DeployModel"]
    assert properties(machine)["DefinitionUri"] == "deploy.asl.json"
    assert result.copies == {"deploy.asl.json": (source_root / "functions" / "deploy.asl.json").resolve()}


def test_rewrite_keeps_a_parameter_that_is_still_used(source_root: Path) -> None:
    template = _synthetic()
    template["Outputs"]["Code"] = {"Value": {"Fn::Sub": "code at ${FunctionsCodeUri}"}}

    result = make_packageable(template, source_root=source_root)

    assert result.removed_parameters == ()
    assert "FunctionsCodeUri" in result.template["Parameters"]


def test_rewrite_refuses_a_missing_definition_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"DeployModel\.DefinitionUri functions/deploy\.asl\.json: no such file"):
        make_packageable(_synthetic(), source_root=tmp_path)


def test_rewrite_refuses_two_definition_files_of_one_name(source_root: Path) -> None:
    (source_root / "other").mkdir()
    (source_root / "other" / "deploy.asl.json").write_text("{}")
    template = _synthetic()
    template["Resources"]["Other"] = {
        "Type": "AWS::Serverless::StateMachine",
        "Properties": {"DefinitionUri": "other/deploy.asl.json"},
    }
    with pytest.raises(TemplateError, match=r"already named deploy\.asl\.json"):
        make_packageable(template, source_root=source_root)


def test_an_artifact_that_is_not_a_literal_path_is_refused(source_root: Path) -> None:
    template = _synthetic()
    template["Resources"]["Layer"] = {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {"ContentUri": {"Ref": "Stage"}},
    }
    result = make_packageable(template, source_root=source_root)

    with pytest.raises(TemplateError, match=r"cannot upload them: Layer\.ContentUri"):
        local_artifacts(result.template)


def test_missing_artifacts_lists_what_is_not_next_to_the_template(source_root: Path, tmp_path: Path) -> None:
    result = make_packageable(_synthetic(), source_root=source_root)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "functions.zip").write_bytes(b"")

    assert missing_artifacts(result.template, folder) == [
        "APIHandler.CodeUri ./deployment.zip",
        "DeployModel.DefinitionUri deploy.asl.json",
    ]


def test_short_form_intrinsics_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Ref Name\n")
    with pytest.raises(TemplateError, match="long-form intrinsics"):
        load_template(path)


# -- the Lambda zips -----------------------------------------------------------------------------


def _tiny_tree(root: Path, mtime: float) -> Path:
    for name, text in {
        "functions/__init__.py": "",
        "functions/validate.py": "def handler(event, context):\n    return event\n",
        "functions/__pycache__/validate.cpython-311.pyc": "stale",
        "chalicelib/domain/warmup/test_cases.py": "CASES = []\n",
        "chalicelib/tests/test_x.py": "assert False\n",
        "chalicelib/stale.pyc": "x",
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (mtime, mtime))
    return root


def _zip_of(root: Path, out: Path) -> bytes:
    files = merge_files(*(tree_files(root / tree, f"{tree}/") for tree in ("functions", "chalicelib")))
    write_zip(files, out)
    return out.read_bytes()


def test_the_zip_is_byte_identical_for_identical_input(tmp_path: Path) -> None:
    first = _zip_of(_tiny_tree(tmp_path / "a", 1_700_000_000), tmp_path / "a.zip")
    second = _zip_of(_tiny_tree(tmp_path / "b", 1_800_000_000), tmp_path / "b.zip")

    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == [
        "chalicelib/domain/warmup/test_cases.py",  # a module named test_*, not a test: kept
        "functions/__init__.py",
        "functions/validate.py",
    ]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_the_zip_refuses_to_exceed_lambdas_unzipped_limit(tmp_path: Path) -> None:
    files = tree_files(_tiny_tree(tmp_path / "src", 1_700_000_000) / "functions", "functions/")
    with pytest.raises(LambdaZipError, match=r"over Lambda's .* MB limit \(largest: functions"):
        write_zip(files, tmp_path / "functions.zip", limit=10)
    assert not (tmp_path / "functions.zip").exists()


def test_one_file_from_two_places_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LambdaZipError, match="come from two places"):
        merge_files({"six.py": tmp_path / "a"}, {"six.py": tmp_path / "b"})


def test_the_real_app_trees_keep_their_modules() -> None:
    names = set(tree_files(ROOT / "chalicelib", "chalicelib/"))
    assert "chalicelib/domain/warmup/test_cases.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_functions_target_comes_from_the_template() -> None:
    template: dict[str, Any] = {
        "Globals": {"Function": {"Runtime": "python3.11"}},
        "Resources": {
            "A": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "functions.a.handler"}},
            "B": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "functions.b.handler"}},
        },
    }
    functions = template["Resources"]
    assert lambda_platform(template, functions) == LambdaPlatform("python3.11", "x86_64")

    functions["B"]["Properties"]["Runtime"] = "python3.12"
    with pytest.raises(LambdaZipError, match="not one runtime/architecture"):
        lambda_platform(template, functions)


def test_pip_platforms_stop_at_the_runtimes_glibc() -> None:
    amazon_linux_2 = LambdaPlatform("python3.11", "x86_64").pip_platforms()
    amazon_linux_2023 = LambdaPlatform("python3.12", "arm64").pip_platforms()

    assert amazon_linux_2[0] == "manylinux_2_26_x86_64" and "manylinux2014_x86_64" in amazon_linux_2
    assert "manylinux_2_28_x86_64" not in amazon_linux_2
    assert amazon_linux_2023[0] == "manylinux_2_34_aarch64" and "manylinux_2_28_aarch64" in amazon_linux_2023


def test_an_unknown_stage_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert package.main(["--stage", "qa", "--out", "/nonexistent/out"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("package: unknown stage 'qa'") and err.count("\n") == 1


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_an_artifact_holds_the_modules_its_handlers_import_at_run_time(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "handler.py": "import json\nfrom pkg import a\n",
            "pkg/__init__.py": "",
            "pkg/a.py": (
                "from typing import TYPE_CHECKING\nimport pkg.b\nfrom . import sibling\n"
                "if TYPE_CHECKING:\n    from pkg import only_typed\n"
                "def later():\n    from pkg.sub import lazy\n"
            ),
            "pkg/b.py": "X = 1\n",
            "pkg/sibling.py": "from .b import X\n",
            "pkg/only_typed.py": "",
            "pkg/unused.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/lazy.py": "",
        },
    )

    assert sorted(app_files(root, ["handler"], ["pkg"])) == [
        "handler.py",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/sibling.py",
        "pkg/sub/__init__.py",
        "pkg/sub/lazy.py",
    ]


def test_an_import_of_a_missing_module_of_the_app_is_refused(tmp_path: Path) -> None:
    root = _write(tmp_path, {"handler.py": "from pkg.gone import x\n", "pkg/__init__.py": ""})
    with pytest.raises(AppModuleError, match=r"module pkg\.gone is imported but not found"):
        app_files(root, ["handler"], ["pkg"])


def test_the_app_is_appended_to_its_dependency_layer(tmp_path: Path) -> None:
    deps = _write(tmp_path / "site", {"six.py": "", "boto3/__init__.py": ""})
    layer_zip = write_zip(tree_files(deps, excluded_dirs=()), tmp_path / "layer.zip")
    layer = DependencyLayer(deps, layer_zip.path, layer_zip.files, layer_zip.unzipped_bytes)
    app = tree_files(_write(tmp_path / "app", {"app.py": "A = 1\n", "chalicelib/x.py": ""}))

    first = write_zip(app, tmp_path / "first.zip", base=layer)
    second = write_zip(app, tmp_path / "second.zip", base=layer)

    assert first.path.read_bytes() == second.path.read_bytes()
    with zipfile.ZipFile(first.path) as archive:
        assert archive.namelist() == ["boto3/__init__.py", "six.py", "app.py", "chalicelib/x.py"]
    assert (first.files, first.unzipped_bytes) == (4, len("A = 1\n"))
    with pytest.raises(LambdaZipError, match=r"both a dependency and the app's, e\.g\. six\.py"):
        write_zip({"six.py": tmp_path / "app" / "app.py"}, tmp_path / "clash.zip", base=layer)


def test_bytecode_is_reproducible_unchecked_and_where_the_runtime_looks(tmp_path: Path) -> None:
    tree = {"pkg/mod.py": "def f(x):\n    return x in {'alpha', 'beta', 'gamma'}\n", "top.py": "", "data.json": ""}
    sources = tree_files(_write(tmp_path / "src", tree))
    target = LambdaPlatform("python3.12", "x86_64")

    first = compile_bytecode(sources, target, tmp_path / "one")
    second = compile_bytecode(sources, target, tmp_path / "two")

    assert sorted(first) == ["__pycache__/top.cpython-312.pyc", "pkg/__pycache__/mod.cpython-312.pyc"]
    for name, path in first.items():
        data = path.read_bytes()
        assert data == second[name].read_bytes()
        assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, source never checked
    with pytest.raises(LambdaZipError, match=r"needs the packaging Python to be 3\.11"):
        compile_bytecode(sources, LambdaPlatform("python3.11", "x86_64"), tmp_path / "three")


def test_a_change_rebuilds_only_the_parts_made_from_it(tmp_path: Path) -> None:
    names = ["app.py", "chalicelib", "functions", "infra", "mmedeploy/deploy", "requirements.txt"]
    for name in names:
        source, copy = ROOT / name, tmp_path / name
        if source.is_dir():
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
    for name in ("config.json", "policy-logs.json"):
        _write(tmp_path, {f".chalice/{name}": (ROOT / ".chalice" / name).read_text()})
    digests = package.input_digests(STAGE, tmp_path)

    def changed_by(path: str) -> set[str]:
        with (tmp_path / path).open("a") as file:
            file.write("\n# touched\n")
        now = package.input_digests(STAGE, tmp_path)
        changed = {part for part in now if now[part] != digests[part]}
        digests.update(now)
        return changed

    assert changed_by("functions/flip_alias.py") == {"functions.zip"}
    assert changed_by("requirements.txt") == {"deployment.zip"}
    assert changed_by("functions/requirements.txt") == {"functions.zip"}
    assert changed_by("chalicelib/domain/naming.py") == {"sam.yaml", "deployment.zip", "functions.zip"}
    assert changed_by("mmedeploy/deploy/lambda_zip.py") == {"sam.yaml", "deployment.zip", "functions.zip"}
    assert package.input_digests("prod", tmp_path)["sam.yaml"] != digests["sam.yaml"]


def test_an_unchanged_package_is_reused_as_it_is(staging_package: package.BuildResult) -> None:
    stamps = {artifact.name: artifact.path.stat().st_mtime_ns for artifact in staging_package.artifacts}

    again = package.ensure_built(STAGE, staging_package.out)

    assert again.rebuilt == ()
    assert {artifact.name: artifact.path.stat().st_mtime_ns for artifact in again.artifacts} == stamps
    assert [a.unzipped_bytes for a in again.artifacts] == [a.unzipped_bytes for a in staging_package.artifacts]


# -- the policy check ---------------------------------------------------------------------------


def _role(*statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {"Policies": [{"PolicyName": "inline", "PolicyDocument": {"Statement": list(statements)}}]},
    }


def _offences(statement: dict[str, Any]) -> list[str]:
    return check_statement(statement)[0]


ARN = {"Fn::Sub": "arn:${AWS::Partition}:s3:::bucket/*"}


@pytest.mark.parametrize("action", ["*", "s3:*", "s3:Put*", "s3:GetObjec?"])
def test_a_wildcard_action_is_an_offence(action: str) -> None:
    assert _offences({"Effect": "Allow", "Action": ["s3:GetObject", action], "Resource": ARN}) == [
        f"wildcard action {action!r}"
    ]


def test_resource_star_with_a_write_action_is_an_offence() -> None:
    (offence,) = _offences({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"})
    assert offence.startswith('Resource "*" with s3:PutObject')


def test_resource_star_is_allowed_for_actions_without_resource_level_permissions() -> None:
    statement = {"Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*"}
    assert check_statement(statement) == ([], {"cloudwatch:PutMetricData"})


def test_deny_statements_are_not_checked() -> None:
    assert _offences({"Effect": "Deny", "Action": "*", "Resource": "*"}) == []


def test_not_action_and_not_resource_are_offences() -> None:
    assert _offences({"Effect": "Allow", "NotAction": "iam:PassRole", "Resource": ARN}) == [
        "NotAction in an Allow statement grants every other action"
    ]
    assert _offences({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": ARN})[0].startswith(
        "NotResource with s3:GetObject"
    )


def test_both_branches_of_an_fn_if_are_checked() -> None:
    action = {"Fn::If": ["IsProd", "s3:GetObject", "s3:*"]}
    assert _offences({"Effect": "Allow", "Action": action, "Resource": ARN}) == ["wildcard action 's3:*'"]


def test_sam_policy_templates_are_expanded_and_accepted() -> None:
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {
                    "Policies": [
                        {"LambdaInvokePolicy": {"FunctionName": {"Ref": "Fn"}}},
                        {"DynamoDBReadPolicy": {"TableName": {"Ref": "Table"}}},
                        {"CloudWatchPutMetricPolicy": {}},
                    ]
                },
            }
        }
    }
    report = check_template(template)

    assert report.ok, report.offences
    assert report.summary() == (
        '3 statements in 3 policies: no wildcard actions, Resource "*" only for cloudwatch:PutMetricData'
    )
    assert "lambda:InvokeFunction" in granted_actions(template, "Machine")


def test_sam_policy_templates_that_grant_too_much_are_offences() -> None:
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Policies": [
                        {"SQSSendMessagePolicy": {"QueueName": "q"}},  # sqs:SendMessage*
                        {"LambdaInvokePolicy": {"FunctionName": "*"}},
                        {"SomeFuturePolicy": {"Name": "x"}},
                        "AmazonS3FullAccess",
                    ]
                },
            }
        }
    }
    reasons = [offence.reason for offence in check_template(template).offences]

    assert reasons[0] == "wildcard action 'sqs:SendMessage*'"
    assert reasons[1].startswith('Resource "*" with lambda:InvokeFunction')
    assert reasons[2] == "SAM policy template SomeFuturePolicy is not in SAM_POLICY_TEMPLATES: inline it"
    assert reasons[3] == "managed policy AmazonS3FullAccess is not in the template: inline it"


def test_every_policy_bearing_resource_is_walked() -> None:
    bad = {"Effect": "Allow", "Action": "sqs:*", "Resource": ARN}
    template = {
        "Resources": {
            "Role": _role({"Effect": "Allow", "Action": "s3:GetObject", "Resource": ARN}, bad),
            "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Statement": bad}}},
            "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": {"Statement": [bad]}}},
            "TopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"PolicyDocument": {"Statement": [bad]}}},
            "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [bad]}}},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": [{"Statement": [bad]}]}},
            "Uses": {"Type": "AWS::IAM::Role", "Properties": {"ManagedPolicyArns": [{"Ref": "Policy"}]}},
        }
    }
    report = check_template(template)

    assert [(o.logical_id, o.statement) for o in report.offences] == [
        ("Role", 2),
        ("Policy", 1),
        ("QueuePolicy", 1),
        ("TopicPolicy", 1),
        ("BucketPolicy", 1),
        ("Fn", 1),
    ]
    assert (report.policies, report.statements) == (6, 7)


def test_the_command_exits_1_listing_each_offence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sam.yaml"
    path.write_text(
        "Resources:\n"
        "  Role:\n"
        "    Type: AWS::IAM::Role\n"
        "    Properties:\n"
        "      Policies:\n"
        "        - PolicyName: broad\n"
        "          PolicyDocument:\n"
        "            Statement:\n"
        "              - {Effect: Allow, Action: 's3:*', Resource: '*'}\n"
    )
    assert policy_check_main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "Role (broad, statement 1): wildcard action 's3:*'" in err
    assert '{"Action": "s3:*", "Effect": "Allow", "Resource": "*"}' in err

    path.write_text("Resources:\n  Role:\n    Type: AWS::IAM::Role\n")
    assert policy_check_main([str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith('0 statements in 0 policies: no wildcard actions, no Resource "*"')

    assert policy_check_main([str(tmp_path / "missing.yaml")]) == 2
