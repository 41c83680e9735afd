"""Triton's ensemble rules (ensemble_utils.cc, ValidateEnsembleSchedulingConfig) and the Python
backend's auto_complete_config (triton_python_backend_utils.py ModelConfig): one focused test per
finding code, each the smallest change from a valid repository that Triton would refuse, plus the
variants Triton accepts (a partial config that model.py completes stays valid, with a warning).
"""

from __future__ import annotations

import random
import resource
import time
from collections import defaultdict, deque

import pytest
from google.protobuf import text_format

from chalicelib.domain.validation.ensemble_rules import _decoupled
from chalicelib.domain.validation.findings import Code
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.repository import ParsedModel
from chalicelib.domain.validation.schemas import model_config_pb2 as pb
from testkit.tarballs import codes, idcheck_repo, pack, python_config, single_python_repo, validate_bytes
from tests.unit.test_triton_rules import (
    PIPELINE,
    SIMPLE,
    Files,
    append,
    assert_only,
    check,
    check_idcheck,
    edit,
    ensemble,
    fp32_tensors,
    python_member,
)

MODEL_PY = "simple/1/model.py"
Step = tuple[str, dict[str, str], dict[str, str]]  # model, input_map, output_map
POST_STEP = '      model_name: "idcheck_postprocessing"\n'


def with_auto_complete(body: str, config: bytes | None = None, header: str = "") -> Files:
    """The single Python model whose model.py defines auto_complete_config with ``body``."""
    indented = "\n".join(f"        {line}" if line else "" for line in body.strip("\n").splitlines())
    source = (
        f"import triton_python_backend_utils as pb_utils\n{header}\n\n"
        "class TritonPythonModel:\n"
        "    @staticmethod\n"
        "    def auto_complete_config(auto_complete_model_config):\n"
        f"{indented}\n\n"
        "    def execute(self, requests):\n"
        "        return []\n"
    )
    files = {**single_python_repo(), MODEL_PY: source.encode()}
    if config is not None:
        files[SIMPLE] = config
    return files


IN = '{"name": "IN", "data_type": "TYPE_FP32", "dims": [4]}'
OUT = '{"name": "OUT", "data_type": "TYPE_FP32", "dims": [4]}'
ADDS_BOTH = f"auto_complete_model_config.add_input({IN})\nauto_complete_model_config.add_output({OUT})\n"
RETURN = "return auto_complete_model_config"
PARTIAL = python_config("simple", inputs='{ name: "IN" }', outputs=" ")  # IN without type or dims, no outputs


def the(report_codes: set[str], code: Code) -> bool:
    return code.value in report_codes


# -- ensembles ---------------------------------------------------------------------------------


def test_ensemble_optimization() -> None:
    files = append(idcheck_repo(), PIPELINE, "optimization { input_pinned_memory { enable: true } }")
    assert_only(check_idcheck(files), Code.ENSEMBLE_OPTIMIZATION)


def test_ensemble_model_warmup() -> None:
    warmup = (
        'model_warmup [ { name: "w" batch_size: 1 inputs { key: "RAW_FEATURES" '
        "value: { data_type: TYPE_FP32 dims: [ 16 ] zero_data: true } } } ]"
    )
    assert_only(check_idcheck(append(idcheck_repo(), PIPELINE, warmup)), Code.ENSEMBLE_MODEL_WARMUP)


def test_ensemble_scheduling_not_ensemble() -> None:
    scheduling = (
        'ensemble_scheduling { step [ { model_name: "x" input_map { key: "a" value: "IN" } '
        'output_map { key: "b" value: "OUT" } } ] }'
    )
    report = check(append(single_python_repo(), SIMPLE, scheduling))
    assert_only(report, Code.ENSEMBLE_SCHEDULING_NOT_ENSEMBLE)
    assert "remove ensemble_scheduling" in report.findings[0].message


