"""Triton's scheduling and placement rules (batching_rules.py, placement_rules.py): for each rule the
smallest config change from the single valid Python model that Triton 2.50 refuses at load, and the
nearest variant it accepts, which must stay valid.
"""

from __future__ import annotations

import time

import pytest

from chalicelib.domain.validation.findings import CATALOGUE, Code, Severity
from chalicelib.domain.validation.report import ValidationReport
from testkit.tarballs import codes, pack, python_config, single_python_repo, validate_bytes

Files = dict[str, bytes | None]
SIMPLE = "simple/config.pbtxt"


def with_config(extra: str = "", files: Files | None = None, **kwargs: object) -> ValidationReport:
    """The single Python model with ``extra`` appended to its config, plus ``files``."""
    repo = {**single_python_repo(), SIMPLE: python_config("simple", extra=extra, **kwargs)}  # type: ignore[arg-type]
    return validate_bytes(pack({**repo, **(files or {})}))


def assert_only(report: ValidationReport, *expected: Code) -> None:
    """Exactly these codes; valid unless one of them is an error."""
    assert codes(report) == {c.value for c in expected}, report.findings
    assert report.valid == all(CATALOGUE[c][0] is Severity.WARNING for c in expected)


def batch_input(sources: str = '"IN"', data_type: str = "TYPE_INT32") -> str:
    return (
        f'batch_input [ {{ kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: {data_type} '
        f"source_input: [ {sources} ] }} ]"
    )


def batch_output(targets: str = '"OUT"', sources: str = '"IN"') -> str:
    return (
        "batch_output [ { kind: BATCH_SCATTER_WITH_INPUT_SHAPE "
        f"target_name: [ {targets} ] source_input: [ {sources} ] }} ]"
    )


# -- batch_input / batch_output (ValidateBatchIO) ---------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(batch_input(), [], id="batch-input-accepted"),
        pytest.param(batch_input(data_type="TYPE_FP32"), [], id="batch-input-fp32-accepted"),
        pytest.param(batch_output(), [], id="batch-output-accepted"),
        pytest.param(batch_input('"IN", "IN"'), [Code.BATCH_IO_SOURCE_COUNT], id="two-sources"),
        pytest.param(batch_input(""), [Code.BATCH_IO_SOURCE_COUNT], id="no-source"),
        pytest.param(batch_output(sources=""), [Code.BATCH_IO_SOURCE_COUNT], id="output-no-source"),
        pytest.param(batch_input(data_type="TYPE_FP16"), [Code.BATCH_INPUT_DATA_TYPE], id="fp16"),
        pytest.param(
            'batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" source_input: "IN" } ]',
            [Code.BATCH_INPUT_DATA_TYPE],
            id="data-type-unset",
        ),
        pytest.param(batch_input('"NOPE"'), [Code.BATCH_IO_UNKNOWN_TENSOR], id="unknown-source"),
        pytest.param(batch_output(sources='"NOPE"'), [Code.BATCH_IO_UNKNOWN_TENSOR], id="output-unknown-source"),
        pytest.param(batch_output('"NOPE"'), [Code.BATCH_IO_UNKNOWN_TENSOR], id="unknown-target"),
        pytest.param(batch_output('"IN"'), [Code.BATCH_IO_UNKNOWN_TENSOR], id="target-is-an-input"),
        pytest.param(batch_output('"OUT", "OUT"'), [Code.BATCH_OUTPUT_TARGET_DUPLICATE], id="duplicate-target"),
    ],
)
def test_batch_io(extra: str, expected: list[Code]) -> None:
    # GIVEN a batch_input or batch_output WHEN validated THEN exactly Triton's refusals
    assert_only(with_config(extra), *expected)


def test_batch_io_names_are_not_checked_against_an_io_list_the_backend_completes() -> None:
    # GIVEN no outputs in the config (the backend fills them from the model) THEN no name finding
    report = with_config(batch_output('"LOGITS"'), outputs=" ")
    assert Code.BATCH_IO_UNKNOWN_TENSOR.value not in codes(report)


