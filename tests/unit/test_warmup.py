"""Smoke-test cases in the tarball (tests/*.json), warm-up requests, and the checks of responses."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chalicelib.domain.signature import ModelSummary, TensorSpec
from chalicelib.domain.validation.archive import scan_archive
from chalicelib.domain.validation.findings import CATALOGUE, Code, Finding, Severity
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.validator import Inspection, inspect_tarball, report_of
from chalicelib.domain.warmup import (
    MAX_CASES,
    MAX_CASES_BYTES,
    TestCase,
    WarmRequest,
    build_warm_requests,
    check_response,
    load_test_cases,
)
from examples.build_examples import IDCHECK, reference_pipeline
from mmedeploy.local.mme.staging import stage_tarball
from testkit.tarballs import PYTHON_MODEL, Files, idcheck_repo, pack, python_config, single_python_repo

SIMPLE = "simple_1.tar.gz"


def case(**overrides: Any) -> bytes:
    """A valid case for single_python_repo's model (IN/OUT FP32 [4], max_batch_size 4)."""
    document: dict[str, Any] = {
        "inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [1.0, 2.0, 3.0, 4.0]}],
        "outputs": [{"name": "OUT", "datatype": "FP32", "shape": [1, 4], "data": [0.5, 0.5, 0.5, 0.5]}],
    }
    document.update(overrides)
    return json.dumps(document).encode()


def inspect(files: Files, name: str = SIMPLE, limits: ArchiveLimits | None = None) -> Inspection:
    return inspect_tarball(io.BytesIO(pack(files)), name, limits)


def with_cases(**cases: bytes) -> Inspection:
    return inspect({**single_python_repo(), **{f"tests/{stem}.json": data for stem, data in cases.items()}})


def case_findings(inspection: Inspection) -> list[Finding]:
    return [f for f in inspection.findings if f.code in (Code.TEST_CASE_INVALID, Code.TEST_CASES_TOO_LARGE)]


def only_problem(inspection: Inspection, path: str = "tests/case.json") -> str:
    """The message of the single test-case finding, which must be an error about ``path``."""
    findings = case_findings(inspection)
    assert [(f.code, f.severity, f.path) for f in findings] == [(Code.TEST_CASE_INVALID, Severity.ERROR, path)]
    assert findings[0].message.startswith(f"'{path}'")
    assert inspection.test_cases == []
    return findings[0].message


def model(
    inputs: list[tuple[str, str, list[int]]], outputs: list[tuple[str, str, list[int]]], max_batch_size: int = 0
) -> ModelSummary:
    return ModelSummary(
        name="m_1.tar.gz",
        max_batch_size=max_batch_size,
        inputs=[TensorSpec(name=n, data_type=t, dims=d) for n, t, d in inputs],
        outputs=[TensorSpec(name=n, data_type=t, dims=d) for n, t, d in outputs],
        served=True,
    )


# --- loading the cases -------------------------------------------------------------------------


def test_the_example_ensemble_ships_two_valid_cases_that_the_report_counts() -> None:
    # GIVEN the idcheck example as `make examples` builds it (tests/ included)
    files = idcheck_repo()
    assert {"tests/approved.json", "tests/declined.json"} <= set(files)
    # WHEN it is inspected
    inspection = inspect(files, "idcheck_1.tar.gz")
    # THEN both cases load, nothing is found, and the report counts them
    assert inspection.findings == []
    assert [c.name for c in inspection.test_cases] == ["approved", "declined"]
    assert report_of(inspection).test_cases == 2