def test_ensemble_step_model_name_missing() -> None:
    report = check_idcheck(edit(idcheck_repo(), PIPELINE, POST_STEP, ""))
    assert_only(report, Code.ENSEMBLE_STEP_MODEL_NAME_MISSING)
    assert "step 2 of ensemble" in report.findings[0].message


def _two_step_pipe(source_map: dict[str, str]) -> Files:
    """src (no inputs) writes 's', which a reads beside the ensemble input X."""
    return {
        "model_version.txt": b"1\n",
        "src/config.pbtxt": python_config("src", inputs=" ", outputs=fp32_tensors(["OUT"])),
        "src/1/model.py": single_python_repo()[MODEL_PY],
        **python_member("a", ["IN", "AUX"], ["OUT"]),
        **ensemble(
            "pipe", ["X"], ["Y"], [("src", source_map, {"OUT": "s"}), ("a", {"IN": "X", "AUX": "s"}, {"OUT": "Y"})]
        ),
    }


def test_ensemble_step_input_map_missing() -> None:
    # GIVEN a step of a model without inputs, so nothing else is wrong THEN Triton still wants an input_map
    report = check(_two_step_pipe({}), "pipe_1.tar.gz")
    assert_only(report, Code.ENSEMBLE_STEP_INPUT_MAP_MISSING)
    assert "step 0 of ensemble 'pipe_1.tar.gz' ('src') has no input_map" in report.findings[0].message


def test_ensemble_map_unknown_tensor_of_a_python_member_without_inputs() -> None:
    # A Python model's config (after auto-complete) is all it has: mapping an input it lacks is refused.
    report = check(_two_step_pipe({"IN": "X"}), "pipe_1.tar.gz")
    assert_only(report, Code.ENSEMBLE_MAP_UNKNOWN_TENSOR)
    assert "has no inputs" in report.findings[0].message


def test_ensemble_step_output_map_missing() -> None:
    outputs = (
        '      output_map { key: "PROBABILITIES" value: "PROBABILITIES" }\n'
        '      output_map { key: "DECISION" value: "DECISION" }\n'
    )
    report = check_idcheck(edit(idcheck_repo(), PIPELINE, outputs, ""))
    # the outputs are then written by no step, which Triton would say next
    assert_only(report, Code.ENSEMBLE_STEP_OUTPUT_MAP_MISSING, Code.ENSEMBLE_OUTPUT_NOT_PRODUCED)


def test_ensemble_member_output_declared_twice_writes_its_tensor_twice() -> None:
    # Outside an ensemble Triton keeps the first (a warning); mapped by a step it refuses the ensemble.
    post = "idcheck_postprocessing/config.pbtxt"
    decision = '{ name: "DECISION", data_type: TYPE_STRING, dims: [ 1 ] }'
    files = edit(idcheck_repo(), post, decision, f"{decision},\n  {decision}")
    report = check_idcheck(files)
    assert_only(report, Code.IO_DUPLICATE_NAME, Code.ENSEMBLE_TENSOR_MULTIPLE_WRITERS)
    assert "declares output 'DECISION' twice" in report.findings[-1].message


def _member(name: str, inputs: list[str], outputs: list[str], decoupled: bool = False) -> Files:
    extra = "model_transaction_policy { decoupled: true }" if decoupled else ""
    config = python_config(name, inputs=fp32_tensors(inputs), outputs=fp32_tensors(outputs), extra=extra)
    return {f"{name}/config.pbtxt": config, f"{name}/1/model.py": single_python_repo()[MODEL_PY]}


def _fan_in(b_decoupled: bool) -> Files:
    """X -> a (decoupled) -> p and X -> b -> q, both read by c."""
    return {
        "model_version.txt": b"1\n",
        **_member("a", ["IN"], ["OUT"], decoupled=True),
        **_member("b", ["IN"], ["OUT"], decoupled=b_decoupled),
        **_member("c", ["IN", "AUX"], ["OUT"]),
        **ensemble(
            "pipe",
            ["X"],
            ["Y"],
            [
                ("a", {"IN": "X"}, {"OUT": "p"}),
                ("b", {"IN": "X"}, {"OUT": "q"}),
                ("c", {"IN": "p", "AUX": "q"}, {"OUT": "Y"}),
            ],
        ),
    }