def test_batch_io_names_are_not_checked_when_model_py_may_add_tensors() -> None:
    # GIVEN a model.py whose auto_complete_config adds inputs mmedeploy cannot read, and a batch_input
    # reading one of them THEN Triton may load it: no name finding
    source = (
        "import triton_python_backend_utils as pb_utils\n\n"
        "class TritonPythonModel:\n"
        "    @staticmethod\n"
        "    def auto_complete_config(config):\n"
        "        for spec in load_specs():\n"
        "            config.add_input(spec)\n"
        "        return config\n\n"
        "    def execute(self, requests):\n"
        "        return []\n"
    )
    report = with_config(batch_input('"LENGTHS"'), {"simple/1/model.py": source.encode()})
    assert Code.BATCH_IO_UNKNOWN_TENSOR.value not in codes(report)
    assert Code.PYTHON_AUTO_COMPLETE_UNREADABLE.value in codes(report)


def test_batch_io_message_says_what_to_use() -> None:
    finding = with_config(batch_input('"NOPE"')).findings[0]
    assert finding.path == SIMPLE
    assert "'NOPE'" in finding.message and "['IN']" in finding.message


# -- dynamic batching queue policy (ValidateModelConfig) --------------------------------------------


def dynamic(body: str) -> str:
    return f"dynamic_batching {{ {body} }}"


DELAY = "{ timeout_action: DELAY default_timeout_microseconds: 100 }"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            dynamic("priority_levels: 2 default_priority_level: 2 priority_queue_policy { key: 1 value: {} }"),
            [],
            id="priorities-accepted",
        ),
        pytest.param(dynamic("priority_levels: 2"), [Code.QUEUE_PRIORITY_INVALID], id="default-level-unset"),
        pytest.param(
            dynamic("priority_levels: 2 default_priority_level: 3"), [Code.QUEUE_PRIORITY_INVALID], id="default-above"
        ),
        pytest.param(
            dynamic("priority_levels: 2 default_priority_level: 1 priority_queue_policy { key: 3 value: {} }"),
            [Code.QUEUE_PRIORITY_INVALID],
            id="policy-key-above",
        ),
        pytest.param(
            dynamic("priority_levels: 2 default_priority_level: 1 priority_queue_policy { key: 0 value: {} }"),
            [Code.QUEUE_PRIORITY_INVALID],
            id="policy-key-zero",
        ),
        pytest.param(dynamic("default_priority_level: 1"), [Code.QUEUE_PRIORITY_IGNORED], id="level-without-levels"),
        pytest.param(
            dynamic("priority_queue_policy { key: 1 value: {} }"), [Code.QUEUE_PRIORITY_IGNORED], id="policy-no-levels"
        ),
        pytest.param(dynamic("preserve_ordering: true"), [], id="ordering-accepted"),
        pytest.param(
            dynamic("preserve_ordering: true priority_levels: 1 default_priority_level: 1"),
            [],
            id="ordering-one-level-accepted",
        ),
        pytest.param(
            dynamic("preserve_ordering: true priority_levels: 2 default_priority_level: 1"),
            [Code.QUEUE_ORDERING_CONFLICT],
            id="ordering-two-levels",
        ),
        pytest.param(
            dynamic(f"preserve_ordering: true default_queue_policy {DELAY}"),
            [Code.QUEUE_ORDERING_CONFLICT],
            id="ordering-delay",
        ),
        pytest.param(
            dynamic(
                "preserve_ordering: true priority_levels: 1 default_priority_level: 1 "
                f"priority_queue_policy {{ key: 1 value: {DELAY} }}"
            ),
            [Code.QUEUE_ORDERING_CONFLICT],
            id="ordering-delay-in-priority-policy",
        ),
        pytest.param(
            dynamic("preserve_ordering: true default_queue_policy { timeout_action: DELAY }"),
            [],
            id="ordering-delay-without-timeout-accepted",
        ),
        pytest.param(dynamic(f"default_queue_policy {DELAY}"), [], id="delay-without-ordering-accepted"),
        pytest.param(dynamic("max_queue_delay_microseconds: 100000000"), [], id="long-queue-delay-accepted"),
    ],
)
def test_queue_policy(extra: str, expected: list[Code]) -> None:
    assert_only(with_config(extra), *expected)


