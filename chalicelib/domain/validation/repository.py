"""Find the Triton models in a scanned tarball, as SageMaker's Triton MME front end would.

SageMaker's rule (server/src/sagemaker_server.cc): a ``config.pbtxt`` at the archive root makes
the root the model; otherwise the subdirectory whose config matches the regex
``platform:(\\s)*"ensemble"`` is served; otherwise the single subdirectory. With several
non-ensemble directories it picks an arbitrary one, so that is an error here.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from google.protobuf import text_format
from google.protobuf.message import Message

from chalicelib.domain.validation.archive import ArchiveScan
from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.schemas import model_config_pb2

# SageMaker's own detection regex, deliberately as loose/strict as theirs.
SAGEMAKER_ENSEMBLE_RE = re.compile(r'platform:(\s)*"ensemble"')
NOT_MODEL_DIRS = {"tests", "__MACOSX"}
IGNORED_VERSION_DIRS = {"warmup", "initial_state"}

ModelConfig = model_config_pb2.ModelConfig


@dataclass
class ParsedModel:
    """A model directory whose config.pbtxt parsed."""

    directory: str  # '' for a root-layout archive
    name: str  # Triton model name: directory name, or the TargetModel for the served model
    config: model_config_pb2.ModelConfig  # completed by model.py's auto_complete_config (python_rules.py)
    served: bool
    versions: list[int] = field(default_factory=list)
    served_versions: list[int] = field(default_factory=list)
    platform: str = ""
    backend: str = ""  # after auto-completion
    # model.py's auto_complete_config may change inputs, outputs, batching or decoupling in ways not
    # read statically (python_rules.py): rules that depend on them give this model the benefit of the doubt
    config_open: bool = False

    def path(self, *parts: str | int) -> str:
        return posixpath.join(self.directory, *(str(p) for p in parts))

    @property
    def config_path(self) -> str:
        return self.path("config.pbtxt")

    @property
    def is_ensemble(self) -> bool:
        return self.platform == "ensemble"


@dataclass
class Repository:
    models: dict[str, ParsedModel] = field(default_factory=dict)  # by directory name
    served: ParsedModel | None = None
    dirs_without_config: set[str] = field(default_factory=set)


def discover(scan: ArchiveScan, target_model: str, findings: list[Finding]) -> Repository:
    """Parse every model directory's config and choose the served model."""
    repo = Repository()
    files = scan.files
    if "config.pbtxt" in files:
        model = _parse(scan, "", target_model, served=True, findings=findings)
        if model:
            repo.models[""] = repo.served = model
        return repo

    top_dirs = {p.split("/", 1)[0] for p in scan.members if "/" in p or scan.members[p].kind == "dir"}
    candidates = sorted(d for d in top_dirs if f"{d}/config.pbtxt" in files)
    repo.dirs_without_config = {d for d in top_dirs - set(candidates) if d not in NOT_MODEL_DIRS}
    if not candidates:
        deeper = sorted(p for p in files if p.endswith("/config.pbtxt"))
        hint = (
            f" A config was found at '{deeper[0]}': the model directories must be at the archive "
            "root, so create the archive from inside the repository folder (tar -C REPO ...)."
            if deeper
            else ""
        )
        findings.append(
            Finding.of(
                Code.REPO_NO_MODEL,
                "",
                "no config.pbtxt at the archive root or in a top-level directory: this is not a "
                "Triton model repository." + hint,
            )
        )
        return repo

    detected = [d for d in candidates if SAGEMAKER_ENSEMBLE_RE.search(_text(scan, f"{d}/config.pbtxt"))]
    served_dir: str | None = None
    if len(detected) == 1:
        served_dir = detected[0]
    elif len(candidates) == 1:
        served_dir = candidates[0]

    for directory in candidates:
        model = _parse(
            scan,
            directory,
            target_model if directory == served_dir else directory,
            served=directory == served_dir,
            findings=findings,
        )
        if model:
            repo.models[directory] = model
            _check_name(model, findings)
    repo.served = repo.models.get(served_dir) if served_dir else None
    if len(detected) > 1:
        findings.append(Finding.of(Code.REPO_AMBIGUOUS, "", _several_ensembles(detected, repo)))

    if served_dir is None and len(detected) == 0:
        ensembles = [m.directory for m in repo.models.values() if m.config.platform == "ensemble"]
        if ensembles:
            findings.append(
                Finding.of(
                    Code.REPO_ENSEMBLE_UNDETECTED,
                    f"{ensembles[0]}/config.pbtxt",
                    "SageMaker finds the ensemble by the text 'platform: \"ensemble\"' (no space before "
                    "the colon); write the line exactly like that or it serves an arbitrary directory.",
                )
            )
        elif len(candidates) > 1:
            findings.append(
                Finding.of(
                    Code.REPO_AMBIGUOUS,
                    "",
                    f"several model directories ({', '.join(candidates)}) and no ensemble: SageMaker "
                    "serves an arbitrary one. Ship one model, or add an ensemble that uses them.",
                )
            )
    return repo


