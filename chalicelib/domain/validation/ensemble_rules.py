"""Ensemble graph rules (Triton's ValidateEnsembleSchedulingConfig and ensemble_utils.cc).

Every ensemble input is read, every ensemble output is written by exactly one step, every tensor
a step writes is read, map keys exist in the member's config, required member inputs are
mapped, connected tensors agree in type and shape, members batch at least as much as the
ensemble (or not at all), and no cycle. Ensembles set no optimization or model_warmup, every step
names its model and maps inputs and outputs, only ensembles have ensemble_scheduling, and no step
mixes tensors from different decoupled models.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.onnx_rules import find_onnx
from chalicelib.domain.validation.repository import ParsedModel, Repository
from chalicelib.domain.validation.schemas import model_config_pb2 as pb

Report = Callable[[Code, str], None]


@dataclass(frozen=True)
class _Declaration:
    where: str
    data_type: str
    dims: tuple[int, ...]
    shape: tuple[int, ...]  # with the batch dimension


def check_ensembles(repo: Repository, scan: ArchiveScan) -> list[Finding]:
    findings: list[Finding] = []
    order, cycles = _walk(repo)
    decoupled: set[str] = set()  # ensembles with a decoupled step: decoupled for the ones nesting them
    for name in order:
        if repo.models[name].is_ensemble:
            findings += _check(repo.models[name], repo, scan, decoupled)
    for model in repo.models.values():
        if not model.is_ensemble and model.config.HasField("ensemble_scheduling"):  # ValidateEnsembleSchedulingConfig
            findings.append(
                Finding.of(
                    Code.ENSEMBLE_SCHEDULING_NOT_ENSEMBLE,
                    model.config_path,
                    f"'{model.name}' sets ensemble_scheduling but its platform is not \"ensemble\"; remove "
                    'ensemble_scheduling, or make it an ensemble (platform: "ensemble", no backend)',
                )
            )
    return findings + cycles


def _declaration(
    where: str, model: ParsedModel, tensor: pb.ModelInput | pb.ModelOutput, use_reshape: bool = False
) -> _Declaration:
    """A tensor's type and shape as Triton's ensemble check sees them: the dims (the ensemble's own
    inputs and outputs use their reshape) and the full shape with the batch dimension."""
    dims = tuple(tensor.reshape.shape) if use_reshape and tensor.HasField("reshape") else tuple(tensor.dims)
    full = (-1, *dims) if model.config.max_batch_size > 0 else dims
    return _Declaration(where, pb.DataType.Name(tensor.data_type), dims, full)


def _member_input_names(member: ParsedModel, scan: ArchiveScan) -> set[str]:
    if member.config.input:
        return {t.name for t in member.config.input}
    if member.backend == "onnxruntime":  # Triton auto-completes the inputs from the ONNX graph
        for version in member.served_versions:
            found = find_onnx(member, scan, version)
            if found and not found[1].error:
                return {t.name for t in found[1].runtime_inputs}
    return set()


def _names_final(member: ParsedModel) -> bool:
    """Whether the member's configured tensors are all it has, even when there are none: a Python
    model's config is final once its auto_complete_config was read (python_rules.py); other backends
    may auto-complete an empty list from the model file."""
    return member.backend == "python" and not member.config_open


def _ensemble_only_fields(ensemble: ParsedModel, add: Report) -> None:
    # ValidateEnsembleSchedulingConfig (model_config_utils.cc)
    if ensemble.config.HasField("optimization"):
        add(
            Code.ENSEMBLE_OPTIMIZATION,
            f"ensemble '{ensemble.name}' must not set optimization; set it on its member models",
        )
    if ensemble.config.model_warmup:
        add(
            Code.ENSEMBLE_MODEL_WARMUP,
            f"ensemble '{ensemble.name}' must not set model_warmup; warm up its member models instead",
        )


def _step_fields(ensemble: ParsedModel, index: int, step: pb.ModelEnsembling.Step, add: Report) -> None:
    # BuildEnsembleGraph (model_config_utils.cc): each step names a model and maps inputs and outputs.
    where = f"step {index} of ensemble '{ensemble.name}'"
    if not step.model_name:
        add(
            Code.ENSEMBLE_STEP_MODEL_NAME_MISSING,
            f"{where} has no model_name; set it to the member model's directory name",
        )
    if not step.input_map:
        add(
            Code.ENSEMBLE_STEP_INPUT_MAP_MISSING,
            f"{where} ('{step.model_name}') has no input_map; map each input of the member to an ensemble "
            'tensor (input_map { key: "MEMBER_INPUT" value: "ENSEMBLE_TENSOR" })',
        )
    if not step.output_map:
        add(
            Code.ENSEMBLE_STEP_OUTPUT_MAP_MISSING,
            f"{where} ('{step.model_name}') has no output_map; map the member's outputs the ensemble uses "
            '(output_map { key: "MEMBER_OUTPUT" value: "ENSEMBLE_TENSOR" })',
        )


def _check(ensemble: ParsedModel, repo: Repository, scan: ArchiveScan, decoupled: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    where_config = ensemble.config_path

    def add(code: Code, message: str) -> None:
        findings.append(Finding.of(code, where_config, message))

    _ensemble_only_fields(ensemble, add)
    steps = list(ensemble.config.ensemble_scheduling.step)
    if not steps:
        add(Code.ENSEMBLE_NO_STEPS, f"ensemble '{ensemble.name}' has no ensemble_scheduling steps")
        return findings
    producers: dict[str, list[str]] = defaultdict(list)
    consumers: dict[str, list[int]] = defaultdict(list)
    declarations: dict[str, list[_Declaration]] = defaultdict(list)
    inputs = {t.name for t in ensemble.config.input}
    for tensor in ensemble.config.input:
        declarations[tensor.name].append(_declaration(f"ensemble input '{tensor.name}'", ensemble, tensor, True))
    for tensor in ensemble.config.output:
        declarations[tensor.name].append(_declaration(f"ensemble output '{tensor.name}'", ensemble, tensor, True))

    for index, step in enumerate(steps):
        label = f"step {index} ('{step.model_name}')"
        _step_fields(ensemble, index, step, add)
        for tensor in step.input_map.values():
            consumers[tensor].append(index)
        for tensor in step.output_map.values():
            producers[tensor].append(label)
        if not step.model_name:
            continue
        member = repo.models.get(step.model_name)
        if member is None:
            if step.model_name in repo.dirs_without_config:
                findings.append(
                    Finding.of(
                        Code.CONFIG_MISSING,
                        f"{step.model_name}/config.pbtxt",
                        f"'{step.model_name}/' has no config.pbtxt; mmedeploy needs one for every member "
                        "model so it can check the ensemble's wiring",
                    )
                )
            else:
                add(
                    Code.ENSEMBLE_MEMBER_MISSING,
                    f"{label} of '{ensemble.name}' uses model '{step.model_name}', which is not a directory "
                    f"with a config.pbtxt in the tarball (models: {', '.join(sorted(repo.models)) or 'none'})",
                )
            continue
        # Triton needs the pinned version loaded, not merely present: the member's version_policy decides.
        if step.model_version > 0 and member.versions and step.model_version not in member.served_versions:
            add(
                Code.ENSEMBLE_MEMBER_VERSION_MISSING,
                f"{label} pins version {step.model_version}, but '{step.model_name}' has versions {member.versions} "
                f"of which its version_policy loads {member.served_versions}; pin one of those or use -1",
            )
        # An open Python member may still raise its max_batch_size (set_max_batch_size only raises it).
        mbs = member.config.max_batch_size
        if mbs != 0 and mbs < ensemble.config.max_batch_size and not member.config_open:
            add(
                Code.ENSEMBLE_BATCH_MISMATCH,
                f"'{step.model_name}' allows max_batch_size {member.config.max_batch_size}, below the ensemble's "
                f"{ensemble.config.max_batch_size}",
            )
        _maps(label, step, member, scan, declarations, add)

    _graph(ensemble, steps, inputs, producers, consumers, add)
    members = [repo.models.get(step.model_name) if step.model_name else None for step in steps]
    flags = [
        m is not None and (m.config.model_transaction_policy.decoupled or m.directory in decoupled) for m in members
    ]
    if all(members) and any(flags) and _decoupled(ensemble, steps, flags, add):
        decoupled.add(ensemble.directory)  # ValidateEnsembleConfig sets the ensemble's own decoupled
    for tensor, decls in declarations.items():
        first = decls[0]
        for other in decls[1:]:
            if other.data_type != first.data_type:
                add(
                    Code.ENSEMBLE_TYPE_MISMATCH,
                    f"tensor '{tensor}' is {first.data_type} as {first.where} but {other.data_type} as {other.where}",
                )
                break
        for other in decls[1:]:
            # Triton accepts either the plain dims or the batch-expanded shapes agreeing.
            if not _compatible(first.dims, other.dims) and not _compatible(first.shape, other.shape):
                add(
                    Code.ENSEMBLE_SHAPE_MISMATCH,
                    f"tensor '{tensor}' has shape {list(first.shape)} as {first.where} but {list(other.shape)} as "
                    f"{other.where} (batch dimension included)",
                )
                break
    return findings


def _maps(
    label: str,
    step: pb.ModelEnsembling.Step,
    member: ParsedModel,
    scan: ArchiveScan,
    declarations: dict[str, list[_Declaration]],
    add: Report,
) -> None:
    # The member's tensors as the step sees them; without configured inputs (ONNX auto-complete)
    # the graph's inputs are the known ones, and all of them are required.
    known_inputs = _member_input_names(member, scan)
    final = _names_final(member)
    sides = (
        ("input", step.input_map, {t.name: t for t in member.config.input}, known_inputs),
        ("output", step.output_map, {t.name: t for t in member.config.output}, {t.name for t in member.config.output}),
    )
    for kind, mapping, specs, known in sides:
        for key, tensor in mapping.items():
            # ValidateTensorMapping (ensemble_utils.cc): "mapping to non-existing input/output"
            if (known or final) and key not in known and not member.config_open:
                add(
                    Code.ENSEMBLE_MAP_UNKNOWN_TENSOR,
                    f"{label} maps {kind} '{key}', but '{step.model_name}' has "
                    + (
                        f"{kind}s {sorted(known)}; key the map with one of those names"
                        if known
                        else f"no {kind}s; declare '{key}' in its config.pbtxt or remove the mapping"
                    ),
                )
            elif key in specs and not (
                member.config_open and (specs[key].data_type == pb.TYPE_INVALID or not specs[key].dims)
            ):
                declarations[tensor].append(_declaration(f"{kind} '{key}' of '{step.model_name}'", member, specs[key]))
    # ValidateTensorMapping (ensemble_utils.cc): an output declared twice is two outputs writing one tensor.
    outputs = Counter(t.name for t in member.config.output)
    for key, tensor in step.output_map.items():
        if outputs[key] > 1:
            add(
                Code.ENSEMBLE_TENSOR_MULTIPLE_WRITERS,
                f"'{step.model_name}' declares output '{key}' twice, so {label} writes tensor '{tensor}' twice; "
                "Triton refuses that in an ensemble: remove the duplicate from its config",
            )
    if not step.input_map:
        return  # ENSEMBLE_STEP_INPUT_MAP_MISSING says it
    required = {t.name for t in member.config.input if not t.optional} if member.config.input else known_inputs
    for name in sorted(required - set(step.input_map)):
        add(
            Code.ENSEMBLE_MEMBER_INPUT_UNMAPPED,
            f"{label} does not map the required input '{name}' of '{step.model_name}' in its input_map",
        )


def _graph(
    ensemble: ParsedModel,
    steps: list[pb.ModelEnsembling.Step],
    inputs: set[str],
    producers: dict[str, list[str]],
    consumers: dict[str, list[int]],
    add: Report,
) -> None:
    # ``producers`` holds step writers only: Triton counts output_map entries, and an ensemble
    # input that a step also writes (or that is passed straight through as an output) loads.
    outputs = {t.name for t in ensemble.config.output}
    for tensor, writers in producers.items():
        if len(writers) > 1:
            add(Code.ENSEMBLE_TENSOR_MULTIPLE_WRITERS, f"tensor '{tensor}' is written by {' and '.join(writers)}")
    for name in sorted(inputs):
        if name not in consumers:
            add(Code.ENSEMBLE_INPUT_UNUSED, f"ensemble input '{name}' is read by no step; remove it or map it")
    for name in sorted(outputs):
        if name not in producers and name not in inputs:
            add(Code.ENSEMBLE_OUTPUT_NOT_PRODUCED, f"ensemble output '{name}' is written by no step's output_map")
    for tensor in sorted(consumers):
        if tensor not in producers and tensor not in inputs:
            add(
                Code.ENSEMBLE_TENSOR_UNDEFINED,
                f"tensor '{tensor}' is read by step {consumers[tensor][0]} but is neither an ensemble input "
                "nor written by a step",
            )
    for tensor in sorted(producers):
        if tensor not in inputs and tensor not in consumers and tensor not in outputs:
            add(
                Code.ENSEMBLE_TENSOR_UNUSED,
                f"tensor '{tensor}' is written by {producers[tensor][0]} but read by nothing; Triton refuses "
                "unused tensors: drop it from the output_map",
            )
    # Run the steps in dependency order; steps that never become ready with all their inputs
    # defined are waiting on each other. Each tensor is made ready once (Kahn's algorithm): passes
    # over the pending steps took quadratic time on a long chain listed last step first.
    ready, pending = set(inputs), set(range(len(steps)))
    missing = {index: set(step.input_map.values()) - ready for index, step in enumerate(steps)}
    readers: dict[str, list[int]] = defaultdict(list)
    for index, tensors in missing.items():
        for tensor in tensors:
            readers[tensor].append(index)
    runnable = deque(index for index, tensors in missing.items() if not tensors)
    while runnable:
        index = runnable.popleft()
        pending.discard(index)
        for tensor in set(steps[index].output_map.values()) - ready:
            ready.add(tensor)
            for reader in readers[tensor]:
                missing[reader].discard(tensor)
                if not missing[reader]:
                    runnable.append(reader)
    stuck = [i for i in sorted(pending) if set(steps[i].input_map.values()) <= set(producers) | inputs]
    if stuck:
        names = ", ".join(f"step {i} ('{steps[i].model_name}')" for i in stuck)
        add(Code.ENSEMBLE_CYCLE, f"{names} wait on each other's outputs: the steps form a cycle")


class _Node:
    """A tensor of ensemble_utils.cc's TensorNode graph, as far as the decoupled check needs it."""

    def __init__(self) -> None:
        self.decoupled = False
        self.label = 0
        self.visited = False
        self.readers: list[_Step] = []  # once per input_map entry naming it (Triton's next_nodes_)
        self.writers: list[_Step] = []  # their inputs are its prev_nodes_
        self.sibling: _Node | None = None
        self.writer = ""  # the step's model writing it (Triton names the ensemble for its outputs)