# -- sequence batching controls (Get{Boolean,Typed}SequenceControlProperties) ----------------------


def sequence(*controls: str, body: str = "") -> str:
    return f"sequence_batching {{ {body} control_input [ {', '.join(controls)} ] }}"


def control(name: str, *entries: str) -> str:
    return f'{{ name: "{name}" control [ {", ".join(entries)} ] }}'


START = "{ kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] }"
END = "{ kind: CONTROL_SEQUENCE_END fp32_false_true: [ 0, 1 ] }"
READY = "{ kind: CONTROL_SEQUENCE_READY bool_false_true: [ false, true ] }"
CORRID = "{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 }"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            sequence(control("S", START), control("E", END), control("R", READY), control("C", CORRID)),
            [],
            id="all-kinds-accepted",
        ),
        pytest.param(sequence(control("UNUSED")), [], id="control-input-without-control-accepted"),
        pytest.param(
            sequence(control("C", "{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_STRING }")),
            [],
            id="string-corrid-accepted",
        ),
        pytest.param(sequence(control("", START)), [Code.SEQUENCE_CONTROL_NAME_MISSING], id="no-name"),
        pytest.param(
            sequence(control("S", START), control("S2", START)), [Code.SEQUENCE_CONTROL_DUPLICATE], id="two-starts"
        ),
        pytest.param(sequence(control("S", START, START)), [Code.SEQUENCE_CONTROL_DUPLICATE], id="start-twice-in-one"),
        pytest.param(
            sequence(control("S", START), control("S", END)), [Code.SEQUENCE_CONTROL_DUPLICATE], id="tensor-twice"
        ),
        pytest.param(
            sequence(control("C", CORRID), control("C2", CORRID)), [Code.SEQUENCE_CONTROL_DUPLICATE], id="two-corrids"
        ),
        pytest.param(
            sequence(control("S", "{ kind: CONTROL_SEQUENCE_START }")),
            [Code.SEQUENCE_CONTROL_VALUE_INVALID],
            id="start-without-value",
        ),
        pytest.param(
            sequence(control("S", "{ kind: CONTROL_SEQUENCE_END int32_false_true: [0, 1] fp32_false_true: [0, 1] }")),
            [Code.SEQUENCE_CONTROL_VALUE_INVALID],
            id="two-value-fields",
        ),
        pytest.param(
            sequence(control("S", "{ kind: CONTROL_SEQUENCE_READY int32_false_true: [0, 1, 2] }")),
            [Code.SEQUENCE_CONTROL_VALUE_INVALID],
            id="three-values",
        ),
        pytest.param(
            sequence(control("C", "{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 int32_false_true: [0, 1] }")),
            [Code.SEQUENCE_CONTROL_VALUE_INVALID],
            id="corrid-with-values",
        ),
        pytest.param(
            sequence(control("C", "{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_FP32 }")),
            [Code.SEQUENCE_CONTROL_DATA_TYPE],
            id="corrid-fp32",
        ),
        pytest.param(
            sequence(control("C", "{ kind: CONTROL_SEQUENCE_CORRID }")),
            [Code.SEQUENCE_CONTROL_DATA_TYPE],
            id="corrid-without-type",
        ),
    ],
)
def test_sequence_controls(extra: str, expected: list[Code]) -> None:
    assert_only(with_config(extra), *expected)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("oldest { preferred_batch_size: [ 2, 4 ] }", [], id="oldest-accepted"),
        pytest.param("oldest { preferred_batch_size: [ 8 ] }", [Code.PREFERRED_BATCH_SIZE_INVALID], id="oldest-above"),
        pytest.param("direct { minimum_slot_utilization: 0.5 }", [], id="direct-accepted"),
        pytest.param(
            "direct { minimum_slot_utilization: 1.5 }", [Code.SEQUENCE_STRATEGY_INVALID], id="utilization-above-one"
        ),
        pytest.param(
            "direct { minimum_slot_utilization: -0.1 }", [Code.SEQUENCE_STRATEGY_INVALID], id="utilization-negative"
        ),
        # Triton's 'x < 0.0 || x > 1.0' is false for nan, so it loads
        pytest.param("direct { minimum_slot_utilization: nan }", [], id="utilization-nan-accepted"),
    ],
)
def test_sequence_strategies(body: str, expected: list[Code]) -> None:
    assert_only(with_config(f"sequence_batching {{ {body} }}"), *expected)


