"""Config vs ONNX graph agreement, as Triton's onnxruntime backend checks it at load.

Inputs: when the config lists inputs, their count must equal the graph's runtime inputs, names
must exist, element types must match and shapes must fit (an ONNX -1 accepts anything). With
batching the ONNX first dimension must be variable. Outputs: the config may list a subset, but
each must exist with the same type and exactly the same shape.
"""

from __future__ import annotations

import posixpath

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.onnx_probe import OnnxSummary, OnnxTensor
from chalicelib.domain.validation.repository import ParsedModel
from chalicelib.domain.validation.schemas import model_config_pb2 as pb


def check_onnx(model: ParsedModel, scan: ArchiveScan) -> list[Finding]:
    if model.backend != "onnxruntime":
        return []
    findings: list[Finding] = []
    for version in model.served_versions:
        found = find_onnx(model, scan, version)
        if found is None:
            continue  # missing file is MODEL_FILE_MISSING
        onnx_path, summary = found
        if summary.error:
            findings.append(
                Finding.of(
                    Code.ONNX_UNREADABLE, onnx_path, f"'{onnx_path}' is not a readable ONNX model: {summary.error}"
                )
            )
            continue
        _inputs(model, onnx_path, summary, findings)
        _match(model, "output", list(model.config.output), summary.outputs, onnx_path, findings)
        _external_data(onnx_path, summary, scan, findings)
    return findings


def find_onnx(model: ParsedModel, scan: ArchiveScan, version: int) -> tuple[str, OnnxSummary] | None:
    """The probed ONNX file of one version: ``model.onnx``, or ``model.onnx/model.onnx`` when the
    model is a directory (large models with external data)."""
    path = model.path(version, model.config.default_model_filename or "model.onnx")
    for candidate in (path, posixpath.join(path, "model.onnx")):
        if candidate in scan.onnx:
            return candidate, scan.onnx[candidate]
    return None


def _full_shape(model: ParsedModel, tensor: pb.ModelInput | pb.ModelOutput) -> list[int]:
    dims = list(tensor.reshape.shape) if tensor.HasField("reshape") else list(tensor.dims)
    return [-1, *dims] if model.config.max_batch_size > 0 else dims


def _fed_by_triton(config: pb.ModelConfig) -> set[str]:
    """Graph inputs Triton feeds itself, so the config's ``input`` list need not declare them."""
    names = {target for batch_input in config.batch_input for target in batch_input.target_name}
    names |= {control.name for control in config.sequence_batching.control_input}
    names |= {state.input_name for state in config.sequence_batching.state}
    return names


def _inputs(model: ParsedModel, path: str, summary: OnnxSummary, findings: list[Finding]) -> None:
    if not model.config.input:
        return  # Triton auto-completes the inputs from the model
    # Optional inputs too: the backend requires every configured input to be a model input.
    _match(model, "input", list(model.config.input), summary.runtime_inputs, path, findings)
    names = {t.name for t in model.config.input} | _fed_by_triton(model.config)
    for name in sorted({t.name for t in summary.runtime_inputs} - names):
        findings.append(
            Finding.of(
                Code.ONNX_INPUT_UNCONFIGURED,
                model.config_path,
                f"'{path}' needs input '{name}', which the config of '{model.name}' does not declare",
            )
        )


def _match(
    model: ParsedModel,
    kind: str,
    configured: list[pb.ModelInput] | list[pb.ModelOutput],
    in_graph: list[OnnxTensor],
    path: str,
    findings: list[Finding],
) -> None:
    """Each configured tensor must be in the graph, with its type and shape."""
    graph = {t.name: t for t in in_graph}
    for tensor in configured:
        onnx_tensor = graph.get(tensor.name)
        if onnx_tensor is None:
            findings.append(
                Finding.of(
                    Code.ONNX_INPUT_MISSING if kind == "input" else Code.ONNX_OUTPUT_MISSING,
                    model.config_path,
                    f"{kind} '{tensor.name}' of '{model.name}' is not an {kind} of '{path}' "
                    f"(its {kind}s: {', '.join(sorted(graph)) or 'none'})",
                )
            )
            continue
        _compare(model, kind, tensor, onnx_tensor, path, findings)


def _compare(
    model: ParsedModel,
    kind: str,
    tensor: pb.ModelInput | pb.ModelOutput,
    onnx_tensor: OnnxTensor,
    path: str,
    findings: list[Finding],
) -> None:
    config_type = pb.DataType.Name(tensor.data_type)
    if onnx_tensor.data_type is not None and config_type != onnx_tensor.data_type:
        findings.append(
            Finding.of(
                Code.ONNX_TYPE_MISMATCH,
                model.config_path,
                f"{kind} '{tensor.name}' of '{model.name}' is {config_type} in the config but "
                f"{onnx_tensor.data_type} in '{path}'",
            )
        )
    if onnx_tensor.dims is None:
        return
    expected, actual = _full_shape(model, tensor), list(onnx_tensor.dims)
    batching = model.config.max_batch_size > 0
    if not actual:
        # The backend skips the shape check for a scalar ONNX tensor; the config dims must be all 1.
        configured = expected[1:] if batching else expected
        if all(d == 1 for d in configured):
            return
        problem = "a scalar ONNX tensor needs config dims of 1 (e.g. dims: [ 1 ])"
    elif batching and actual[0] != -1:
        problem = "with max_batch_size > 0 the ONNX first dimension must be variable (-1 / symbolic)"
    elif len(expected) != len(actual):
        problem = "the ranks differ"
    elif any(a != e and not (kind == "input" and a == -1) for a, e in zip(actual, expected, strict=True)):
        problem = "the dimensions differ"
    else:
        return
    findings.append(
        Finding.of(
            Code.ONNX_SHAPE_MISMATCH,
            model.config_path,
            f"{kind} '{tensor.name}' of '{model.name}': the config implies shape {expected}"
            f"{' (batch dimension first)' if batching else ''} but '{path}' has {actual}: {problem}",
        )
    )


def _external_data(path: str, summary: OnnxSummary, scan: ArchiveScan, findings: list[Finding]) -> None:
    base = posixpath.dirname(path)
    for location in sorted(summary.external_files):
        target = posixpath.normpath(posixpath.join(base, location))
        if target not in scan.members:
            findings.append(
                Finding.of(
                    Code.ONNX_EXTERNAL_DATA_MISSING,
                    path,
                    f"'{path}' keeps weights in external file '{location}', which is not at '{target}' in the tarball",
                )
            )
