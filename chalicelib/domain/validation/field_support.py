"""CONFIG_FIELD_UNSUPPORTED: config fields and enum values newer than the Triton the endpoints run.

Configs are parsed with the newest ModelConfig schema (``schemas/model_config.proto``), but the
endpoints run the Triton of their image (:mod:`chalicelib.domain.validation.triton_release`). A
field or enum value newer than that Triton parses here, then the endpoint's parser refuses the
config and the model fails to load: :func:`check_fields` reports each one, naming the Triton
version that introduced it (``schemas/triton_fields.py``, generated from Triton's git history by
``make triton-fields``).

Only what the parsed config holds is seen: a scalar field written with its default value
(``optional: false``) or an enum field at its zero value is not.
"""

from __future__ import annotations

from functools import cache

from google.protobuf.message import Message

from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.repository import ParsedModel
from chalicelib.domain.validation.schemas.triton_fields import INTRODUCED
from chalicelib.domain.validation.triton_release import TritonVersion

PACKAGE = "inference."


def check_fields(model: ParsedModel, triton: TritonVersion) -> list[Finding]:
    """An error for each field or enum value set in ``model``'s config that ``triton`` predates."""
    newer: dict[str, str] = {}  # schema name -> where in the config (the first place it is set)
    _walk(model.config, "", triton, newer)
    return [_finding(model, name, where, triton) for name, where in newer.items()]


def _walk(message: Message, where: str, triton: TritonVersion, newer: dict[str, str]) -> None:
    for field, value in message.ListFields():
        at = f"{where}.{field.name}" if where else field.name
        if _note(f"{field.containing_type.full_name.removeprefix(PACKAGE)}.{field.name}", at, triton, newer):
            continue  # what it holds is as new: the field is the one thing to remove
        repeated = field.is_repeated
        if field.enum_type is not None:
            enum = field.enum_type.full_name.removeprefix(PACKAGE)
            for number in value if repeated else [value]:
                entry = field.enum_type.values_by_number.get(number)
                if entry is not None:
                    _note(f"{enum}.{entry.name}", f"{at}: {entry.name}", triton, newer)
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    _walk(item, f"{at}[{key}]", triton, newer)
        elif repeated:
            for index, item in enumerate(value):
                _walk(item, f"{at}[{index}]", triton, newer)
        else:
            _walk(value, at, triton, newer)


def _note(name: str, where: str, triton: TritonVersion, newer: dict[str, str]) -> bool:
    """Record ``name`` if ``triton`` predates it; whether it does."""
    known = INTRODUCED.get(name)
    if known is None or _version(known[0]) <= triton:
        return False
    newer.setdefault(name, where)
    return True


@cache
def _version(text: str) -> TritonVersion:
    # parsed once: _note runs for every field of every repeated entry of a config
    return TritonVersion.parse(text)


def _finding(model: ParsedModel, name: str, where: str, triton: TritonVersion) -> Finding:
    introduced = _version(INTRODUCED[name][0])
    return Finding.of(
        Code.CONFIG_FIELD_UNSUPPORTED,
        model.config_path,
        f"'{model.config_path}' sets {where} ({name}), which {introduced.describe()} introduced; the endpoint "
        f"runs {triton.describe()}, which refuses the config, so the model would fail to load. Remove it, or "
        f"deploy an image with Triton {introduced} or later (template parameter TritonImage) and validate "
        f"against it (mmedeploy validate --triton-version {introduced})",
    )