# -- implicit state (SequenceBatchScheduler::Create, GenerateInitialStateData) --------------------


def state(initial: str = 'initial_state { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true name: "zeros" }') -> str:
    return (
        'sequence_batching { state [ { input_name: "S_IN" output_name: "S_OUT" data_type: TYPE_FP32 dims: [ -1 ] '
        f"{initial} }} ] }}"
    )


@pytest.mark.parametrize(
    ("initial", "expected"),
    [
        pytest.param(None, [], id="zero-data-accepted"),
        pytest.param("", [], id="no-initial-state-accepted"),
        pytest.param(
            'initial_state [ { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true name: "a" }, '
            '{ data_type: TYPE_FP32 dims: [ 2 ] zero_data: true name: "b" } ]',
            [Code.SEQUENCE_STATE_INVALID],
            id="two-initial-states",
        ),
        pytest.param(
            'initial_state { data_type: TYPE_INT32 dims: [ 2 ] zero_data: true name: "z" }',
            [Code.SEQUENCE_STATE_INVALID],
            id="data-type-mismatch",
        ),
        pytest.param(
            "initial_state { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true }",
            [Code.SEQUENCE_STATE_INVALID],
            id="no-name",
        ),
        pytest.param(
            'initial_state { data_type: TYPE_FP32 dims: [ 2, 2 ] zero_data: true name: "z" }',
            [Code.SEQUENCE_STATE_INVALID],
            id="rank-mismatch",
        ),
        pytest.param(
            'initial_state { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true name: "z" }',
            [Code.SEQUENCE_STATE_INVALID],
            id="variable-dims",
        ),
        pytest.param(
            'initial_state { data_type: TYPE_FP32 dims: [ 2 ] name: "z" }',
            [Code.SEQUENCE_STATE_INVALID],
            id="no-data",
        ),
    ],
)
def test_sequence_state(initial: str | None, expected: list[Code]) -> None:
    assert_only(with_config(state() if initial is None else state(initial)), *expected)


def test_sequence_state_dims_must_fit_fixed_state_dims() -> None:
    fixed = state().replace("dims: [ -1 ]", "dims: [ 3 ]")
    assert_only(with_config(fixed), Code.SEQUENCE_STATE_INVALID)
    assert_only(with_config(fixed.replace("dims: [ 2 ]", "dims: [ 3 ]")))


def test_sequence_state_data_file() -> None:
    initial = 'initial_state { data_type: TYPE_FP32 dims: [ 2 ] data_file: "zeros.bin" name: "z" }'
    path = "simple/initial_state/zeros.bin"
    # GIVEN the file missing THEN refused, at the file's path
    report = with_config(state(initial))
    assert_only(report, Code.SEQUENCE_STATE_FILE_MISSING)
    assert report.findings[0].path == path
    # GIVEN 4 bytes where FP32 [2] needs 8 THEN refused; GIVEN 8 THEN accepted
    assert_only(with_config(state(initial), {path: b"\0" * 4}), Code.SEQUENCE_STATE_FILE_MISSING)
    assert_only(with_config(state(initial), {path: b"\0" * 8}))
    # GIVEN an absolute name THEN Triton still reads it under initial_state/
    absolute = initial.replace('"zeros.bin"', '"/zeros.bin"')
    assert_only(with_config(state(absolute), {path: b"\0" * 8}))


def test_sequence_state_data_file_with_thousands_of_huge_dims_is_sized_quickly() -> None:
    # GIVEN 5000 dims of 2^62 (their product has 300,000 bits: seconds to compute in full)
    dims = ", ".join(["4611686018427387904"] * 5000)
    initial = f'initial_state {{ data_type: TYPE_FP32 dims: [ {dims} ] data_file: "s.bin" name: "z" }}'
    config = state(initial).replace("dims: [ -1 ]", f"dims: [ {dims} ]")
    started = time.monotonic()
    # WHEN validated THEN the file is too small, found in well under a second
    assert_only(with_config(config, {"simple/initial_state/s.bin": b"\0" * 8}), Code.SEQUENCE_STATE_FILE_MISSING)
    assert time.monotonic() - started < 2


