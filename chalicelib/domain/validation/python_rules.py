"""The Python backend's load-time rules: ``model.py``, its environment, and what its
``auto_complete_config`` decides.

With auto-complete on (SageMaker's Triton), the backend calls
``TritonPythonModel.auto_complete_config(config)`` before Triton validates the model's inputs and
outputs (pb_stub.cc ``Stub::AutoCompleteModelConfig``), and Triton keeps what it returns
(backend_model.cc ``TritonModel::UpdateModelConfig``). So a partial ``config.pbtxt`` that model.py
completes loads, and a model.py that contradicts its config does not (the ``ValueError`` of
triton_python_backend_utils.py's ``ModelConfig``). The function is read statically, never run
(auto_complete_reader.py), on the config as Triton hands it over; whatever it computes leaves the
model *open* (``ParsedModel.config_open``): a warning, and no rule refuses what it might complete.
"""

from __future__ import annotations

import ast
import copy
import json
import posixpath
from typing import Any

from google.protobuf import json_format

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.auto_complete_reader import (
    UNKNOWN,
    BackendModelConfig,
    Conflict,
    Open,
    Reader,
    module_constants,
    module_names,
    weight,
)
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.repository import ParsedModel, unknown_enum_value
from chalicelib.domain.validation.schemas import model_config_pb2 as pb

ENV_VARIABLE = "$$TRITON_MODEL_DIRECTORY"
LARGE_ENV_BYTES = 1 << 30
# What auto_complete_config may add to the config it gets (values and characters): far beyond any
# real completion, small enough to write out as JSON.
COMPLETION_ALLOWANCE = 1_000_000


def check_python(model: ParsedModel, scan: ArchiveScan, dirs: set[str]) -> list[Finding]:
    """model.py parses and defines TritonPythonModel; its auto_complete_config completes
    ``model.config`` in place (so later rules see the config Triton validates); the environment
    named by EXECUTION_ENV_PATH is shipped."""
    findings: list[Finding] = []
    filename = model.config.default_model_filename or "model.py"
    # Triton loads each version with its own auto-complete; the ensemble sees the newest one's config.
    for newest, version in enumerate(sorted(model.served_versions, reverse=True)):
        path = model.path(version, filename)
        source = scan.small_files.get(path)
        if source is None:
            if path in scan.members:  # too large to keep: it may complete anything
                _unreadable(model, path, "it is too large to read", None, findings, newest == 0, only_if_gaps=True)
            continue
        try:
            tree = _parse(path, source, findings)
        except RecursionError:  # CPython's own compiler refuses such nesting too, but not always at the same depth
            _unreadable(model, path, "it nests expressions too deeply to read", None, findings, newest == 0, True)
            continue
        if tree is not None:
            _auto_complete(model, path, tree, findings, apply=newest == 0)
    env = model.config.parameters.get("EXECUTION_ENV_PATH")
    if env is not None and env.string_value:
        _execution_env(model, scan, dirs, env.string_value, findings)
    return findings


def _parse(path: str, source: bytes, findings: list[Finding]) -> ast.Module | None:
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        findings.append(
            Finding.of(
                Code.PYTHON_MODEL_SYNTAX,
                path,
                f"'{path}' does not parse" + (f" at line {line}" if line else "") + f": {getattr(exc, 'msg', exc)}",
            )
        )
        return None
    if "TritonPythonModel" not in module_names(tree.body):
        findings.append(
            Finding.of(
                Code.PYTHON_MODEL_CLASS_MISSING,
                path,
                f"'{path}' defines no top-level class TritonPythonModel, which the Python backend loads",
            )
        )
        return None
    return tree


# -- auto_complete_config ------------------------------------------------------------------------