def test_the_example_cases_hold_what_the_reference_pipeline_returns() -> None:
    # GIVEN the generated cases
    paths = sorted((IDCHECK / "tests").glob("*.json"))
    assert [p.name for p in paths] == ["approved.json", "declined.json"]
    for path in paths:
        loaded = TestCase.model_validate({**json.loads(path.read_text()), "name": path.stem})
        raw = np.array(loaded.inputs[0].data, dtype=np.float32).reshape(loaded.inputs[0].shape)
        # WHEN the reference computes the outputs for the case's input
        probabilities, decisions = reference_pipeline(raw)
        expected = {o.name: o.data for o in loaded.outputs}
        # THEN the case expects them, and the file is named after the decision
        assert expected["DECISION"] == decisions == [path.stem]
        assert expected["PROBABILITIES"] == pytest.approx(probabilities.ravel().tolist(), abs=1e-6)


def test_a_valid_case_loads_with_its_name_and_default_tolerance() -> None:
    inspection = with_cases(case=case())
    assert case_findings(inspection) == []
    (loaded,) = inspection.test_cases
    assert loaded.name == "case"
    assert (loaded.tolerance.abs, loaded.tolerance.rel) == (1e-4, 1e-3)
    assert report_of(inspection).valid


def test_nested_data_is_flattened_row_major() -> None:
    nested = [{"name": "IN", "datatype": "FP32", "shape": [2, 4], "data": [[1, 2, 3, 4], [5, 6, 7, 8]]}]
    inspection = with_cases(case=case(inputs=nested, outputs=[]))
    assert case_findings(inspection) == []
    assert inspection.test_cases[0].inputs[0].data == [1, 2, 3, 4, 5, 6, 7, 8]


def test_malformed_json_names_the_file_and_the_line() -> None:
    message = only_problem(with_cases(case=b'{\n  "inputs": [,\n}'))
    assert "not valid JSON (line 2" in message


@pytest.mark.parametrize("content", [b"[]", b'"text"', b"\xff\xfe"])
def test_a_case_that_is_not_a_json_object_is_invalid(content: bytes) -> None:
    only_problem(with_cases(case=content))


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"outputs": []}, "inputs: Field required"),
        ({"inputs": []}, "inputs: List should have at least 1 item"),
        ({"inputs": [{"name": "IN", "dtype": "FP32", "shape": [4], "data": [0]}]}, "inputs[0].datatype"),
        ({"inputs": [{"name": "IN", "datatype": "FLOAT", "shape": [1, 4], "data": [0] * 4}]}, "inputs[0].datatype"),
        ({"inputs": [{"name": "IN", "datatype": "FP32", "shape": [-1, 4], "data": [0] * 4}]}, "inputs[0].shape[0]"),
        ({"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [0, None, 0, 0]}]}, "null"),
        ({**json.loads(case()), "tolerance": {"abs": -1}}, "tolerance.abs"),
        ({**json.loads(case()), "expected": []}, "expected: Extra inputs are not permitted"),
    ],
)
def test_wrong_structure_says_where(document: dict[str, Any], where: str) -> None:
    message = only_problem(with_cases(case=json.dumps(document).encode()))
    assert "not a KServe v2 test case" in message
    assert where in message