# -- response cache (ValidateModelConfig) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param("response_cache { enable: true }", [], id="cache-accepted"),
        pytest.param(
            "response_cache { enable: true } sequence_batching { }",
            [Code.RESPONSE_CACHE_UNSUPPORTED],
            id="cache-with-sequence-batching",
        ),
        pytest.param(
            "response_cache { enable: true } model_transaction_policy { decoupled: true }",
            [Code.RESPONSE_CACHE_UNSUPPORTED],
            id="cache-with-decoupled",
        ),
        pytest.param("response_cache { enable: false } sequence_batching { }", [], id="cache-off-accepted"),
    ],
)
def test_response_cache(extra: str, expected: list[Code]) -> None:
    assert_only(with_config(extra), *expected)


# -- instance groups (NormalizeInstanceGroup, ValidateInstanceGroup) ------------------------------


def group(body: str) -> str:
    return f"instance_group [ {{ {body} }} ]"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(group("kind: KIND_GPU gpus: [ 0 ]"), [], id="gpu-0-accepted"),
        pytest.param(group("kind: KIND_GPU"), [], id="gpu-all-accepted"),
        pytest.param(group("kind: KIND_AUTO gpus: [ 0 ]"), [], id="auto-gpu-0-accepted"),
        pytest.param(group("kind: KIND_CPU count: 2"), [], id="cpu-accepted"),
        pytest.param(group("kind: KIND_MODEL"), [], id="model-accepted"),
        pytest.param(group("kind: KIND_CPU gpus: [ 0 ]"), [Code.INSTANCE_GPUS_NOT_ALLOWED], id="cpu-with-gpus"),
        pytest.param(group("kind: KIND_MODEL gpus: [ 0 ]"), [Code.INSTANCE_GPUS_NOT_ALLOWED], id="model-with-gpus"),
        pytest.param(group("kind: KIND_GPU gpus: [ -1 ]"), [Code.INSTANCE_GPU_ID_INVALID], id="negative-gpu"),
        pytest.param(group("kind: KIND_GPU gpus: [ 8 ]"), [Code.INSTANCE_GPU_ID_INVALID], id="gpu-beyond-any-instance"),
        pytest.param(group("kind: KIND_AUTO gpus: [ -1 ]"), [Code.INSTANCE_GPU_ID_INVALID], id="auto-negative-gpu"),
        pytest.param(group("kind: KIND_GPU gpus: [ 0, 3 ]"), [Code.INSTANCE_GPU_ID_UNCERTAIN], id="multi-gpu-only"),
        pytest.param(group("kind: KIND_GPU count: -1"), [Code.INSTANCE_COUNT_DEFAULTED], id="negative-count"),
        pytest.param(group("kind: KIND_GPU count: 0"), [], id="count-unset-accepted"),
        pytest.param(group('kind: KIND_GPU profile: [ "0" ]'), [Code.INSTANCE_PROFILE_INVALID], id="profile-not-trt"),
    ],
)
def test_instance_groups(extra: str, expected: list[Code]) -> None:
    assert_only(with_config(extra), *expected)


def test_instance_gpu_warning_names_the_gpus_needed() -> None:
    finding = with_config(group("kind: KIND_GPU gpus: [ 3 ]")).findings[0]
    assert "at least 4 GPUs" in finding.message