class _Step:
    """A step's tensors: each output has the step's inputs as predecessors. Triton links every input
    to every output; held once per step here, so a step with thousands of tensors stays linear."""

    def __init__(self, model: str, inputs: list[_Node], outputs: list[_Node]) -> None:
        self.model = model
        self.inputs = inputs
        self.outputs = outputs
        self.waiting = len(inputs)  # inputs not visited yet
        self.scanned = False
        self.labels: set[int] = set()  # of the inputs visited so far (a label is final once visited)


def _decoupled(ensemble: ParsedModel, steps: list[pb.ModelEnsembling.Step], flags: list[bool], add: Report) -> bool:
    """ValidateEnsembleConfig (ensemble_utils.cc): every tensor a decoupled step writes gets a new
    label, other tensors inherit their step's inputs' label; a step (or the ensemble's outputs)
    must not receive tensors of different labels. ``flags``: which steps' models are decoupled.
    Returns whether the ensemble itself is decoupled (a decoupled step was reached, no error)."""
    tensors: dict[str, _Node] = {t.name: _Node() for t in ensemble.config.input}
    sink = _Node()
    outputs = [tensors.setdefault(output.name, _Node()) for output in ensemble.config.output]
    _link(_Step(ensemble.name, outputs, [sink]))
    for step, is_decoupled in zip(steps, flags, strict=True):
        sibling = _Node()
        inputs = [tensors.setdefault(tensor, _Node()) for tensor in step.input_map.values()]
        written = [tensors.setdefault(tensor, _Node()) for tensor in step.output_map.values()]
        for node in written:
            node.sibling, node.writer, node.decoupled = sibling, step.model_name, is_decoupled
        _link(_Step(step.model_name, inputs, written))
    origin = {0: f"ensemble '{ensemble.name}' inputs (not decoupled)"}
    queue = deque(tensors[t.name] for t in ensemble.config.input)
    for node in queue:
        _visit(node)
    label_count = 0
    while queue:
        for reader in queue.popleft().readers:
            # Until all its inputs are visited, none of a step's outputs is ready; after one scan, all
            # its outputs that can be are done.
            if reader.waiting or reader.scanned:
                continue
            reader.scanned = True
            for nxt in reader.outputs:
                if nxt.visited or any(w.waiting for w in nxt.writers):
                    continue
                labels = sorted(set().union(*(w.labels for w in nxt.writers)))
                if len(labels) > 1:
                    who = (
                        f"the outputs of ensemble '{ensemble.name}'"
                        if nxt is sink
                        else f"the step of model '{nxt.writer}' in ensemble '{ensemble.name}'"
                    )
                    add(
                        Code.ENSEMBLE_DECOUPLED_MIXED,
                        f"{who} receives tensors that originate from different decoupled models "
                        f"({'; '.join(origin.get(label, '?') for label in labels)}); Triton refuses this: feed it "
                        "from one decoupled branch only, or make the models not decoupled (model_transaction_policy)",
                    )
                    return False
                if nxt.decoupled and not (nxt.sibling and nxt.sibling.visited):
                    label_count += 1
                    origin[label_count] = f"decoupled model '{nxt.writer}'"
                inherited = label_count if nxt.decoupled else labels[0] if labels else 0
                if nxt.sibling is not None:
                    if not nxt.sibling.visited:
                        nxt.sibling.label, nxt.sibling.visited = inherited, True
                    nxt.label = nxt.sibling.label
                else:
                    nxt.label = inherited
                _visit(nxt)
                queue.append(nxt)
    return label_count != 0