def test_an_input_the_model_does_not_have_lists_the_ones_it_has() -> None:
    tensors = [{"name": "INPUT", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]
    message = only_problem(with_cases(case=case(inputs=tensors)))
    assert "'INPUT' is not an input of the served model (its inputs: 'IN')" in message


def test_an_expected_output_the_model_does_not_have_is_invalid() -> None:
    message = only_problem(with_cases(case=case(outputs=[{"name": "SCORE", "data": [1.0]}])))
    assert "'SCORE' is not an output of the served model (its outputs: 'OUT')" in message


def test_an_input_datatype_that_disagrees_with_the_config_says_the_right_one() -> None:
    tensors = [{"name": "IN", "datatype": "FP64", "shape": [1, 4], "data": [0] * 4}]
    message = only_problem(with_cases(case=case(inputs=tensors)))
    assert 'datatype FP64 but the config says TYPE_FP32: use "datatype": "FP32"' in message


def test_an_expected_datatype_that_disagrees_with_the_config_is_invalid() -> None:
    message = only_problem(with_cases(case=case(outputs=[{"name": "OUT", "datatype": "INT32", "data": [0] * 4}])))
    assert "expected output 'OUT' has datatype INT32" in message


@pytest.mark.parametrize(
    ("tensor", "says"),
    [
        ({"shape": [1, 4], "data": [0.0] * 3}, "data has 3 value(s) but shape [1, 4] needs 4"),
        ({"shape": [4], "data": [0.0] * 4}, "shape [4] has 1 dimension(s) but 'IN' needs [-1, 4]"),
        ({"shape": [1, 5], "data": [0.0] * 5}, "shape [1, 5] does not fit 'IN': it needs [-1, 4]"),
        ({"shape": [5, 4], "data": [0.0] * 20}, "batch 5 in shape [5, 4] is over the model's max_batch_size 4"),
        ({"shape": [1, 4], "data": [0.0, "1", 0.0, 0.0]}, "data[1] = '1' is not a FP32 value"),
        ({"shape": [1, 4], "data": [0.0, True, 0.0, 0.0]}, "data[1] = True is not a FP32 value"),
    ],
)
def test_input_shape_and_data_must_fit_the_config(tensor: dict[str, Any], says: str) -> None:
    tensors = [{"name": "IN", "datatype": "FP32", **tensor}]
    message = only_problem(with_cases(case=case(inputs=tensors)))
    assert f"input 'IN': {says}" in message


def test_a_batch_of_zero_is_a_valid_test_case_as_triton_takes_it() -> None:
    # GIVEN a batch of 0 (Triton checks only batch <= max_batch_size) / THEN no finding
    tensors = [{"name": "IN", "datatype": "FP32", "shape": [0, 4], "data": []}]
    inspection = with_cases(case=case(inputs=tensors))
    assert case_findings(inspection) == [] and len(inspection.test_cases) == 1


def test_an_expected_output_count_that_disagrees_with_its_shape_is_invalid() -> None:
    outputs = [{"name": "OUT", "shape": [1, 4], "data": [0.5, 0.5]}]
    message = only_problem(with_cases(case=case(outputs=outputs)))
    assert "expected output 'OUT': data has 2 value(s) but shape [1, 4] needs 4" in message


@pytest.mark.parametrize(
    ("data_type", "datatype", "value", "fits"),
    [
        ("TYPE_INT8", "INT8", 127, True),
        ("TYPE_INT8", "INT8", 128, False),
        ("TYPE_UINT8", "UINT8", -1, False),
        ("TYPE_INT64", "INT64", 1.5, False),
        ("TYPE_BOOL", "BOOL", 0, False),
        ("TYPE_BOOL", "BOOL", False, True),
        ("TYPE_STRING", "BYTES", "text", True),
        ("TYPE_STRING", "BYTES", 7, False),
    ],
)
def test_data_values_must_be_of_the_datatype(data_type: str, datatype: str, value: object, fits: bool) -> None:
    files = {
        **single_python_repo(),
        "simple/config.pbtxt": python_config("simple", inputs=f'{{ name: "IN", data_type: {data_type}, dims: [ 1 ] }}'),
    }
    document = {"inputs": [{"name": "IN", "datatype": datatype, "shape": [1, 1], "data": [value]}]}
    inspection = inspect({**files, "tests/case.json": json.dumps(document).encode()})
    if fits:
        assert case_findings(inspection) == []
    else:
        assert f"is not a {datatype} value" in only_problem(inspection)


def test_inputs_and_outputs_listed_twice_are_invalid() -> None:
    tensor = {"name": "IN", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}
    message = only_problem(with_cases(case=case(inputs=[tensor, tensor])))
    assert "input 'IN' is listed more than once" in message


def test_a_bad_case_is_dropped_and_the_good_ones_kept() -> None:
    inspection = with_cases(good=case(), bad=b"{")
    assert [f.path for f in case_findings(inspection)] == ["tests/bad.json"]
    assert [c.name for c in inspection.test_cases] == ["good"]
    assert not report_of(inspection).valid


def test_only_json_files_directly_in_tests_are_cases() -> None:
    # GIVEN notes, a nested fixture and macOS clutter next to one case
    files = {
        **single_python_repo(),
        "tests/case.json": case(),
        "tests/README.md": b"how the cases were made",
        "tests/fixtures/raw.json": b"not a case",
        "tests/._case.json": b"\x00\x05\x16\x07",
    }
    inspection = inspect(files)
    # THEN only tests/case.json is loaded, and nothing else is reported about tests/
    assert [c.name for c in inspection.test_cases] == ["case"]
    assert case_findings(inspection) == []


def test_hostile_json_is_a_finding_not_an_exception() -> None:
    deep = b'{"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1], "data": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"
    huge = b'{"inputs": [{"name": "IN", "datatype": "FP32", "shape": [1], "data": [' + b"9" * 5000 + b"]}]}"
    inspection = with_cases(deep=deep, huge=huge)
    assert {f.path for f in case_findings(inspection)} == {"tests/deep.json", "tests/huge.json"}
    assert inspection.test_cases == []


def test_structure_is_checked_without_a_served_model() -> None:
    # GIVEN a scan whose repository has no served model
    scan = scan_archive(io.BytesIO(pack({"tests/case.json": case(), "tests/bad.json": b"[]"})), ArchiveLimits())
    # WHEN the cases are loaded without a model to check them against
    cases, findings = load_test_cases(scan, None)
    # THEN names are not checked, structure is
    assert [c.name for c in cases] == ["case"]
    assert [f.path for f in findings] == ["tests/bad.json"]


# --- size bounds ---------------------------------------------------------------------------------


def test_the_most_cases_allowed_load() -> None:
    inspection = with_cases(**{f"c{i:02d}": case() for i in range(MAX_CASES)})
    assert case_findings(inspection) == []
    assert len(inspection.test_cases) == MAX_CASES


def test_more_cases_than_allowed_is_one_error_and_no_cases() -> None:
    inspection = with_cases(**{f"c{i:02d}": case() for i in range(MAX_CASES + 1)})
    (finding,) = case_findings(inspection)
    assert (finding.code, finding.severity, finding.path) == (Code.TEST_CASES_TOO_LARGE, Severity.ERROR, "tests/")
    assert f"{MAX_CASES + 1} test case file(s)" in finding.message and "64 KiB" in finding.message
    assert inspection.test_cases == []


def test_cases_over_the_byte_bound_in_total_are_one_error() -> None:
    padding = " " * (MAX_CASES_BYTES // 2)
    inspection = with_cases(a=case() + padding.encode(), b=case() + padding.encode())
    assert [f.code for f in case_findings(inspection)] == [Code.TEST_CASES_TOO_LARGE]
    assert inspection.test_cases == []


def test_a_case_the_scanner_did_not_keep_in_memory_is_reported() -> None:
    # GIVEN a scanner that keeps members of at most 1 KiB, and a 2 KiB case
    limits = ArchiveLimits(max_small_member_bytes=1024)
    files = {**single_python_repo(), "tests/case.json": case() + b" " * 2048}
    # WHEN inspected
    inspection = inspect(files, limits=limits)
    # THEN the case that could not be read is an error, not silently skipped
    findings = case_findings(inspection)
    assert [(f.code, f.path) for f in findings] == [(Code.TEST_CASES_TOO_LARGE, "tests/case.json")]
    assert "too large to read" in findings[0].message
    assert inspection.repository.served is not None  # the model itself was read


# --- warm-up requests ----------------------------------------------------------------------------


def test_without_cases_one_request_is_synthesised_from_the_config() -> None:
    # GIVEN a batching model with a variable dimension and several data types
    served = model(
        [
            ("IMAGE", "TYPE_FP32", [3, -1, 2]),
            ("TOKENS", "TYPE_INT64", [-1]),
            ("TEXT", "TYPE_STRING", [1]),
            ("MASK", "TYPE_BOOL", [2]),
            ("HALF", "TYPE_FP16", [1]),
        ],
        [("SCORE", "TYPE_FP32", [1]), ("LABEL", "TYPE_STRING", [1])],
        max_batch_size=8,
    )
    # WHEN requests are built with no cases
    (request,) = build_warm_requests(served, [])
    # THEN one request: batch 1, -1 as 1, KServe spellings, neutral data; every output asked for
    assert (request.name, request.expected) == ("synthetic", None)
    assert request.body == {
        "inputs": [
            {"name": "IMAGE", "datatype": "FP32", "shape": [1, 3, 1, 2], "data": [0.0] * 6},
            {"name": "TOKENS", "datatype": "INT64", "shape": [1, 1], "data": [0]},
            {"name": "TEXT", "datatype": "BYTES", "shape": [1, 1], "data": ["warmup"]},
            {"name": "MASK", "datatype": "BOOL", "shape": [1, 2], "data": [False, False]},
            {"name": "HALF", "datatype": "FP16", "shape": [1, 1], "data": [0.0]},
        ],
        "outputs": [{"name": "SCORE"}, {"name": "LABEL"}],
    }
    assert json.loads(json.dumps(request.body)) == request.body  # plain JSON


def test_a_model_without_batching_gets_no_batch_dimension() -> None:
    served = model([("X", "TYPE_UINT8", [2, 2])], [("Y", "TYPE_INT32", [1])], max_batch_size=0)
    (request,) = build_warm_requests(served, [])
    assert request.body["inputs"] == [{"name": "X", "datatype": "UINT8", "shape": [2, 2], "data": [0] * 4}]


def test_an_invalid_config_type_cannot_be_synthesised() -> None:
    served = model([("X", "TYPE_INVALID", [1])], [])
    with pytest.raises(ValueError, match="TYPE_INVALID"):
        build_warm_requests(served, [])


def test_each_case_becomes_one_request_with_its_inputs_and_expectation() -> None:
    # GIVEN the example ensemble and its cases
    inspection = inspect(idcheck_repo(), "idcheck_1.tar.gz")
    served = report_of(inspection).served_model
    assert served is not None
    # WHEN requests are built
    requests = build_warm_requests(served, inspection.test_cases)
    # THEN one per case, the case's inputs as sent, every declared output asked for
    assert [r.name for r in requests] == ["approved", "declined"]
    for request, loaded in zip(requests, inspection.test_cases, strict=True):
        assert request.expected == loaded
        assert request.body["inputs"] == [t.model_dump(exclude_none=True) for t in loaded.inputs]
        assert request.body["outputs"] == [{"name": "PROBABILITIES"}, {"name": "DECISION"}]
    # AND a request survives the Step Functions state (JSON) unchanged
    assert WarmRequest.model_validate_json(requests[0].model_dump_json()) == requests[0]


# --- response checks -----------------------------------------------------------------------------

IDCHECK_SERVED = model(
    [("RAW_FEATURES", "TYPE_FP32", [16])],
    [("PROBABILITIES", "TYPE_FP32", [4]), ("DECISION", "TYPE_STRING", [1])],
    max_batch_size=8,
)


def response(probabilities: list[float] | None = None, decision: str = "approved", **changes: Any) -> dict[str, Any]:
    outputs = [
        {"name": "DECISION", "datatype": "BYTES", "shape": [1, 1], "data": [decision]},
        {"name": "PROBABILITIES", "datatype": "FP32", "shape": [1, 4], "data": probabilities or [0.7, 0.1, 0.1, 0.1]},
    ]
    for output in outputs:
        output.update(changes.get(output["name"], {}))
    return {"model_name": "idcheck_1.tar.gz", "model_version": "1", "outputs": outputs}


def expecting(
    probabilities: list[float], decision: str = "approved", tolerance: dict[str, float] | None = None
) -> WarmRequest:
    loaded = TestCase.model_validate(
        {
            "name": "approved",
            "inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": [0.0] * 16}],
            "outputs": [
                {"name": "PROBABILITIES", "shape": [1, 4], "data": probabilities},
                {"name": "DECISION", "data": [decision]},
            ],
            **({"tolerance": tolerance} if tolerance else {}),
        }
    )
    (request,) = build_warm_requests(IDCHECK_SERVED, [loaded])
    return request


