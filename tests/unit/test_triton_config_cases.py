"""Triton's own model-configuration cases (tests/data/triton_config_cases/, from Triton r24.09's
qa/L0_model_config), each wrapped by testkit.triton_cases into a tarball that differs from a valid
one only by the case's defect.

(a) The validator is never stricter than Triton: every case Triton loads is accepted, except the
    known exceptions of KNOWN_TOO_STRICT, which are xfail(strict=True) so that accepting one fails
    until it is removed from the list.
(b) The refusals it catches stay caught: every case of tests/data/triton_config_caught.txt is
    refused, with at least one of the error codes recorded for it. A rule that catches more needs no
    change here; record the new catches with
    `.venv/bin/python benchmarks/triton_agreement.py --write-caught` (docs/development.md).
"""

from __future__ import annotations

import io

import onnx
import pytest

from chalicelib.domain.validation.archive import scan_archive
from chalicelib.domain.validation.limits import ArchiveLimits
from testkit.tarballs import pack
from testkit.triton_cases import (
    KNOWN_TOO_STRICT,
    LEFT_OUT,
    MISSING_ON_PURPOSE,
    Case,
    Outcome,
    load_cases,
    read_caught,
    run,
    tarball_name,
    wrap,
)

CASES = {case.id: case for case in load_cases()}
LOADED = sorted(case_id for case_id, case in CASES.items() if case.triton_loads)
REFUSED = sorted(case_id for case_id, case in CASES.items() if not case.triton_loads)
CAUGHT = read_caught()


def _loaded_param(case_id: str) -> object:
    reason = KNOWN_TOO_STRICT.get(case_id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case_id, marks=marks, id=case_id)


@pytest.mark.parametrize("case_id", [_loaded_param(c) for c in LOADED])
def test_a_config_triton_loads_is_accepted(case_id: str) -> None:
    # GIVEN a case Triton loads, wrapped into a tarball WHEN validated THEN it is valid
    result = run(CASES[case_id])
    assert result.outcome is Outcome.AGREED_LOAD, "\n".join(result.messages)


@pytest.mark.parametrize("case_id", sorted(CAUGHT))
def test_a_refusal_the_validator_catches_stays_caught(case_id: str) -> None:
    # GIVEN a case Triton refuses that the validator caught when the caught file was written
    assert case_id in REFUSED, f"{case_id} is in the caught file but is not a refusal case of the corpus"
    # WHEN validated THEN it is still refused, with one of the codes recorded for it: a refusal for an
    # unrelated reason (the wrapping, another rule) is not the case caught
    result = run(CASES[case_id])
    assert result.outcome is Outcome.CAUGHT, f"no longer caught; Triton says: {CASES[case_id].expected[0]}"
    assert set(CAUGHT[case_id]) & set(result.errors), (
        f"refused with {result.errors}, none of the recorded {CAUGHT[case_id]}; if the new codes are right, "
        "regenerate the caught file (--write-caught)"
    )


def test_the_corpus_is_the_selection_it_documents() -> None:
    # GIVEN the vendored corpus THEN it holds both classes, every case with Triton's expectation,
    # and the exceptions and deliberate omissions name cases that exist (or were left out)
    assert len(REFUSED) >= 100 and len(LOADED) >= 20
    assert all(case.expected for case in CASES.values() if not case.triton_loads)
    assert set(KNOWN_TOO_STRICT) <= set(LOADED)
    assert set(MISSING_ON_PURPOSE) <= set(REFUSED)
    assert not set(LEFT_OUT) & set(CASES)


def test_wrapping_adds_a_valid_tarball_around_the_case() -> None:
    # GIVEN cases of each kind WHEN wrapped THEN the tarball holds the case's config verbatim (or, for
    # noautofill cases, with the platform replaced), the model file of its platform, and members
    # for the ensemble steps the case names but does not ship
    onnx_case = wrap(CASES["autofill_noplatform/onnx/bad_input_dims"])
    assert (
        onnx_case["bad_input_dims/config.pbtxt"]
        == CASES["autofill_noplatform/onnx/bad_input_dims"].files["config.pbtxt"]
    )
    model = onnx.load_from_string(onnx_case["bad_input_dims/1/model.onnx"])
    assert [i.name for i in model.graph.input] == ["INPUT0", "INPUT1"]

    noautofill = wrap(CASES["noautofill_platform/control_kind_end_multiple"])
    config = (noautofill["control_kind_end_multiple/config.pbtxt"] or b"").decode()
    assert 'platform: "pytorch_libtorch"' in config and "tensorflow_savedmodel" not in config
    assert "control_kind_end_multiple/1/model.pt" in noautofill

    python_case = wrap(CASES["autofill_noplatform/python/no_return"])
    assert python_case["no_return/1/model.py"] == CASES["autofill_noplatform/python/no_return"].files["model.py"]

    ensemble = wrap(CASES["autofill_noplatform/ensemble/model_warm_up_set"])
    assert b'backend: "python"' in (ensemble["model_a/config.pbtxt"] or b"")
    assert "fp32_dim1_batch4_input4/config.pbtxt" not in wrap(CASES["autofill_noplatform/ensemble/non_existing_model"])


def test_every_wrapped_case_is_a_safe_readable_archive() -> None:
    # GIVEN every case WHEN wrapped and packed THEN the archive layer has nothing to say: what the
    # validator reports is about the Triton repository, never about the wrapping
    for case in CASES.values():
        scan = scan_archive(io.BytesIO(pack(wrap(case))), ArchiveLimits(), tarball_name(case))
        assert scan.complete and not scan.findings, (case.id, scan.findings)


def test_a_case_without_a_config_is_wrapped_without_one() -> None:
    # GIVEN the upstream case that ships no config at all WHEN wrapped THEN none is invented
    case: Case = CASES["autofill_noplatform_success/onnx/no_config"]
    assert not any(path.endswith("config.pbtxt") for path in wrap(case))
