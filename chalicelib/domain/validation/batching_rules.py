"""Scheduling rules Triton applies when it loads a model: batch_input / batch_output, the dynamic
batcher's queue policy, and the sequence batcher's controls and implicit state.

Ported from Triton core r24.09 (Triton 2.50, the image the endpoints run); each rule names the
function it comes from. Triton stops at its first error; these report every one.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.repository import ParsedModel
from chalicelib.domain.validation.schemas import model_config_pb2 as pb

Control = pb.ModelSequenceBatching.Control
BOOLEAN_CONTROLS = (Control.CONTROL_SEQUENCE_START, Control.CONTROL_SEQUENCE_END, Control.CONTROL_SEQUENCE_READY)
CORRID_TYPES = (pb.TYPE_UINT64, pb.TYPE_INT64, pb.TYPE_UINT32, pb.TYPE_INT32, pb.TYPE_STRING)
VALUE_FIELDS = ("int32_false_true", "fp32_false_true", "bool_false_true")
# bytes per element (triton::common::GetDataTypeByteSize); strings are sized by their file
BYTE_SIZE = {
    pb.TYPE_BOOL: 1,
    pb.TYPE_UINT8: 1,
    pb.TYPE_INT8: 1,
    pb.TYPE_UINT16: 2,
    pb.TYPE_INT16: 2,
    pb.TYPE_FP16: 2,
    pb.TYPE_BF16: 2,
    pb.TYPE_UINT32: 4,
    pb.TYPE_INT32: 4,
    pb.TYPE_FP32: 4,
    pb.TYPE_UINT64: 8,
    pb.TYPE_INT64: 8,
    pb.TYPE_FP64: 8,
}
INITIAL_STATE_DIR = "initial_state"  # kInitialStateFolder


def check_batching(model: ParsedModel, scan: ArchiveScan) -> list[Finding]:
    findings: list[Finding] = []
    _batch_io(model, findings)
    _queue_policy(model, findings)
    if model.config.HasField("sequence_batching"):
        _sequence_controls(model, findings)
        _sequence_strategy(model, findings)
        _sequence_state(model, scan, findings)
    _response_cache(model, findings)
    return findings


def _error(findings: list[Finding], code: Code, model: ParsedModel, message: str) -> None:
    findings.append(Finding.of(code, model.config_path, f"'{model.name}': {message}"))


# -- batch_input / batch_output (ValidateBatchIO) -----------------------------------------------


def _batch_io(model: ParsedModel, findings: list[Finding]) -> None:
    config = model.config
    inputs = {i.name for i in config.input}
    outputs = {o.name for o in config.output}
    # Backends fill an empty input or output list from the model file before ValidateBatchIO
    # runs, so names are only checked against a list the config spells out (and that is final).
    for batch in config.batch_input:
        kind = pb.BatchInput.Kind.Name(batch.kind)
        where = f"batch_input '{batch.target_name[0] if batch.target_name else kind}'"
        _source_count(model, where, kind, len(batch.source_input), findings)
        if batch.data_type not in (pb.TYPE_INT32, pb.TYPE_FP32):
            _error(
                findings,
                Code.BATCH_INPUT_DATA_TYPE,
                model,
                f"{where} has data_type {pb.DataType.Name(batch.data_type)}; use TYPE_INT32 or TYPE_FP32",
            )
        _known(model, where, "source_input", batch.source_input, inputs, "input", findings)
    for batch in config.batch_output:
        kind = pb.BatchOutput.Kind.Name(batch.kind)
        where = f"batch_output '{batch.target_name[0] if batch.target_name else kind}'"
        _source_count(model, where, kind, len(batch.source_input), findings)
        _known(model, where, "source_input", batch.source_input, inputs, "input", findings)
        _known(model, where, "target_name", batch.target_name, outputs, "output", findings)
        twice = _repeated(batch.target_name)
        if twice:
            _error(
                findings,
                Code.BATCH_OUTPUT_TARGET_DUPLICATE,
                model,
                f"{where} names target_name {twice} more than once; list each output once",
            )


def _repeated(names: Iterable[str]) -> list[str]:
    """The names listed more than once (counted once: a config may list thousands)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _source_count(model: ParsedModel, where: str, kind: str, count: int, findings: list[Finding]) -> None:
    if count != 1:
        _error(
            findings,
            Code.BATCH_IO_SOURCE_COUNT,
            model,
            f"{where} of kind {kind} needs exactly 1 source_input (it has {count})",
        )