SYNTHETIC = build_warm_requests(IDCHECK_SERVED, [])[0]


def test_a_response_as_the_config_declares_passes() -> None:
    assert check_response(IDCHECK_SERVED, SYNTHETIC, response()) == []


def test_a_missing_output_is_a_problem() -> None:
    answer = response()
    answer["outputs"] = [o for o in answer["outputs"] if o["name"] != "DECISION"]
    assert check_response(IDCHECK_SERVED, SYNTHETIC, answer) == ["output 'DECISION' is missing from the response"]


def test_a_wrong_datatype_is_a_problem() -> None:
    problems = check_response(IDCHECK_SERVED, SYNTHETIC, response(PROBABILITIES={"datatype": "FP64"}))
    assert problems == ["output 'PROBABILITIES' has datatype FP64 but the config says FP32"]


@pytest.mark.parametrize(
    ("shape", "data", "problem"),
    [
        ([4], [0.25] * 4, "has 1 dimension(s) but 'PROBABILITIES' needs [-1, 4]"),
        ([1, 5], [0.2] * 5, "does not fit 'PROBABILITIES': it needs [-1, 4]"),
        ([1, 4], [0.25] * 3, "data has 3 value(s) but shape [1, 4] needs 4"),
        ("4", [0.25] * 4, "has no valid shape"),
    ],
)
def test_a_shape_or_count_that_disagrees_is_a_problem(shape: object, data: list[float], problem: str) -> None:
    problems = check_response(IDCHECK_SERVED, SYNTHETIC, response(PROBABILITIES={"shape": shape, "data": data}))
    assert len(problems) == 1 and problem in problems[0]


