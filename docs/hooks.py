"""MkDocs hook: the pages that are generated from the code at build time, so they cannot drift.

- ``cli.md``: the CLI reference, from ``mmedeploy.cli.build_parser()`` (every subcommand, nested
  ones too: its help, description, usage, arguments and epilog, where the exit codes are).
- ``finding-codes.md``: the validator's finding codes, from ``CATALOGUE`` (code -> severity,
  meaning), wherever under ``chalicelib/`` the module that defines it lives.
- ``configuration.md``: the environment variables of the deployed stack's one settings model
  (``Settings``, a pydantic-settings model), with their defaults.

A page asks for generated content with a marker line (``<!-- generated: cli -->``,
``<!-- generated: finding-codes -->``); an unknown marker, or a generator that fails, fails the
build. ``tests/unit/test_docs.py`` calls the same functions.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
# CATALOGUE's module: the first of these that imports, else the module under chalicelib/ defining it
CATALOGUE_MODULES = ("chalicelib.domain.validation.findings", "chalicelib.validation.findings")
USAGE_WIDTH = "100"  # argparse wraps usage lines at $COLUMNS: fixed, so the page does not depend on a terminal


def _on_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# -- markdown helpers -------------------------------------------------------------------------
_ESCAPE = str.maketrans({c: "\\" + c for c in "\\`*_[]{}|"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def escape(text: str) -> str:
    """Plain text as Markdown that renders as that text (table cells included)."""
    return " ".join(text.split()).translate(_ESCAPE)


def _fence(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines without ``usage: `` (and its indent on the lines argparse wrapped)."""
    first, *rest = parser.format_usage().removeprefix("usage: ").splitlines()
    return "\n".join([first, *(line.removeprefix(" " * len("usage: ")) for line in rest)])


# -- finding codes ----------------------------------------------------------------------------
def catalogue() -> dict[Any, tuple[Any, str]]:
    """``CATALOGUE`` from where it lives now: the known module paths first, then a search."""
    return _defining_module(r"^CATALOGUE\b", CATALOGUE_MODULES, "CATALOGUE")  # type: ignore[no-any-return]


def finding_codes_markdown() -> str:
    rows = ["| code | severity | meaning |", "|---|---|---|"]
    for code, (severity, meaning) in catalogue().items():
        rows.append(f"| `{code.value}` | {severity.value} | {escape(meaning)} |")
    return "\n".join(rows)


# -- settings ---------------------------------------------------------------------------------
SETTINGS_MODULES = ("chalicelib.settings",)


def _defining_module(pattern: str, known: tuple[str, ...], attribute: str) -> Any:
    """The object ``attribute`` from the first module of ``known`` that has it, else from the
    module under chalicelib/ whose source matches ``pattern`` (it moved)."""
    _on_path()
    for name in known:
        try:
            return getattr(importlib.import_module(name), attribute)
        except (ImportError, AttributeError):
            continue
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        if re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            return getattr(importlib.import_module(module), attribute)
    raise LookupError(f"no module under chalicelib/ defines {attribute}")


def settings_markdown() -> str:
    settings = _defining_module(r"^class Settings\(BaseSettings\)", SETTINGS_MODULES, "Settings")
    rows = ["| variable | default | description (from the model) |", "|---|---|---|"]
    for name, field in settings.model_fields.items():
        variable = field.validation_alias if isinstance(field.validation_alias, str) else name.upper()
        default = "(required)" if field.is_required() else f"`{field.default}`" if field.default != "" else "empty"
        rows.append(f"| `{variable}` | {default} | {escape(field.description or '')} |")
    return "\n".join(rows)


# -- CLI reference ----------------------------------------------------------------------------
def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[argparse.ArgumentParser, str]]:
    """(subparser, its one-line help) for each subcommand, in the order they were declared."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias of a command already listed
                    continue
                seen.add(id(sub))
                yield sub, helps.get(name, "")


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            metavar = formatter._format_args(action, action.dest.upper()) if action.nargs != 0 else ""
            name = ", ".join(f"{opt} {metavar}".strip() for opt in action.option_strings)
        else:
            name = formatter._format_args(action, action.dest)
        text = formatter._expand_help(action) if action.help else ""
        if action.required and action.option_strings:
            text = f"(required) {text}".strip()
        rows.append(f"| `{name}` | {escape(text)} |")
    return rows


def _command_markdown(parser: argparse.ArgumentParser, help_line: str, level: int) -> list[str]:
    out = [f"{'#' * level} `{parser.prog}`", ""]
    if help_line:
        out += [escape(help_line[0].upper() + help_line[1:]) + ".", ""]
    if parser.description and parser.description != help_line:
        out += [escape(parser.description), ""]
    out += [_fence(_usage(parser)), ""]
    rows = _argument_rows(parser)
    if rows:
        out += ["| argument | what |", "|---|---|", *rows, ""]
    if parser.epilog:
        out += [_fence(parser.epilog), ""]
    for sub, sub_help in _subcommands(parser):
        out += _command_markdown(sub, sub_help, min(level + 1, 4))
    return out


def cli_markdown() -> str:
    _on_path()
    from mmedeploy.cli import build_parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = USAGE_WIDTH
    try:
        parser = build_parser()
        out = [_fence(_usage(parser)), ""]
        if parser.description:
            out += [escape(parser.description), ""]
        for sub, help_line in _subcommands(parser):
            out += _command_markdown(sub, help_line, 2)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(out).rstrip() + "\n"


def cli_commands() -> list[str]:
    """Every subcommand's full name (``mmedeploy status``), for the tests."""
    _on_path()
    from mmedeploy.cli import build_parser

    names: list[str] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for sub, _ in _subcommands(parser):
            names.append(sub.prog)
            walk(sub)

    walk(build_parser())
    return names


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_markdown,
    "finding-codes": finding_codes_markdown,
    "settings": settings_markdown,
}


# -- the MkDocs event -------------------------------------------------------------------------
def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        from mkdocs.exceptions import PluginError

        generator = GENERATORS.get(match.group(1))
        if generator is None:
            raise PluginError(f"{page.file.src_uri}: unknown generated section {match.group(1)!r}")
        try:
            return generator()
        except Exception as error:
            raise PluginError(f"{page.file.src_uri}: generating {match.group(1)!r} failed: {error!r}") from error

    return MARKER.sub(fill, markdown)
