"""Smoke-test cases shipped inside the tarball: ``tests/<name>.json`` at the archive root.

Each file is one KServe v2 case: ``inputs`` exactly as in an inference request, the expected
``outputs`` (only those listed are compared; ``datatype`` and ``shape`` optional) and an optional
``tolerance`` for numbers. The validator loads and checks them against the served model's config,
so a broken case is rejected before the warm stage spends a GPU load on it.
"""

from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from chalicelib.domain.signature import KServeType, ModelSummary, TensorSpec, kserve_datatype, shape_problem
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.warmup.tensors import Scalar, data_problem, flatten

if TYPE_CHECKING:  # the scan's type only: the API reads test cases without the archive reader's dependencies
    from chalicelib.domain.validation.archive import ArchiveScan

TESTS_DIR = "tests"
# The cases travel in the Step Functions state (256 KB per state): bound them well below it.
MAX_CASES = 16
MAX_CASES_BYTES = 64 * 1024
_MAX_ERRORS_SHOWN = 3


def _flat(value: Any) -> Any:
    # KServe accepts nested lists in row-major order; keep one flat list from here on.
    if not isinstance(value, list):
        return value
    flat = flatten(value)
    for index, item in enumerate(flat):
        if not isinstance(item, bool | int | float | str):
            raise ValueError(f"element {index} is {json.dumps(item)}; data holds only numbers, strings or booleans")
    return flat


FlatData = Annotated[list[Scalar], BeforeValidator(_flat)]


class Tolerance(BaseModel):
    """Numbers match when ``|actual - expected| <= abs + rel * |expected|`` (numpy.isclose)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Loose enough for float32 on a GPU against a CPU reference; tighten per case if it matters.
    abs: float = Field(default=1e-4, ge=0)
    rel: float = Field(default=1e-3, ge=0)


class InputTensor(BaseModel):
    """One input of a KServe v2 JSON inference request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    datatype: KServeType
    shape: list[Annotated[int, Field(ge=0)]]
    data: FlatData
    parameters: dict[str, Any] | None = None


class ExpectedOutput(BaseModel):
    """What one output must hold; ``datatype`` and ``shape`` are checked only when given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    datatype: KServeType | None = None
    shape: list[Annotated[int, Field(ge=0)]] | None = None
    data: FlatData


class TestCase(BaseModel):
    """One smoke-test case; ``name`` is the file's stem (``tests/approved.json`` -> ``approved``)."""

    __test__: ClassVar[bool] = False  # not a pytest class, despite the name
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    inputs: list[InputTensor] = Field(min_length=1)
    outputs: list[ExpectedOutput] = []
    tolerance: Tolerance = Tolerance()


def case_paths(scan: ArchiveScan) -> list[str]:
    """Every ``tests/*.json`` file directly under the root ``tests/`` (kept in memory or not)."""
    return sorted(
        path
        for path in scan.files
        if posixpath.dirname(path) == TESTS_DIR
        and path.endswith(".json")
        and not posixpath.basename(path).startswith("._")  # macOS clutter, reported by the scanner
    )


def load_test_cases(scan: ArchiveScan, served: ModelSummary | None) -> tuple[list[TestCase], list[Finding]]:
    """Parse and check the tarball's test cases against the served model's config.

    Only cases without findings are returned; a set over the size bounds returns none.
    ``served`` None checks the cases' structure only.
    """
    paths = case_paths(scan)
    total = sum(scan.members[p].size for p in paths)
    if len(paths) > MAX_CASES or total > MAX_CASES_BYTES:
        return [], [
            Finding.of(
                Code.TEST_CASES_TOO_LARGE,
                f"{TESTS_DIR}/",
                f"{len(paths)} test case file(s) of {total} bytes in '{TESTS_DIR}/': the bound is {MAX_CASES} "
                f"files and {MAX_CASES_BYTES // 1024} KiB in total (they travel in the deployment's state). "
                "Keep a few small cases with representative inputs",
            )
        ]
    cases: list[TestCase] = []
    findings: list[Finding] = []
    for path in paths:
        raw = scan.small_files.get(path)
        if raw is None:  # over the scanner's in-memory bound (only when that is set below ours)
            findings.append(
                Finding.of(Code.TEST_CASES_TOO_LARGE, path, f"'{path}' is too large to read; keep each case small")
            )
            continue
        case, problems = _load(path, raw, served)
        findings += [Finding.of(Code.TEST_CASE_INVALID, path, f"'{path}': {problem}") for problem in problems]
        if case is not None and not problems:
            cases.append(case)
    return cases, findings