def _auto_complete(model: ParsedModel, path: str, tree: ast.Module, findings: list[Finding], apply: bool) -> None:
    function, why_unknown = _find_function(tree)
    if function is None:
        if why_unknown:
            _unreadable(model, path, why_unknown, None, findings, apply, only_if_gaps=True)
        return
    config = model.config if apply else copy.deepcopy(model.config)
    handle = BackendModelConfig(_config_json(model, config))
    # a config of thousands of tensors is large, not implausible: measured against what it started as
    limit = weight(handle.as_dict(), 1 << 62) + COMPLETION_ALLOWANCE
    reader = Reader(handle, module_constants(tree))
    outcome = reader.run(function)
    if isinstance(outcome, Open):
        read_back = _read_back(handle, limit)
        if isinstance(read_back, pb.ModelConfig) and not unknown_enum_value(read_back):
            _apply(read_back, config)  # what was read before the unknown part happened
        _unreadable(model, path, outcome.reason, outcome.line, findings, apply, only_if_gaps=False)
    elif isinstance(outcome, Conflict):  # the backend's ModelConfig raised (triton_python_backend_utils.py)
        model.config_open |= apply  # it fails to load; its gaps are not the news
        _conflict(model, path, outcome.message, outcome.line, findings)
    elif outcome is not handle and outcome is not UNKNOWN:  # pb_stub.cc Stub::AutoCompleteModelConfig
        model.config_open |= apply
        findings.append(
            Finding.of(
                Code.PYTHON_AUTO_COMPLETE_NO_RETURN,
                path,
                f"'{path}': auto_complete_config (line {function.lineno}) returns "
                f"{'nothing' if outcome is None else type(outcome).__name__}; Triton refuses the model "
                f"(\"auto_complete_config function in model '{model.name}' must return a valid pb.ModelConfig "
                f'object."): end it with `return {reader.parameter or "auto_complete_model_config"}`',
            )
        )
    elif isinstance(read_back := _read_back(handle, limit), pb.ModelConfig) and (
        unknown := unknown_enum_value(read_back)
    ):
        # Triton's JSON parser may keep a number its enum does not name (open enums): not known to fail
        _unreadable(model, path, f"it sets {unknown}", None, findings, apply, only_if_gaps=False)
    else:
        before = copy.deepcopy(config)
        problem = read_back if isinstance(read_back, str) else _apply(read_back, config)
        if problem:
            model.config_open |= apply
            _conflict(model, path, problem, None, findings)
        elif changes := _changes(before, config):
            findings.append(
                Finding.of(
                    Code.PYTHON_AUTO_COMPLETED,
                    path,
                    f"Triton completes '{model.config_path}' from {path}'s auto_complete_config: "
                    f"{'; '.join(changes)}. It loads as completed; write these into config.pbtxt if you want it "
                    "to describe the model on its own",
                )
            )


def _find_function(tree: ast.Module) -> tuple[ast.FunctionDef | None, str]:
    """TritonPythonModel's auto_complete_config, or None with why it cannot be known ('' when the
    class certainly has none)."""
    cls: ast.ClassDef | None = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "TritonPythonModel":
            cls = node
        elif "TritonPythonModel" in module_names([node]):
            cls = None
    if cls is None:
        return None, "TritonPythonModel is not a class defined at the top of model.py"
    found: ast.stmt | None = None
    for item in cls.body:
        if "auto_complete_config" in module_names([item]):
            found = item
    if isinstance(found, ast.FunctionDef):
        return found, ""
    if found is not None:
        return None, "auto_complete_config is not a plain function of TritonPythonModel"
    bases = [b for b in cls.bases if not (isinstance(b, ast.Name) and b.id == "object")]
    return None, "TritonPythonModel has base classes that may define auto_complete_config" if bases else ""


def _gaps(config: pb.ModelConfig) -> list[str]:
    return [
        f"{kind} '{t.name}' {'data_type' if t.data_type == pb.TYPE_INVALID else 'dims'}"
        for kind, tensors in (("input", config.input), ("output", config.output))
        for t in tensors
        if t.data_type == pb.TYPE_INVALID or not t.dims
    ]


def _unreadable(
    model: ParsedModel,
    path: str,
    reason: str,
    line: int | None,
    findings: list[Finding],
    apply: bool,
    only_if_gaps: bool,
) -> None:
    gaps = _gaps(model.config)
    model.config_open |= apply
    if only_if_gaps and not gaps:
        return
    where = f" (line {line})" if line else ""
    findings.append(
        Finding.of(
            Code.PYTHON_AUTO_COMPLETE_UNREADABLE,
            path,
            f"'{path}': {reason}{where}, so mmedeploy cannot tell what auto_complete_config sets"
            + (f"; it does not refuse the missing {', '.join(gaps)} that Triton may complete from it" if gaps else "")
            + ". Write literal values (or set the fields in config.pbtxt) to have them checked before the upload",
        )
    )


def _conflict(model: ParsedModel, path: str, message: str, line: int | None, findings: list[Finding]) -> None:
    where = f" (line {line})" if line else ""
    findings.append(
        Finding.of(
            Code.PYTHON_AUTO_COMPLETE_CONFLICT,
            path,
            f"'{path}': auto_complete_config{where} fails, so Triton refuses '{model.name}': {message}. "
            "Make model.py and config.pbtxt agree, or leave the field out of config.pbtxt and let model.py set it",
        )
    )