@pytest.mark.parametrize("b_decoupled", [False, True], ids=["with-plain", "with-other-decoupled"])
def test_ensemble_decoupled_mixed(b_decoupled: bool) -> None:
    report = check(_fan_in(b_decoupled), "pipe_1.tar.gz")
    assert_only(report, Code.ENSEMBLE_DECOUPLED_MIXED)
    assert "the step of model 'c'" in report.findings[0].message
    assert "decoupled model 'a'" in report.findings[0].message


def test_ensemble_outputs_from_different_decoupled_branches() -> None:
    files = {
        "model_version.txt": b"1\n",
        **_member("a", ["IN"], ["OUT"], decoupled=True),
        **_member("b", ["IN"], ["OUT"]),
        **ensemble("pipe", ["X"], ["Y", "Z"], [("a", {"IN": "X"}, {"OUT": "Y"}), ("b", {"IN": "X"}, {"OUT": "Z"})]),
    }
    report = check(files, "pipe_1.tar.gz")
    assert_only(report, Code.ENSEMBLE_DECOUPLED_MIXED)
    assert "the outputs of ensemble" in report.findings[0].message


def test_ensemble_decoupled_chain_and_sibling_outputs_are_accepted() -> None:
    # a decoupled step's two outputs read together by the next step, and a plain chain after it: one branch
    files = {
        "model_version.txt": b"1\n",
        **_member("a", ["IN"], ["OUT", "AUX"], decoupled=True),
        **_member("c", ["IN", "AUX"], ["OUT"]),
        **_member("d", ["IN"], ["OUT"]),
        **ensemble(
            "pipe",
            ["X"],
            ["Y"],
            [
                ("a", {"IN": "X"}, {"OUT": "p", "AUX": "q"}),
                ("c", {"IN": "p", "AUX": "q"}, {"OUT": "r"}),
                ("d", {"IN": "r"}, {"OUT": "Y"}),
            ],
        ),
    }
    assert_only(check(files, "pipe_1.tar.gz"))


def test_ensemble_with_a_decoupled_step_is_decoupled_for_the_ensemble_that_nests_it() -> None:
    # GIVEN inner (X -> a, decoupled) nested in outer beside a plain b, both read by c
    fan_in = _fan_in(b_decoupled=False)
    inner = ensemble("inner", ["X"], ["Y"], [("a", {"IN": "X"}, {"OUT": "Y"})], 'platform : "ensemble"')
    steps: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("inner", {"X": "X"}, {"Y": "p"}),
        ("b", {"IN": "X"}, {"OUT": "q"}),
        ("c", {"IN": "p", "AUX": "q"}, {"OUT": "Y"}),
    ]
    files = {k: v for k, v in fan_in.items() if not k.startswith("pipe/")}
    files.update({**inner, **ensemble("pipe", ["X"], ["Y"], steps)})
    report = check(files, "pipe_1.tar.gz")
    # THEN Triton refuses outer: inner's output comes from a decoupled model
    assert_only(report, Code.ENSEMBLE_DECOUPLED_MIXED)
    assert "decoupled model 'inner'" in report.findings[0].message


def test_a_long_chain_of_nested_ensembles_is_walked_without_recursion() -> None:
    # GIVEN 1100 ensembles each nesting the next (deeper than Python's recursion limit)
    files: Files = {"model_version.txt": b"1\n", **python_member("leaf", ["IN"], ["OUT"])}
    count = 1100
    for i in range(count):
        inner, maps = (
            (f"e{i + 1}", ({"X": "X"}, {"Y": "Y"})) if i < count - 1 else ("leaf", ({"IN": "X"}, {"OUT": "Y"}))
        )
        spelling = 'platform: "ensemble"' if i == 0 else 'platform : "ensemble"'
        files.update(ensemble(f"e{i}", ["X"], ["Y"], [(inner, *maps)], spelling))
    # WHEN validated THEN a report, not a RecursionError
    assert_only(check(files, "e0_1.tar.gz"))