def _link(step: _Step) -> None:
    for node in step.inputs:
        node.readers.append(step)
    for node in step.outputs:
        node.writers.append(step)


def _visit(node: _Node) -> None:
    node.visited = True
    for reader in node.readers:
        reader.waiting -= 1
        reader.labels.add(node.label)


def _compatible(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=True))


def _walk(repo: Repository) -> tuple[list[str], list[Finding]]:
    """The models ensembles use, inner ones first (Triton loads and validates an ensemble after its
    members), and the ensembles that contain each other, directly or not. Iterative: a hostile chain
    of nested ensembles must not exhaust the stack."""
    edges = {
        d: [s.model_name for s in m.config.ensemble_scheduling.step if s.model_name in repo.models]
        for d, m in repo.models.items()
        if m.is_ensemble
    }
    findings: list[Finding] = []
    order: list[str] = []
    state: dict[str, int] = {}
    for root in edges:
        if root in state:
            continue
        state[root], path, pending = 1, [root], [iter(edges[root])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                done = path.pop()
                state[done] = 2
                order.append(done)
                pending.pop()
            elif state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                findings.append(
                    Finding.of(
                        Code.ENSEMBLE_CYCLE,
                        repo.models[path[-1]].config_path,
                        f"ensembles contain each other: {' -> '.join(cycle)}",
                    )
                )
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                pending.append(iter(edges.get(nxt, [])))
    return order, findings