def test_variable_dims_and_the_batch_dimension_match_any_size() -> None:
    served = model([("X", "TYPE_FP32", [1])], [("Y", "TYPE_FP32", [-1, 2])], max_batch_size=4)
    request = build_warm_requests(served, [])[0]
    answer = {"outputs": [{"name": "Y", "datatype": "FP32", "shape": [3, 5, 2], "data": [0.0] * 30}]}
    assert check_response(served, request, answer) == []


def test_an_error_response_is_a_problem() -> None:
    problems = check_response(IDCHECK_SERVED, SYNTHETIC, {"error": "in ensemble 'x': unexpected shape"})
    assert problems == ["the model answered with an error: in ensemble 'x': unexpected shape"]


def test_values_within_tolerance_pass() -> None:
    request = expecting([0.7, 0.1, 0.1, 0.1])
    assert check_response(IDCHECK_SERVED, request, response([0.70005, 0.1001, 0.0999, 0.1])) == []


def test_a_value_outside_tolerance_names_the_element_and_the_difference() -> None:
    request = expecting([0.7, 0.1, 0.1, 0.1])
    problems = check_response(IDCHECK_SERVED, request, response([0.7, 0.1, 0.11, 0.09]))
    assert problems == [
        "output 'PROBABILITIES'[0, 2] is 0.11, expected 0.1 (off by 0.01, allowed 0.0002); 1 more value(s) differ"
    ]