def _several_ensembles(detected: list[str], repo: Repository) -> str:
    """What to change when SageMaker's pattern matches several configs: it serves the last one its
    directory listing meets, an arbitrary one. Nested ensembles are the usual cause."""
    used = {
        step.model_name for d in detected if d in repo.models for step in repo.models[d].config.ensemble_scheduling.step
    }
    outer = [d for d in detected if d not in used]
    message = f"several ensembles ({', '.join(detected)}): SageMaker serves an arbitrary one. "
    if len(outer) == 1:
        inner = ", ".join(d for d in detected if d != outer[0])
        return message + (
            f"To serve '{outer[0]}' with the ensembles it uses nested, write their platform line with a "
            f'space before the colon (platform : "ensemble") in {inner}: SageMaker\'s pattern misses it, '
            "Triton reads it the same."
        )
    return message + "Ship one ensemble per tarball (nested ensembles: see the model-repository conventions)."


def _check_name(model: ParsedModel, findings: list[Finding]) -> None:
    """Triton refuses a config whose name differs from its directory ("directory name must equal
    model name"). The served model is exempt: SageMaker loads it under the TargetModel name."""
    name = model.config.name
    if model.served or not name or name == model.directory:
        return
    findings.append(
        Finding.of(
            Code.CONFIG_NAME_MISMATCH,
            model.config_path,
            f"'{model.config_path}' says name: \"{name}\" but its directory is '{model.directory}'; Triton "
            f'refuses to load it. Set name: "{model.directory}" (or remove the name line), or rename the '
            "directory and every ensemble step that uses it",
        )
    )


def _text(scan: ArchiveScan, path: str) -> str:
    return scan.small_files.get(path, b"").decode("utf-8", "replace")


def _parse(scan: ArchiveScan, directory: str, name: str, served: bool, findings: list[Finding]) -> ParsedModel | None:
    path = posixpath.join(directory, "config.pbtxt")
    raw = scan.small_files.get(path)
    if raw is None:
        findings.append(
            Finding.of(
                Code.CONFIG_TOO_LARGE,
                path,
                f"'{path}' is {scan.members[path].size} bytes; configs are small text files",
            )
        )
        return None
    try:
        text = raw.decode("utf-8")
        config = text_format.Parse(text, ModelConfig())
    except UnicodeDecodeError:
        findings.append(Finding.of(Code.CONFIG_SYNTAX, path, f"'{path}' is not UTF-8 text"))
        return None
    except text_format.ParseError as exc:
        where = f"line {exc.GetLine()}, column {exc.GetColumn()}" if exc.GetLine() else "somewhere"
        detail = str(exc).split(" : ", 1)[-1]
        findings.append(
            Finding.of(
                Code.CONFIG_SYNTAX,
                path,
                f"'{path}' does not parse as a Triton ModelConfig at {where}: {detail}",
            )
        )
        return None
    unknown = unknown_enum_value(config)
    if unknown:
        # Python's parser keeps an unknown number in an enum field; Triton's C++ parser refuses it.
        findings.append(
            Finding.of(
                Code.CONFIG_SYNTAX,
                path,
                f"'{path}' does not parse as a Triton ModelConfig: {unknown}",
            )
        )
        return None
    return ParsedModel(directory=directory, name=name, config=config, served=served)


def unknown_enum_value(config: Message) -> str:
    """The first enum field set to a number its enum does not name, as 'field: number', or ''."""
    pending: list[Message] = [config]
    while pending:
        message = pending.pop()
        for field_, value in message.ListFields():
            values = value if field_.is_repeated else [value]
            if field_.enum_type is not None:
                for number in values:
                    if number not in field_.enum_type.values_by_number:
                        names = ", ".join(list(field_.enum_type.values_by_name)[:4])
                        return f"{field_.name}: {number} is no {field_.enum_type.name} value (use a name: {names}, ...)"
            elif field_.message_type is not None:
                if field_.message_type.GetOptions().map_entry:
                    if field_.message_type.fields_by_name["value"].message_type is not None:
                        pending.extend(value.values())
                else:
                    pending.extend(values)
    return ""