def test_a_long_chain_of_steps_listed_last_first_is_ordered_in_linear_time() -> None:
    # GIVEN 3000 steps, each reading the tensor the step listed after it writes
    count = 3000
    steps = [("a", {"IN": f"t{i}"}, {"OUT": f"t{i + 1}"}) for i in range(count)][::-1]
    files = {
        "model_version.txt": b"1\n",
        **_member("a", ["IN"], ["OUT"]),
        **ensemble("pipe", ["t0"], [f"t{count}"], steps),
    }
    started = time.monotonic()
    # WHEN validated THEN accepted (no cycle), in well under the 10+ s that passes over the steps took
    assert_only(check(files, "pipe_1.tar.gz"))
    assert time.monotonic() - started < 5


# -- python auto_complete_config ---------------------------------------------------------------


def test_python_auto_completed_partial_config_stays_valid() -> None:
    # GIVEN config.pbtxt's input without data_type/dims and no outputs, which model.py adds
    report = check(with_auto_complete(ADDS_BOTH + RETURN, PARTIAL))
    # THEN Triton loads it: a warning saying what it fills, and the completed config downstream
    assert_only(report, Code.PYTHON_AUTO_COMPLETED)
    message = report.findings[0].message
    assert "input 'IN' data_type and dims (TYPE_FP32 [4])" in message and "output 'OUT' added" in message
    [model] = report.models
    assert [(t.name, t.data_type, t.dims) for t in model.inputs] == [("IN", "TYPE_FP32", [4])]
    assert [(t.name, t.data_type, t.dims) for t in model.outputs] == [("OUT", "TYPE_FP32", [4])]


def test_python_auto_complete_readme_pattern_completes_an_ensemble_member() -> None:
    # GIVEN python_backend's documented pattern (as_dict, a names list, a guarded loop) on a member
    # whose config.pbtxt declares no tensors at all
    body = f"""
inputs = [{IN}]
outputs = [{OUT}]
config = auto_complete_model_config.as_dict()
input_names = []
output_names = []
for input in config['input']:
    input_names.append(input['name'])
for output in config['output']:
    output_names.append(output['name'])
for input in inputs:
    if input['name'] not in input_names:
        auto_complete_model_config.add_input(input)
for output in outputs:
    if output['name'] not in output_names:
        auto_complete_model_config.add_output(output)
auto_complete_model_config.set_max_batch_size(4)
auto_complete_model_config.set_dynamic_batching()
return auto_complete_model_config
"""
    member = with_auto_complete(body, b'name: "a"\nbackend: "python"\n')
    files = {
        "model_version.txt": b"1\n",
        "a/config.pbtxt": member[SIMPLE],
        "a/1/model.py": member[MODEL_PY],
        **ensemble("pipe", ["X"], ["Y"], [("a", {"IN": "X"}, {"OUT": "Y"})]),
    }
    report = check(files, "pipe_1.tar.gz")
    # THEN the ensemble's wiring is checked against the completed member: valid, with the warning
    assert_only(report, Code.PYTHON_AUTO_COMPLETED)
    assert "max_batch_size 0 -> 4" in report.findings[0].message
    assert "dynamic_batching added" in report.findings[0].message


def test_python_auto_complete_that_agrees_with_the_config_reports_nothing() -> None:
    assert_only(check(with_auto_complete(ADDS_BOTH + "auto_complete_model_config.set_max_batch_size(4)\n" + RETURN)))
    # keyword arguments bind as in the backend's ModelConfig
    keywords = (
        f"auto_complete_model_config.add_input(input={IN})\n"
        "auto_complete_model_config.set_max_batch_size(max_batch_size=4)\n"
        "auto_complete_model_config.set_model_transaction_policy(dict(decoupled=False))\n" + RETURN
    )
    assert_only(check(with_auto_complete(keywords)))