def tensorrt_with(profile: str) -> ValidationReport:
    config = (
        'name: "plan"\nbackend: "tensorrt"\nmax_batch_size: 4\n'
        'input [ { name: "IN", data_type: TYPE_FP32, dims: [ 4 ] } ]\n'
        'output [ { name: "OUT", data_type: TYPE_FP32, dims: [ 4 ] } ]\n' + group(f"kind: KIND_GPU profile: {profile}")
    ).encode()
    files: Files = {"model_version.txt": b"1\n", "plan/config.pbtxt": config, "plan/1/model.plan": b"engine"}
    return validate_bytes(pack(files), "plan_1.tar.gz")


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        pytest.param('[ "0", "1" ]', [], id="indices-accepted"),
        pytest.param('[ "2abc" ]', [], id="stoi-prefix-accepted"),
        pytest.param('[ "-1" ]', [Code.INSTANCE_PROFILE_INVALID], id="negative"),
        pytest.param('[ "first" ]', [Code.INSTANCE_PROFILE_INVALID], id="not-a-number"),
        pytest.param('[ "" ]', [Code.INSTANCE_PROFILE_INVALID], id="empty"),
        pytest.param('[ " -0" ]', [], id="minus-zero-accepted"),
        pytest.param('[ "\u0663" ]', [Code.INSTANCE_PROFILE_INVALID], id="non-ascii-digit"),  # stoi reads ASCII only
        # GIVEN more digits than int() converts THEN a finding, never an exception
        pytest.param(f'[ "-{"9" * 5000}" ]', [Code.INSTANCE_PROFILE_INVALID], id="thousands-of-digits-negative"),
        pytest.param(f'[ "{"9" * 5000}" ]', [], id="thousands-of-digits"),
    ],
)
def test_instance_profiles_of_tensorrt(profile: str, expected: list[Code]) -> None:
    assert_only(tensorrt_with(profile), *expected)


# -- runtime (TritonModel::GetBackendLibraryProperties) -------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "files", "expected"),
    [
        pytest.param("libtriton_python.so", {}, [], id="own-library-accepted"),
        pytest.param("/libtriton_python.so", {}, [], id="leading-slash-dropped-accepted"),
        pytest.param("sub/../libtriton_python.so", {}, [], id="dotdot-inside-accepted"),
        pytest.param("model.py", {}, [], id="python-based-accepted"),
        pytest.param("libcustom.so", {"simple/1/libcustom.so": b"elf"}, [], id="shipped-in-version-accepted"),
        pytest.param("libcustom.so", {"simple/libcustom.so": b"elf"}, [], id="shipped-in-model-accepted"),
        pytest.param(
            "../onnxruntime/libtriton_onnxruntime.so", {}, [Code.RUNTIME_ESCAPES_BACKEND], id="escapes-with-dotdot"
        ),
        pytest.param("a/../../libtriton_python.so", {}, [Code.RUNTIME_ESCAPES_BACKEND], id="escapes-after-normalising"),
        pytest.param("libtriton_onnxruntime.so", {}, [Code.RUNTIME_NOT_FOUND], id="another-backends-library"),
        pytest.param(
            "/opt/tritonserver/backends/python/libtriton_python.so", {}, [Code.RUNTIME_NOT_FOUND], id="absolute-path"
        ),
        pytest.param("libcustom.so", {}, [Code.RUNTIME_UNVERIFIED], id="unknown-library-warns"),
        pytest.param("libcustom.so.2", {}, [Code.RUNTIME_UNVERIFIED], id="versioned-library-warns"),
        pytest.param("__invalid_runtime__", {}, [Code.RUNTIME_NOT_FOUND], id="not-a-library"),
        pytest.param(
            "__invalid_runtime__", {"simple/1/__invalid_runtime__": b"elf"}, [], id="shipped-any-name-accepted"
        ),
    ],
)
def test_runtime(runtime: str, files: Files, expected: list[Code]) -> None:
    assert_only(with_config(f'runtime: "{runtime}"', files), *expected)


def test_runtime_of_a_custom_backend_is_only_checked_for_escapes() -> None:
    # GIVEN a backend the standard image lacks (BACKEND_UNKNOWN warns) THEN which libraries its directory
    # holds is the image's business
    repo = single_python_repo()
    config = (repo[SIMPLE] or b"").decode().replace('backend: "python"', 'backend: "custom"')
    files: Files = {**repo, SIMPLE: (config + '\nruntime: "libcustom.so"').encode()}
    assert Code.RUNTIME_UNVERIFIED.value not in codes(validate_bytes(pack(files)))
    files = {**files, SIMPLE: (config + '\nruntime: "../libcustom.so"').encode()}
    assert Code.RUNTIME_ESCAPES_BACKEND.value in codes(validate_bytes(pack(files)))