def test_relative_tolerance_scales_with_the_expected_value() -> None:
    request = expecting([1000.0, 0.0, 0.0, 0.0], tolerance={"abs": 0.0, "rel": 1e-3})
    assert check_response(IDCHECK_SERVED, request, response([1000.9, 0.0, 0.0, 0.0])) == []
    assert len(check_response(IDCHECK_SERVED, request, response([1001.1, 0.0, 0.0, 0.0]))) == 1


def test_strings_are_compared_exactly() -> None:
    request = expecting([0.7, 0.1, 0.1, 0.1], decision="approved")
    assert check_response(IDCHECK_SERVED, request, response(decision="Approved")) == [
        "output 'DECISION'[0, 0] is 'Approved', expected 'approved'"
    ]


def test_booleans_are_not_numbers() -> None:
    served = model([("X", "TYPE_FP32", [1])], [("OK", "TYPE_BOOL", [1])])
    loaded = TestCase.model_validate(
        {
            "name": "flag",
            "inputs": [{"name": "X", "datatype": "FP32", "shape": [1], "data": [0]}],
            "outputs": [{"name": "OK", "data": [True]}],
        }
    )
    (request,) = build_warm_requests(served, [loaded])
    answer = {"outputs": [{"name": "OK", "datatype": "BOOL", "shape": [1], "data": [1]}]}
    assert any("is 1, expected True" in p for p in check_response(served, request, answer))