@pytest.mark.parametrize(
    ("call", "triton_says"),
    [
        (
            'add_input({"name": "IN", "data_type": "TYPE_INT32", "dims": [4]})',
            "configuration expects datatype TYPE_FP32 for input 'IN', model provides TYPE_INT32",
        ),
        (
            'add_output({"name": "OUT", "data_type": "TYPE_FP32", "dims": [2, 2]})',
            "tensor 'OUT': the model expects dims [2, 2] but the model configuration specifies dims [4]",
        ),
        ('add_input({"name": "IN", "dims": [4]})', "input 'IN' in auto-complete-config function"),
        ('add_input({"data_type": "TYPE_FP32", "dims": [4]})', "is missing 'name' property"),
        (
            'add_output({"name": "OUT", "data_type": "TYPE_FP32", "dims": [4], "format": "FORMAT_NONE"})',
            "contains property other than 'name', 'data_type' and 'dims'",
        ),
        ("set_max_batch_size(2)", "configuration specified max_batch_size 4, but in auto-complete-config"),
        ('set_model_transaction_policy({"decoupled": True, "x": 1})', "contains property other than 'decoupled'"),
        (
            'add_input({"name": "EXTRA", "data_type": "FP32", "dims": [1]})',
            "Triton cannot read the completed config back",
        ),
    ],
    ids=[
        "datatype",
        "dims",
        "no-data-type",
        "no-name",
        "unknown-property",
        "max-batch-size",
        "policy-key",
        "type-name",
    ],
)
def test_python_auto_complete_conflict(call: str, triton_says: str) -> None:
    report = check(with_auto_complete(f"auto_complete_model_config.{call}\n{RETURN}"))
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_CONFLICT)
    assert triton_says in report.findings[0].message
    assert report.findings[0].path == MODEL_PY
    assert "(line 7)" in report.findings[0].message or "read the completed config back" in triton_says


def test_python_auto_complete_conflict_on_transaction_policy_and_scheduler() -> None:
    decoupled = python_config("simple", extra="model_transaction_policy { decoupled: true }")
    body = 'auto_complete_model_config.set_model_transaction_policy({"decoupled": False})\n' + RETURN
    report = check(with_auto_complete(body, decoupled))
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_CONFLICT)
    assert "trying to change decoupled property" in report.findings[0].message
    sequence = python_config("simple", extra="sequence_batching { }")
    report = check(with_auto_complete("auto_complete_model_config.set_dynamic_batching()\n" + RETURN, sequence))
    assert the(codes(report), Code.PYTHON_AUTO_COMPLETE_CONFLICT)
    assert "scheduling_choice as 'sequence_batching'" in report.findings[0].message


def test_python_auto_complete_no_return() -> None:
    report = check(with_auto_complete(ADDS_BOTH, PARTIAL))
    # the missing return is the news, not the gaps it would have filled
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_NO_RETURN)
    assert "end it with `return auto_complete_model_config`" in report.findings[0].message


def test_python_auto_complete_unreadable_does_not_refuse_what_it_may_complete() -> None:
    # GIVEN inputs computed at load time and a partial config
    body = "for spec in load_specs():\n    auto_complete_model_config.add_input(spec)\n" + RETURN
    report = check(with_auto_complete(body, PARTIAL, header="from specs import load_specs"))
    # THEN a warning, not DATA_TYPE_INVALID / DIMS_EMPTY
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_UNREADABLE)
    assert "input 'IN' data_type" in report.findings[0].message and "(line 7)" in report.findings[0].message