def _config_json(model: ParsedModel, config: pb.ModelConfig) -> dict[str, Any]:
    """The config as the backend's ModelConfig gets it (model_config_utils.cc ModelConfigToJson:
    every scalar printed, 64-bit dims as numbers, the name set)."""
    data: dict[str, Any] = json_format.MessageToDict(
        config, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    data["name"] = model.name
    for kind in ("input", "output"):
        for tensor in data.get(kind, []):
            tensor["dims"] = [int(d) for d in tensor.get("dims", [])]
            if "reshape" in tensor:
                tensor["reshape"]["shape"] = [int(d) for d in tensor["reshape"].get("shape", [])]
    return data


def _read_back(handle: BackendModelConfig, limit: int) -> pb.ModelConfig | str:
    """The returned config as Triton reads it back (model_config_utils.cc JsonToModelConfig), or the
    reason it cannot. ``limit``: the most values and characters the returned config may have (shared
    lists nest: it may be far larger written out than in memory)."""
    if weight(handle.as_dict(), limit) > limit:
        return "the completed config is implausibly large"
    try:
        data = json.loads(json.dumps(handle.as_dict()))
        for kind in ("input", "output"):
            for tensor in data.get(kind) or []:
                if isinstance(tensor, dict) and isinstance(tensor.get("data_type"), str):
                    tensor["data_type"] = tensor["data_type"].upper()  # case_insensitive_enum_parsing
        read_back: pb.ModelConfig = json_format.ParseDict(data, pb.ModelConfig())
    except (TypeError, ValueError, RecursionError, json_format.ParseError) as exc:
        return (
            f"Triton cannot read the completed config back ({str(exc)[:300]}); use data_type names like "
            "'TYPE_FP32' and dims as lists of integers"
        )
    return read_back


def _apply(updated: pb.ModelConfig, config: pb.ModelConfig) -> str:
    """Copy what TritonModel::UpdateModelConfig takes from ``updated`` into ``config``; the reason
    Triton refuses the update, if so."""
    config.max_batch_size = updated.max_batch_size
    del config.input[:]
    config.input.extend(updated.input)
    del config.output[:]
    config.output.extend(updated.output)
    choice, new_choice = config.WhichOneof("scheduling_choice"), updated.WhichOneof("scheduling_choice")
    if choice is None and new_choice is not None:
        getattr(config, new_choice).CopyFrom(getattr(updated, new_choice))
    elif choice is not None and new_choice != choice:
        return f"Cannot update scheduling choice from {choice} to {new_choice} when auto-completing"
    if updated.HasField("model_transaction_policy"):
        config.model_transaction_policy.decoupled = updated.model_transaction_policy.decoupled
    return ""


def _changes(before: pb.ModelConfig, after: pb.ModelConfig) -> list[str]:
    changes: list[str] = []
    for kind, old, new in (("input", before.input, after.input), ("output", before.output, after.output)):
        known = {t.name: t for t in old}
        for tensor in new:
            previous = known.get(tensor.name)
            spec = f"{pb.DataType.Name(tensor.data_type)} {list(tensor.dims)}"
            if previous is None:
                changes.append(f"{kind} '{tensor.name}' added ({spec})")
                continue
            filled = [
                what
                for what, empty in (("data_type", previous.data_type == pb.TYPE_INVALID), ("dims", not previous.dims))
                if empty
            ]
            if filled and (previous.data_type != tensor.data_type or list(previous.dims) != list(tensor.dims)):
                changes.append(f"{kind} '{tensor.name}' {' and '.join(filled)} ({spec})")
    if before.max_batch_size != after.max_batch_size:
        changes.append(f"max_batch_size {before.max_batch_size} -> {after.max_batch_size}")
    if not before.HasField("dynamic_batching") and after.HasField("dynamic_batching"):
        changes.append("dynamic_batching added")
    if before.model_transaction_policy.decoupled != after.model_transaction_policy.decoupled:
        changes.append(f"decoupled: {str(after.model_transaction_policy.decoupled).lower()}")
    return changes


# -- the environment ------------------------------------------------------------------------------


def _execution_env(model: ParsedModel, scan: ArchiveScan, dirs: set[str], value: str, findings: list[Finding]) -> None:
    # Triton substitutes the variable textually: '$$TRITON_MODEL_DIRECTORYx' names a sibling.
    if not value.startswith(ENV_VARIABLE) or value[len(ENV_VARIABLE) : len(ENV_VARIABLE) + 1] not in ("", "/"):
        findings.append(
            Finding.of(
                Code.PYTHON_ENV_OUTSIDE_MODEL,
                model.config_path,
                f"EXECUTION_ENV_PATH '{value}' must start with {ENV_VARIABLE}/ so it names a file shipped "
                "in the model directory",
            )
        )
        return
    relative = posixpath.normpath(model.path(value[len(ENV_VARIABLE) :].lstrip("/")))
    inside = model.directory == "" or relative.startswith(model.directory + "/")
    if relative == ".." or relative.startswith("../") or not inside:  # '..env.tar.gz' is a name inside
        findings.append(
            Finding.of(
                Code.PYTHON_ENV_OUTSIDE_MODEL,
                model.config_path,
                f"EXECUTION_ENV_PATH '{value}' resolves to '{relative}', outside the model directory "
                f"'{model.directory or '.'}'; keep the environment inside it",
            )
        )
        return
    member = scan.members.get(relative)
    if (member is None or member.kind == "dir") and relative in dirs:
        return  # an unpacked environment directory is accepted too
    if member is None or member.kind != "file":
        findings.append(
            Finding.of(
                Code.PYTHON_ENV_MISSING,
                relative,
                f"EXECUTION_ENV_PATH names '{relative}', which is not in the tarball; add the conda-pack archive there",
            )
        )
    elif member.size > LARGE_ENV_BYTES:
        findings.append(
            Finding.of(
                Code.PYTHON_ENV_LARGE,
                relative,
                f"'{relative}' is {member.size / (1 << 30):.1f} GB; MME gives a load 360 s, so trim the "
                "environment (conda-pack only what model.py imports)",
            )
        )