def test_an_expected_shape_that_differs_is_a_problem() -> None:
    request = expecting([0.7, 0.1, 0.1, 0.1])
    served = model(
        [("RAW_FEATURES", "TYPE_FP32", [16])],
        [("PROBABILITIES", "TYPE_FP32", [-1]), ("DECISION", "TYPE_STRING", [1])],
        8,
    )
    problems = check_response(served, request, response(PROBABILITIES={"shape": [2, 2]}))
    assert problems == ["output 'PROBABILITIES' has shape [2, 2] but the test case expects [1, 4]"]


# --- tests/ is not a model -----------------------------------------------------------------------


def test_tests_dir_next_to_one_model_directory_does_not_make_it_ambiguous() -> None:
    inspection = with_cases(case=case())
    assert inspection.findings == []
    assert inspection.repository.served is not None and inspection.repository.served.directory == "simple"
    assert set(inspection.repository.models) == {"simple"}


def test_tests_dir_in_a_root_layout_is_neither_a_model_nor_a_version(tmp_path: Path) -> None:
    # GIVEN a model at the archive root with a test case
    files: Files = {
        "model_version.txt": b"1\n",
        "config.pbtxt": python_config("simple"),
        "1/model.py": PYTHON_MODEL,
        "tests/case.json": case(),
    }
    # WHEN validated and staged for the local MME
    inspection = inspect(files)
    tarball = tmp_path / SIMPLE
    tarball.write_bytes(pack(files))
    repository = tmp_path / "repository"
    repository.mkdir()
    staged = stage_tarball(tarball, SIMPLE, repository)
    # THEN the root is the one model, the case loads, and tests/ is not staged
    assert inspection.findings == [] and [c.name for c in inspection.test_cases] == ["case"]
    assert staged.names == [SIMPLE]
    assert sorted(p.name for p in (repository / SIMPLE).iterdir()) == ["1", "config.pbtxt"]


def test_tests_dir_next_to_an_ensemble_is_not_staged(tmp_path: Path) -> None:
    tarball = tmp_path / "idcheck_1.tar.gz"
    tarball.write_bytes(pack(idcheck_repo()))
    repository = tmp_path / "repository"
    repository.mkdir()
    staged = stage_tarball(tarball, tarball.name, repository)
    assert sorted(p.name for p in repository.iterdir()) == sorted(staged.names)
    assert not any(name.endswith("tests") for name in staged.names)


def test_the_catalogue_states_the_bounds_the_loader_applies() -> None:
    meaning = CATALOGUE[Code.TEST_CASES_TOO_LARGE][1]
    assert f"{MAX_CASES} test cases" in meaning and f"{MAX_CASES_BYTES // 1024} KiB" in meaning
