"""The packaged SAM template as data, and the rewrite that makes it ready for ``aws cloudformation package``.

``chalice package --merge-template infra/template.yaml`` leaves the stage Lambdas' ``CodeUri`` as
``Ref: FunctionsCodeUri`` and the state machines' ``DefinitionUri`` relative to the repository
root. ``aws cloudformation package`` uploads only literal paths, resolved against the template's
own folder, so :func:`make_packageable` points the stage functions at ``./functions.zip``, names
each ASL file by its base name (the caller copies it next to the template) and drops parameters
that only fed those properties. :func:`local_artifacts` then lists every property the package
command would upload, so the caller can check each one exists next to the template.

The YAML stays plain: intrinsics in the long form (``Ref:``, ``Fn::Sub:``), as Chalice writes them
and as ``infra/template.yaml`` is written; short-form tags (``!Ref``) are refused with a clear reason.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dev requirements

Template = dict[str, Any]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_STATE_MACHINE = "AWS::Serverless::StateMachine"

# The template parameter infra/template.yaml points the stage functions' CodeUri at, and the
# handler prefix that marks a stage function (functions/<name>.py).
FUNCTIONS_CODE_PARAMETER = "FunctionsCodeUri"
STAGE_HANDLER_PREFIX = "functions."
FUNCTIONS_ZIP = "functions.zip"

# Properties whose value is a single local file that the package command uploads: rewritten to
# the file's base name here, the file copied next to the template by the caller.
COPIED_FILE_PROPERTIES: Mapping[str, str] = {
    SERVERLESS_STATE_MACHINE: "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}

# Every property `aws cloudformation package` uploads when it is a local path (its documentation's
# list, less the ones this project has no use for). A string value that is not already a remote
# URI must name a file or folder next to the template; an intrinsic cannot be packaged at all.
PACKAGED_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    SERVERLESS_FUNCTION: ("CodeUri",),
    SERVERLESS_STATE_MACHINE: ("DefinitionUri",),
    "AWS::Serverless::Api": ("DefinitionUri",),
    "AWS::Serverless::HttpApi": ("DefinitionUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::Application": ("Location",),
    "AWS::Lambda::Function": ("Code",),
    "AWS::Lambda::LayerVersion": ("Content",),
    "AWS::StepFunctions::StateMachine": ("DefinitionS3Location",),
    "AWS::ApiGateway::RestApi": ("BodyS3Location",),
    "AWS::CloudFormation::Stack": ("TemplateURL",),
    "AWS::AppSync::GraphQLSchema": ("DefinitionS3Location",),
    "AWS::AppSync::Resolver": ("RequestMappingTemplateS3Location", "ResponseMappingTemplateS3Location"),
}
REMOTE_PREFIXES = ("s3://", "https://", "http://")

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class TemplateError(Exception):
    """The template cannot be read or packaged; the message says why, on one line."""


# -- reading and writing ------------------------------------------------------------------------


def load_template(path: Path) -> Template:
    """The template at ``path`` as plain data; :class:`TemplateError` if it is not a template."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.constructor.ConstructorError as exc:
        raise TemplateError(
            f"{path}: {exc.problem} (line {exc.problem_mark.line + 1 if exc.problem_mark else '?'}): "
            "use long-form intrinsics (Ref:, Fn::Sub:), not short-form tags (!Ref)"
        ) from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return data


def dump_template(template: Mapping[str, Any]) -> str:
    """Block-style YAML in the template's own key order (Chalice writes its keys sorted)."""
    text: str = yaml.safe_dump(
        dict(template), sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True
    )
    return text


# -- look-ups -----------------------------------------------------------------------------------


def resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = template.get("Resources")
    return {lid: res for lid, res in found.items() if isinstance(res, dict)} if isinstance(found, dict) else {}


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """``{logical id: resource}`` of every resource of ``resource_type``, in template order."""
    return {lid: res for lid, res in resources(template).items() if res.get("Type") == resource_type}


def properties(resource: Mapping[str, Any]) -> dict[str, Any]:
    found = resource.get("Properties")
    return found if isinstance(found, dict) else {}


def function_globals(template: Mapping[str, Any]) -> dict[str, Any]:
    """``Globals.Function``: what SAM applies to every ``AWS::Serverless::Function`` lacking its own."""
    found = template.get("Globals", {}).get("Function") if isinstance(template.get("Globals"), dict) else None
    return found if isinstance(found, dict) else {}


def effective_property(template: Mapping[str, Any], resource: Mapping[str, Any], name: str) -> Any:
    """A serverless function's property, or the ``Globals.Function`` default SAM would give it."""
    own = properties(resource)
    return own[name] if name in own else function_globals(template).get(name)