def _known(
    model: ParsedModel,
    where: str,
    field: str,
    names: list[str],
    declared: set[str],
    kind: str,
    findings: list[Finding],
) -> None:
    unknown = sorted(set(names) - declared)
    # model.py's auto_complete_config may add tensors mmedeploy could not read (config_open)
    if declared and unknown and not model.config_open:
        _error(
            findings,
            Code.BATCH_IO_UNKNOWN_TENSOR,
            model,
            f"{where}: {field} {unknown} is not an {kind} of the model; use one of {sorted(declared)}",
        )


# -- dynamic batching queue policy (ValidateModelConfig; PriorityQueue in scheduler_utils.cc) -----


def _queue_policy(model: ParsedModel, findings: list[Finding]) -> None:
    config = model.config
    if not config.HasField("dynamic_batching"):
        return
    batching = config.dynamic_batching
    levels = batching.priority_levels
    if levels:
        if not 1 <= batching.default_priority_level <= levels:
            _error(
                findings,
                Code.QUEUE_PRIORITY_INVALID,
                model,
                f"default_priority_level {batching.default_priority_level} is not one of the {levels} priority "
                f"levels; set it between 1 and {levels}",
            )
        outside = sorted(level for level in batching.priority_queue_policy if not 1 <= level <= levels)
        if outside:
            _error(
                findings,
                Code.QUEUE_PRIORITY_INVALID,
                model,
                f"priority_queue_policy keys {outside} are not priority levels; use keys between 1 and {levels}",
            )
    elif batching.default_priority_level or batching.priority_queue_policy:
        # Without priority levels the scheduler builds one queue from default_queue_policy.
        findings.append(
            Finding.of(
                Code.QUEUE_PRIORITY_IGNORED,
                model.config_path,
                f"'{model.name}': default_priority_level and priority_queue_policy are ignored while "
                "priority_levels is 0; set priority_levels or remove them",
            )
        )
    if batching.preserve_ordering:
        if levels > 1:
            _error(
                findings,
                Code.QUEUE_ORDERING_CONFLICT,
                model,
                f"preserve_ordering allows one priority level, and priority_levels is {levels}; set "
                "priority_levels to 1 (or remove it) or turn preserve_ordering off",
            )
        policies = [batching.default_queue_policy, *batching.priority_queue_policy.values()]
        if any(p.default_timeout_microseconds and p.timeout_action == pb.ModelQueuePolicy.DELAY for p in policies):
            _error(
                findings,
                Code.QUEUE_ORDERING_CONFLICT,
                model,
                "preserve_ordering cannot delay timed-out requests; use timeout_action: REJECT or "
                "turn preserve_ordering off",
            )


# -- sequence batching controls (GetBooleanSequenceControlProperties, ---------------------------
# GetTypedSequenceControlProperties, called by ValidateModelConfig for each kind)