def test_python_base_class_may_define_auto_complete_config() -> None:
    source = b"from base import Base\n\n\nclass TritonPythonModel(Base):\n    pass\n"
    report = check({**single_python_repo(), SIMPLE: PARTIAL, MODEL_PY: source})
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_UNREADABLE)
    # ... and says nothing when the config has no gaps
    assert_only(check({**single_python_repo(), MODEL_PY: source}))


def test_python_model_too_large_to_read_is_given_the_benefit_of_the_doubt() -> None:
    files = {**single_python_repo(), SIMPLE: PARTIAL}
    files[MODEL_PY] = (files[MODEL_PY] or b"") + b"#" * 4096
    report = validate_bytes(pack(files), "simple_1.tar.gz", limits=ArchiveLimits(max_small_member_bytes=1024))
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_UNREADABLE)
    assert "too large to read" in report.findings[0].message


def test_python_partial_config_without_auto_complete_is_still_refused() -> None:
    assert_only(check({**single_python_repo(), SIMPLE: PARTIAL}), Code.DATA_TYPE_INVALID, Code.DIMS_EMPTY)


def test_python_auto_complete_decoupled_reaches_the_ensemble_check() -> None:
    # GIVEN member a made decoupled only by its model.py THEN the ensemble check sees it
    member = with_auto_complete(
        'auto_complete_model_config.set_model_transaction_policy({"decoupled": True})\n' + RETURN
    )
    files = _fan_in(b_decoupled=False)
    files["a/config.pbtxt"] = python_config("a")
    files["a/1/model.py"] = member[MODEL_PY]
    report = check(files, "pipe_1.tar.gz")
    assert_only(report, Code.PYTHON_AUTO_COMPLETED, Code.ENSEMBLE_DECOUPLED_MIXED)


# -- a hostile model.py: the reader stays bounded in time and memory and never raises -------------

SMALL_BUT_COSTLY = {
    "nested-comprehension": "x = [a for a in range(10000) for b in range(10000)]",
    "repeated-squaring": "x = 3\nfor i in range(100):\n    x = x * x",
    "list-times-count": "a = [0] * 10000\nb = a * 10000",
    "extend-itself": "a = [1]\nfor i in range(60):\n    a.extend(a)",
    "str-of-shared-lists": "s = 'a' * 10000\nt = str([s] * 10000)",
    "format-width": "s = '{:>200000000}'.format(1)",
    "printf-width": "s = '%200000000d' % 1",
    "join-long-separator": "s = 'a' * 10000\nt = s.join([s] * 10000)",
    "compare-shared-lists": "a = [[[1] * 1000] * 1000] * 1000\nb = [[[1] * 1000] * 1000] * 1000\nc = a == b",
}


@pytest.mark.parametrize("body", SMALL_BUT_COSTLY.values(), ids=SMALL_BUT_COSTLY.keys())
def test_python_auto_complete_that_would_cost_minutes_or_gigabytes_is_given_up_quickly(body: str) -> None:
    # GIVEN a few lines that are cheap to write and huge or endless to evaluate
    started = time.monotonic()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = check(with_auto_complete(f"{body}\n{RETURN}"))
    # THEN read within a bounded budget: at most a warning that it could not be followed
    assert codes(report) <= {Code.PYTHON_AUTO_COMPLETE_UNREADABLE.value}
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100 * 1024  # KiB on Linux


def test_python_auto_complete_nesting_its_config_deeply_is_a_conflict_not_an_exception() -> None:
    # GIVEN a config value nested 5000 deep (the backend's json.dumps raises RecursionError too)
    body = "d = auto_complete_model_config.as_dict()\na = 1\nfor i in range(5000):\n    a = [a]\nd['x'] = a\n" + RETURN
    assert_only(check(with_auto_complete(body)), Code.PYTHON_AUTO_COMPLETE_CONFLICT)


