"""The model's rollout.json, read in the validator's one pass: a valid file's overrides reach the
inspection and the report; a malformed or invalid one is ROLLOUT_POLICY_INVALID saying what to
change; no file, no overrides and no finding."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chalicelib.domain.rollout.policy import RolloutOverrides, resolve_policy
from chalicelib.domain.rollout.tarball_policy import MAX_POLICY_BYTES, POLICY_FILE
from chalicelib.domain.validation.findings import CATALOGUE, Code, Finding, Severity
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.validator import Inspection, inspect_tarball, report_of
from testkit.tarballs import pack, single_python_repo

SIMPLE = "simple_1.tar.gz"


def inspect(policy: bytes | None, path: str = POLICY_FILE, limits: ArchiveLimits | None = None) -> Inspection:
    files = single_python_repo()
    if policy is not None:
        files[path] = policy
    return inspect_tarball(io.BytesIO(pack(files)), SIMPLE, limits)


def policy_findings(inspection: Inspection) -> list[Finding]:
    return [f for f in inspection.findings if f.code is Code.ROLLOUT_POLICY_INVALID]


def only_problem(inspection: Inspection) -> str:
    findings = policy_findings(inspection)
    assert len(findings) == 1, findings
    (finding,) = findings
    assert (finding.severity, finding.path) == (Severity.ERROR, POLICY_FILE)
    assert finding.message.startswith("'rollout.json': ")
    assert inspection.rollout_overrides is None
    assert not report_of(inspection).valid
    return finding.message


def test_the_code_is_an_error_in_the_catalogue() -> None:
    assert CATALOGUE[Code.ROLLOUT_POLICY_INVALID][0] is Severity.ERROR


def test_a_valid_file_reaches_the_inspection_and_the_report() -> None:
    inspection = inspect(json.dumps({"steps": [10, 50, 100], "bake_seconds": 300, "min_requests": 50}).encode())
    assert inspection.findings == []
    expected = RolloutOverrides(steps=(10, 50, 100), bake_seconds=300, min_requests=50)
    assert inspection.rollout_overrides == expected
    report = report_of(inspection)
    assert report.valid
    assert report.rollout_policy == expected
    # the report's JSON carries only what the file sets: the layers below decide the rest
    assert json.loads(report.model_dump_json())["rollout_policy"] == {
        "steps": [10.0, 50.0, 100.0],
        "bake_seconds": 300,
        "max_error_rate_margin": None,
        "max_p99_latency_ratio": None,
        "min_requests": 50,
        "evaluation_interval_seconds": None,
        "start_on_approval": None,
    }
    assert resolve_policy(model_file=inspection.rollout_overrides).bake_seconds == 300


def test_an_empty_object_is_valid_and_overrides_nothing() -> None:
    inspection = inspect(b"{}")
    assert inspection.findings == []
    assert inspection.rollout_overrides == RolloutOverrides()


def test_no_file_no_overrides_no_finding() -> None:
    inspection = inspect(None)
    assert inspection.findings == []
    assert inspection.rollout_overrides is None
    assert report_of(inspection).rollout_policy is None


def test_a_rollout_json_below_the_root_is_not_the_policy() -> None:
    inspection = inspect(b"not json", path="simple/rollout.json")
    assert policy_findings(inspection) == []
    assert inspection.rollout_overrides is None


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"steps": [5, 25', "is not valid JSON (line 1, column"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
        (b"[5, 25, 100]", 'must be a JSON object of the policy\'s fields, e.g. {"steps": [5, 25, 50, 100]}'),
        (b'{"bake_seconds": 60, "bake_seconds": 600}', "sets 'bake_seconds' twice; keep one"),
        (b'{"steps": [50, 25, 100]}', "steps: must rise strictly, and 25% follows 50%"),
        (b'{"steps": [5, 25]}', "the last step must be 100"),
        (b'{"bake_seconds": 0}', "bake_seconds: input should be greater than 0 (got 0)"),
        (b'{"max_error_rate_margin": "one point"}', "max_error_rate_margin"),
        (b'{"min_requests": true}', "min_requests: is a boolean; give a number"),
        (b'{"bake": 60}', "'bake' is not a field of the rollout policy; the fields are steps, bake_seconds"),
        (
            b'{"bake_seconds": 30, "evaluation_interval_seconds": 60}',
            "evaluation_interval_seconds (60) is longer than bake_seconds (30)",
        ),
        (b"[" * 5_000 + b"]" * 5_000, "is not usable JSON (RecursionError"),
    ],
)
def test_an_invalid_file_is_a_finding_saying_what_to_change(raw: bytes, says: str) -> None:
    assert says in only_problem(inspect(raw))


def test_only_the_file_s_own_fields_are_checked_together() -> None:
    # a short bake alone may meet a short interval from the deployment's settings: not refused here
    inspection = inspect(b'{"bake_seconds": 30}')
    assert inspection.findings == []
    assert inspection.rollout_overrides == RolloutOverrides(bake_seconds=30)


def test_a_large_file_is_refused_without_being_parsed() -> None:
    padded: dict[str, Any] = {"steps": [5, 100], "pad": " " * MAX_POLICY_BYTES}
    assert f"at most {MAX_POLICY_BYTES // 1024} KiB" in only_problem(inspect(json.dumps(padded).encode()))


def test_a_file_over_the_scanner_s_bound_is_refused() -> None:
    limits = ArchiveLimits(max_small_member_bytes=8)
    assert "bytes; a rollout policy is a few lines" in only_problem(inspect(b'{"bake_seconds": 60}', limits=limits))