def _sequence_controls(model: ParsedModel, findings: list[Finding]) -> None:
    batcher = model.config.sequence_batching
    names = [c.name for c in batcher.control_input]
    if "" in names:
        _error(
            findings,
            Code.SEQUENCE_CONTROL_NAME_MISSING,
            model,
            "a sequence_batching control_input has no name; name it after the model input it controls",
        )
    twice = [n for n in _repeated(names) if n]
    if twice:
        _error(
            findings,
            Code.SEQUENCE_CONTROL_DUPLICATE,
            model,
            f"control_input {twice} is listed more than once; give each control tensor one entry",
        )
    for kind in (*BOOLEAN_CONTROLS, Control.CONTROL_SEQUENCE_CORRID):
        kind_name = Control.Kind.Name(kind)
        controls = [(i.name, c) for i in batcher.control_input for c in i.control if c.kind == kind]
        if len(controls) > 1:
            _error(
                findings,
                Code.SEQUENCE_CONTROL_DUPLICATE,
                model,
                f"{kind_name} is set by {len(controls)} controls (tensors {[n for n, _ in controls]}); keep one",
            )
        for name, control in controls:
            if kind == Control.CONTROL_SEQUENCE_CORRID:
                _corrid(model, name, control, findings)
            else:
                _boolean_values(model, name, kind_name, control, findings)


def _boolean_values(
    model: ParsedModel, name: str, kind_name: str, control: pb.ModelSequenceBatching.Control, findings: list[Finding]
) -> None:
    given = [f for f in VALUE_FIELDS if len(getattr(control, f))]
    if len(given) != 1:
        _error(
            findings,
            Code.SEQUENCE_CONTROL_VALUE_INVALID,
            model,
            f"control {kind_name} of tensor '{name}' must set exactly one of {', '.join(VALUE_FIELDS)}"
            + (f" (it sets {', '.join(given)})" if given else ""),
        )
    elif len(getattr(control, given[0])) != 2:
        _error(
            findings,
            Code.SEQUENCE_CONTROL_VALUE_INVALID,
            model,
            f"control {kind_name} of tensor '{name}': {given[0]} needs exactly 2 entries, [false, true]",
        )


def _corrid(model: ParsedModel, name: str, control: pb.ModelSequenceBatching.Control, findings: list[Finding]) -> None:
    given = [f for f in VALUE_FIELDS if len(getattr(control, f))]
    if given:
        _error(
            findings,
            Code.SEQUENCE_CONTROL_VALUE_INVALID,
            model,
            f"control CONTROL_SEQUENCE_CORRID of tensor '{name}' takes a data_type, not {', '.join(given)}",
        )
    if control.data_type not in CORRID_TYPES:
        _error(
            findings,
            Code.SEQUENCE_CONTROL_DATA_TYPE,
            model,
            f"control CONTROL_SEQUENCE_CORRID of tensor '{name}' has data_type "
            f"{pb.DataType.Name(control.data_type)}; use one of "
            + ", ".join(pb.DataType.Name(t) for t in CORRID_TYPES),
        )


# -- sequence batching strategies (ValidateModelConfig) --------------------------------------------


def _sequence_strategy(model: ParsedModel, findings: list[Finding]) -> None:
    batcher = model.config.sequence_batching
    if batcher.HasField("oldest"):
        for size in batcher.oldest.preferred_batch_size:
            if size <= 0 or size > model.config.max_batch_size:
                _error(
                    findings,
                    Code.PREFERRED_BATCH_SIZE_INVALID,
                    model,
                    f"sequence_batching oldest preferred_batch_size {size} must be positive and <= "
                    f"max_batch_size ({model.config.max_batch_size})",
                )
    utilization = batcher.direct.minimum_slot_utilization
    if batcher.HasField("direct") and (utilization < 0.0 or utilization > 1.0):  # as Triton compares: nan passes
        _error(
            findings,
            Code.SEQUENCE_STRATEGY_INVALID,
            model,
            f"sequence_batching direct minimum_slot_utilization {utilization:g} must be between 0 and 1",
        )


# -- implicit state (SequenceBatchScheduler::Create, GenerateInitialStateData) ---------------------