def _load(path: str, raw: bytes, served: ModelSummary | None) -> tuple[TestCase | None, list[str]]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, ["is not UTF-8 text"]
    except json.JSONDecodeError as exc:
        return None, [f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, absurd nesting
        return None, [f"is not usable JSON ({type(exc).__name__}: {str(exc)[:120]})"]
    if not isinstance(document, dict):
        return None, ['must be a JSON object: {"inputs": [...], "outputs": [...]}']
    stem = posixpath.basename(path).removesuffix(".json")
    try:
        case = TestCase.model_validate({**document, "name": stem})
    except ValidationError as exc:
        return None, [_structure_problem(exc)]
    except RecursionError:
        return None, ["'data' is nested too deeply; give it as a flat list with the shape"]
    return case, _against_config(case, served) if served else []


def _structure_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    shown = [f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in errors[:_MAX_ERRORS_SHOWN]]
    more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
    return "not a KServe v2 test case: " + "; ".join(shown) + more


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"


def _against_config(case: TestCase, served: ModelSummary) -> list[str]:
    problems: list[str] = []
    problems += _duplicates("input", [t.name for t in case.inputs])
    problems += _duplicates("expected output", [t.name for t in case.outputs])
    # A config without inputs/outputs is auto-completed by Triton from the model file: no names to check.
    inputs = {spec.name: spec for spec in served.inputs}
    for tensor in case.inputs:
        spec = inputs.get(tensor.name)
        if spec is None:
            if inputs:
                problems.append(_unknown("input", tensor.name, served.inputs))
            continue
        what = f"input '{tensor.name}'"
        problems += _datatype(what, tensor.datatype, spec)
        shape = shape_problem(tensor.shape, spec, served, max_batch=served.max_batch_size)
        problems += [f"{what}: {shape}"] if shape else []
        data = data_problem(tensor.datatype, tensor.shape, tensor.data)
        problems += [f"{what}: {data}"] if data else []
    outputs = {spec.name: spec for spec in served.outputs}
    for expected in case.outputs:
        spec = outputs.get(expected.name)
        if spec is None:
            if outputs:
                problems.append(_unknown("output", expected.name, served.outputs))
            continue
        what = f"expected output '{expected.name}'"
        if expected.datatype is not None:
            problems += _datatype(what, expected.datatype, spec)
        datatype = expected.datatype or kserve_datatype(spec.data_type) or "BYTES"
        if expected.shape is not None:
            shape = shape_problem(expected.shape, spec, served)
            problems += [f"{what}: {shape}"] if shape else []
            data = data_problem(datatype, expected.shape, expected.data)
        else:
            data = data_problem(datatype, [len(expected.data)], expected.data)
        problems += [f"{what}: {data}"] if data else []
    return problems


def _datatype(what: str, datatype: str, spec: TensorSpec) -> list[str]:
    wanted = kserve_datatype(spec.data_type)
    if wanted is None or datatype == wanted:
        return []
    return [f'{what} has datatype {datatype} but the config says {spec.data_type}: use "datatype": "{wanted}"']


def _unknown(kind: str, name: str, specs: list[TensorSpec]) -> str:
    known = ", ".join(f"'{s.name}'" for s in specs)
    return f"'{name}' is not an {kind} of the served model (its {kind}s: {known})"


def _duplicates(kind: str, names: list[str]) -> list[str]:
    repeated = sorted({n for n in names if names.count(n) > 1})
    return [f"{kind} '{name}' is listed more than once" for name in repeated]