def is_intrinsic(value: Any) -> bool:
    """``{"Ref": ...}``, ``{"Fn::...": ...}`` or ``{"Condition": ...}``: a value CloudFormation computes."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::"))


def referenced_names(value: Any) -> set[str]:
    """Every logical id or parameter that ``value`` names through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, inner in node.items():
            if key == "Ref" and isinstance(inner, str):
                names.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(target, str):
                    names.add(target.split(".", 1)[0])
            elif key == "Fn::Sub":
                text, local = (inner[0], inner[1]) if isinstance(inner, list) and len(inner) == 2 else (inner, {})
                if isinstance(text, str):
                    own = set(local) if isinstance(local, dict) else set()
                    names.update(
                        name for match in _SUB_VARIABLE.findall(text) if (name := match.split(".", 1)[0]) not in own
                    )
                walk(local)
                continue
            walk(inner)

    walk(value)
    return names


def is_stage_function(resource: Mapping[str, Any]) -> bool:
    """A stage Lambda of infra/template.yaml: handler in ``functions/`` or code from ``FunctionsCodeUri``."""
    props = properties(resource)
    handler = props.get("Handler")
    return (isinstance(handler, str) and handler.startswith(STAGE_HANDLER_PREFIX)) or (
        FUNCTIONS_CODE_PARAMETER in referenced_names(props.get("CodeUri"))
    )


def stage_functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in resources_of_type(template, SERVERLESS_FUNCTION).items() if is_stage_function(res)}


# -- the rewrite --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packageable:
    """:func:`make_packageable`'s result: the new template and the files to copy next to it."""

    template: Template
    copies: dict[str, Path]  # file name next to the template -> its source
    stage_functions: tuple[str, ...]
    removed_parameters: tuple[str, ...]


def make_packageable(
    template: Mapping[str, Any], *, source_root: Path, functions_zip: str = f"./{FUNCTIONS_ZIP}"
) -> Packageable:
    """Stage functions' ``CodeUri`` -> ``functions_zip``; local definition files -> their base name.

    ``source_root`` is the folder the template's relative paths are relative to (the repository
    root, as for the local stack's provisioner). Parameters that fed only the rewritten
    properties and are referenced nowhere else afterwards are removed. The input is not changed.
    """
    result = copy.deepcopy(dict(template))
    replaced: set[str] = set()
    stage_ids: list[str] = []
    for lid, resource in resources_of_type(result, SERVERLESS_FUNCTION).items():
        if not is_stage_function(resource):
            continue
        props = resource.setdefault("Properties", {})
        replaced |= referenced_names(props.get("CodeUri"))
        props["CodeUri"] = functions_zip
        stage_ids.append(lid)

    copies: dict[str, Path] = {}
    reserved = {"sam.yaml", "deployment.zip", PurePosixPath(functions_zip).name}
    for lid, resource in resources(result).items():
        prop = COPIED_FILE_PROPERTIES.get(str(resource.get("Type")))
        props = properties(resource)
        value = props.get(prop) if prop else None
        if prop is None or not isinstance(value, str) or value.startswith(REMOTE_PREFIXES):
            continue
        source = (source_root / value).resolve()
        if not source.is_file():
            raise TemplateError(f"{lid}.{prop} {value}: no such file under {source_root}")
        name = source.name
        if name in reserved or (name in copies and copies[name] != source):
            raise TemplateError(f"{lid}.{prop} {value}: another artifact is already named {name} next to the template")
        copies[name] = source
        props[prop] = name

    still_used = referenced_names({key: value for key, value in result.items() if key != "Parameters"})
    parameters = result.get("Parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    removed = sorted(name for name in replaced if name in parameters and name not in still_used)
    for name in removed:
        del parameters[name]
    return Packageable(result, copies, tuple(stage_ids), tuple(removed))


@dataclass(frozen=True)
class LocalArtifact:
    logical_id: str
    prop: str
    path: str  # relative to the template's folder


def _property_values(template: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for lid, resource in resources(template).items():
        for prop in PACKAGED_PROPERTIES.get(str(resource.get("Type")), ()):
            if prop in properties(resource):
                yield lid, prop, properties(resource)[prop]
    if "CodeUri" in function_globals(template):
        yield "Globals.Function", "CodeUri", function_globals(template)["CodeUri"]


def local_artifacts(template: Mapping[str, Any]) -> list[LocalArtifact]:
    """Every local path ``aws cloudformation package`` would upload; :class:`TemplateError` for any
    packaged property that is an intrinsic (the package command cannot resolve it)."""
    found: list[LocalArtifact] = []
    computed: list[str] = []
    for lid, prop, value in _property_values(template):
        if is_intrinsic(value):
            computed.append(f"{lid}.{prop}")
        elif isinstance(value, str) and not value.startswith(REMOTE_PREFIXES):
            found.append(LocalArtifact(lid, prop, value))
    if computed:
        raise TemplateError(
            f"not literal paths, so `aws cloudformation package` cannot upload them: {', '.join(computed)}"
        )
    return found


def missing_artifacts(template: Mapping[str, Any], template_dir: Path) -> list[str]:
    """``"LogicalId.Property path"`` of each local artifact not found next to the template."""
    missing = []
    for artifact in local_artifacts(template):
        path = PurePosixPath(artifact.path)
        inside = not path.is_absolute() and ".." not in path.parts
        if not inside or not (template_dir / path).exists():
            missing.append(f"{artifact.logical_id}.{artifact.prop} {artifact.path}")
    return missing