def _sequence_state(model: ParsedModel, scan: ArchiveScan, findings: list[Finding]) -> None:
    with_initial: set[str] = set()
    for state in model.config.sequence_batching.state:
        where = f"state '{state.input_name}'"
        if len(state.initial_state) > 1:
            _error(
                findings,
                Code.SEQUENCE_STATE_INVALID,
                model,
                f"{where} has {len(state.initial_state)} initial_state entries; keep at most one",
            )
            continue
        if not state.initial_state:
            continue
        initial = state.initial_state[0]
        problems = []
        if initial.data_type != state.data_type:
            problems.append(
                f"initial_state data_type {pb.DataType.Name(initial.data_type)} must match the state's "
                f"{pb.DataType.Name(state.data_type)}"
            )
        if not initial.name:
            problems.append("initial_state needs a name")
        if state.input_name in with_initial:
            problems.append("another state with an initial_state has the same input_name")
        with_initial.add(state.input_name)
        if len(initial.dims) != len(state.dims):
            problems.append(f"initial_state dims {list(initial.dims)} must have as many entries as {list(state.dims)}")
        elif -1 in initial.dims:
            problems.append(f"initial_state dims {list(initial.dims)} must be fixed (no -1)")
        elif any(s != -1 and i != s for i, s in zip(initial.dims, state.dims, strict=True)):
            problems.append(f"initial_state dims {list(initial.dims)} do not fit the state dims {list(state.dims)}")
        which = initial.WhichOneof("state_data")
        if which is None:
            problems.append("initial_state needs zero_data or data_file")
        for problem in problems:
            _error(findings, Code.SEQUENCE_STATE_INVALID, model, f"{where}: {problem}")
        if which == "data_file" and not problems:
            _state_file(model, scan, state.input_name, initial, findings)


def _state_file(
    model: ParsedModel,
    scan: ArchiveScan,
    input_name: str,
    initial: pb.ModelSequenceBatching.InitialState,
    findings: list[Finding],
) -> None:
    # JoinPath appends even an absolute name; the file is then read with '..' resolved.
    path = posixpath.normpath(model.path(INITIAL_STATE_DIR, initial.data_file.lstrip("/")))
    member = scan.members.get(path)
    if member is None or member.kind != "file":
        findings.append(
            Finding.of(
                Code.SEQUENCE_STATE_FILE_MISSING,
                path,
                f"initial_state of state '{input_name}' reads '{path}', which is not in the tarball; "
                f"add it under '{model.path(INITIAL_STATE_DIR)}/'",
            )
        )
        return
    needed = _byte_size(initial, member.size)
    if member.size < needed:
        findings.append(
            Finding.of(
                Code.SEQUENCE_STATE_FILE_MISSING,
                path,
                f"'{path}' holds {member.size} bytes but initial_state of state '{input_name}' "
                f"({pb.DataType.Name(initial.data_type)} {list(initial.dims)}) needs {needed}",
            )
        )


def _byte_size(initial: pb.ModelSequenceBatching.InitialState, cap: int) -> int:
    """The bytes ``initial`` needs (strings: none from its dims), stopping once past ``cap``: the
    product of thousands of huge dims would take seconds."""
    size = BYTE_SIZE.get(initial.data_type, 0)
    for dim in initial.dims:
        size *= dim
        if size > cap or size <= 0:
            break
    return size


# -- response cache (ValidateModelConfig: DLIS-4034, DLIS-3916) -----------------------------------


def _response_cache(model: ParsedModel, findings: list[Finding]) -> None:
    config = model.config
    if not config.response_cache.enable:
        return
    if config.HasField("sequence_batching"):
        _error(
            findings,
            Code.RESPONSE_CACHE_UNSUPPORTED,
            model,
            "response_cache does not work with sequence_batching; disable the response cache",
        )
    if config.model_transaction_policy.decoupled:
        _error(
            findings,
            Code.RESPONSE_CACHE_UNSUPPORTED,
            model,
            "response_cache does not work with a decoupled model; disable the response cache",
        )