@pytest.mark.parametrize("where", ["module", "function"])
def test_python_model_with_an_expression_too_deep_to_parse_is_not_an_exception(where: str) -> None:
    deep = "+".join(["1"] * 3000)
    if where == "module":
        files = with_auto_complete(RETURN, header=f"X = {deep}")
    else:
        files = with_auto_complete(f"x = {deep}\n{RETURN}")
    assert codes(check(files)) <= {Code.PYTHON_AUTO_COMPLETE_UNREADABLE.value}


def test_ensemble_decoupled_check_of_a_wide_step() -> None:
    # GIVEN one decoupled step with 400 inputs and outputs (Triton links each input to each output)
    names = [f"T{i}" for i in range(400)]
    wide = {
        "model_version.txt": b"1\n",
        **_member("a", names, names, decoupled=True),
        **_member("b", ["IN"], ["OUT"]),
        **ensemble(
            "pipe",
            ["X", *names],
            ["Y", *[f"O{i}" for i in range(400)]],
            [
                ("a", {n: n for n in names}, {n: f"O{i}" for i, n in enumerate(names)}),
                ("b", {"IN": "X"}, {"OUT": "Y"}),
            ],
        ),
    }
    # THEN its outputs and b's reach the ensemble's outputs from different branches
    assert_only(check(wide, "pipe_1.tar.gz"), Code.ENSEMBLE_DECOUPLED_MIXED)


def test_python_auto_complete_of_a_config_with_thousands_of_tensors_is_not_refused() -> None:
    # GIVEN 12,000 inputs in config.pbtxt and an auto_complete_config that changes nothing
    inputs = ", ".join(f'{{ name: "I{i}" data_type: TYPE_FP32 dims: [ 4 ] }}' for i in range(12_000))
    body = 'if "input" in auto_complete_model_config.as_dict():\n    pass\n' + RETURN
    # THEN Triton loads it, and so does the validator (large is not implausible)
    assert_only(check(with_auto_complete(body, python_config("simple", inputs=inputs))))


HUGE = str(10**40)  # written as a literal: the reader evaluates no "**"


@pytest.mark.parametrize(
    "body",
    [
        f"x = range({HUGE})",
        f"x = [1]\nx.insert({HUGE}, 2)",
        f"x = 'a b'.split(None, {HUGE})",
        f"x = [1]\nx[{HUGE}] = 2",
    ],
    ids=["range", "insert", "split", "index"],
)
def test_python_auto_complete_with_integers_beyond_c_sizes_is_not_an_exception(body: str) -> None:
    # GIVEN a builtin given an integer that does not fit a C size (OverflowError) THEN the value is unknown
    assert_only(check(with_auto_complete(f"{body}\n{RETURN}")))


def test_python_auto_complete_data_type_number_no_data_type_has_is_unreadable_not_an_exception() -> None:
    # GIVEN data_type 99 (Triton's JSON parser may keep an open enum's unknown number) THEN a warning
    body = 'auto_complete_model_config.add_input({"name": "IN2", "data_type": 99, "dims": [4]})\n' + RETURN
    report = check(with_auto_complete(body))
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_UNREADABLE)
    assert "data_type: 99 is no DataType value" in report.findings[0].message


def test_python_auto_complete_building_many_bounded_values_is_given_up() -> None:
    # GIVEN thousands of statements, each building a value under the size bound (together gigabytes)
    body = "\n".join(f"a{i} = [0] * 10000" for i in range(5000))
    # THEN the reader stops once their total passes its budget: a warning, not a full evaluation
    report = check(with_auto_complete(f"{body}\n{RETURN}"))
    assert_only(report, Code.PYTHON_AUTO_COMPLETE_UNREADABLE)
    assert "too large to follow" in report.findings[0].message


def _triton_decoupled_labels(inputs: list[str], outputs: list[str], steps: list[Step], flags: list[bool]) -> str:
    """ValidateEnsembleConfig as ensemble_utils.cc writes it: every step input linked to every step
    output, a node ready once all its predecessors are visited. The error's step model, or ''."""
    prev: dict[str, list[str]] = defaultdict(list)
    nxt: dict[str, list[str]] = defaultdict(list)
    decoupled: dict[str, bool] = {}
    writer: dict[str, str] = {}
    sibling: dict[str, int] = {}
    for output in outputs:
        prev["<sink>"].append(output)
        nxt[output].append("<sink>")
    for index, ((model, input_map, output_map), flag) in enumerate(zip(steps, flags, strict=True)):
        for tensor in output_map.values():
            decoupled[tensor], writer[tensor], sibling[tensor] = flag, model, index
            for source in input_map.values():
                prev[tensor].append(source)
                nxt[source].append(tensor)
    label = dict.fromkeys(inputs, 0)
    sibling_label: dict[int, int] = {}
    queue, count = deque(inputs), 0
    while queue:
        for node in nxt[queue.popleft()]:
            if node in label or any(p not in label for p in prev[node]):
                continue
            if len({label[p] for p in prev[node]}) > 1:
                return writer.get(node, "<outputs>")
            if node in sibling and sibling[node] in sibling_label:
                label[node] = sibling_label[sibling[node]]
            else:
                if decoupled.get(node, False):
                    count += 1
                label[node] = count if decoupled.get(node, False) else label[prev[node][0]]
                if node in sibling:
                    sibling_label[sibling[node]] = label[node]
            queue.append(node)
    return ""


def _assert_decoupled_check_agrees(inputs: list[str], outputs: list[str], steps: list[Step], flags: list[bool]) -> None:
    config = ensemble("e", inputs, outputs, steps)["e/config.pbtxt"] or b""
    parsed = text_format.Parse(config.decode(), pb.ModelConfig())
    messages: list[str] = []
    model = ParsedModel(directory="e", name="e", config=parsed, served=True)
    _decoupled(model, list(parsed.ensemble_scheduling.step), flags, lambda _, message: messages.append(message))
    # in the parsed maps' order, as Triton iterates them
    parsed_steps = [(s.model_name, dict(s.input_map), dict(s.output_map)) for s in parsed.ensemble_scheduling.step]
    expected = _triton_decoupled_labels(inputs, outputs, parsed_steps, flags)
    if expected == "<outputs>":
        assert messages and "the outputs of ensemble 'e'" in messages[0], (steps, flags)
    elif expected:
        assert messages and f"the step of model '{expected}'" in messages[0], (steps, flags)
    else:
        assert not messages, (steps, flags)


def test_ensemble_decoupled_check_agrees_with_tritons_algorithm() -> None:
    # GIVEN a step whose output another step writes too, ready as soon as a sibling is labelled
    written_twice: list[Step] = [
        ("m0", {"i0": "t2"}, {"o0": "t0", "o1": "t1", "o2": "t3"}),
        ("m1", {"i0": "t1", "i1": "t2", "i2": "t0"}, {"o0": "t3", "o1": "t2"}),
    ]
    _assert_decoupled_check_agrees(["t2", "t0"], ["t0"], written_twice, [True, False])
    # GIVEN 2000 random ensembles (tensors written twice, unread, cyclic included) WHEN the linear
    # check and Triton's per-output one label them THEN they refuse the same step, or none
    rng = random.Random(19)
    for _ in range(2000):
        tensors = [f"t{i}" for i in range(rng.randint(3, 8))]
        steps: list[Step] = [
            (
                f"m{s}",
                {f"i{k}": rng.choice(tensors) for k in range(rng.randint(0, 3))},
                {f"o{k}": rng.choice(tensors) for k in range(rng.randint(0, 3))},
            )
            for s in range(rng.randint(1, 5))
        ]
        inputs, outputs = rng.sample(tensors, rng.randint(1, 2)), rng.sample(tensors, rng.randint(1, 3))
        _assert_decoupled_check_agrees(inputs, outputs, steps, [rng.random() < 0.4 for _ in steps])
