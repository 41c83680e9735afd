"""The docs stay true to the code: the generated pages list every finding code, every CLI command
and every setting, links resolve, the source paths the pages cite exist, and README.md stays a short entry.

`make docs` (run by `make test`) builds the site with `mkdocs build --strict`; these tests check
what that build does not (links from README.md, cited paths) and the generators themselves.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
README_MAX_LINES = 150

# [text](target) outside code; images too. Targets with a scheme (https:, mailto:) are not files.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]+`")
# a source path a page cites in a code span: under one of the project's top-level folders
CITED_PATH = re.compile(
    r"`((?:app\.py|chalicelib|functions|infra|mmedeploy|tests|benchmarks|examples|docs)(?:/[\w.\-]+)*/?)`"
)


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prose(text: str) -> str:
    """The text without fenced blocks and code spans, where a link is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _links(path: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(path.read_text(encoding="utf-8")))]


def test_the_finding_codes_page_lists_every_code_with_its_severity() -> None:
    hooks = _hooks()
    table = hooks.finding_codes_markdown()
    missing = [
        code.value
        for code, (severity, _) in hooks.catalogue().items()
        if f"| `{code.value}` | {severity.value} |" not in table
    ]
    assert not missing, f"the generated finding-codes table lacks: {missing}"
    assert "<!-- generated: finding-codes -->" in (DOCS / "finding-codes.md").read_text(encoding="utf-8")


def test_the_cli_reference_documents_every_command() -> None:
    hooks = _hooks()
    reference = hooks.cli_markdown()
    commands = hooks.cli_commands()
    assert commands, "build_parser() has no subcommands?"
    missing = [name for name in commands if f"# `{name}`" not in reference]
    assert not missing, f"the generated CLI reference lacks: {missing}"
    assert "<!-- generated: cli -->" in (DOCS / "cli.md").read_text(encoding="utf-8")


def test_the_configuration_page_lists_every_setting() -> None:
    hooks = _hooks()
    table = hooks.settings_markdown()
    settings = hooks._defining_module(r"^class Settings\(BaseSettings\)", hooks.SETTINGS_MODULES, "Settings")
    assert settings.model_fields
    missing = [name for name in settings.model_fields if f"`{name.upper()}`" not in table and name != "stage"]
    assert not missing, f"the generated settings table lacks: {missing}"
    assert "`MMEDEPLOY_STAGE`" in table  # the one field read under another name
    assert "<!-- generated: settings -->" in (DOCS / "configuration.md").read_text(encoding="utf-8")


def test_exit_codes_are_documented_only_in_the_cli_reference() -> None:
    """The epilogs (generated into cli.md) are the one place: no other page or the README repeats them."""
    # the README's old forms: "exits **0** ...", "exit codes: **0** ...", a table row "| **0** | ... |"
    pattern = re.compile(r"exit(?:s| codes?)?[:\s]+\*\*\d|^\|\s*\*\*\d+\*\*\s*\|", re.IGNORECASE | re.MULTILINE)
    offenders = [
        path.name for path in [README, *PAGES] if path.name != "cli.md" and pattern.search(path.read_text("utf-8"))
    ]
    assert not offenders, f"exit codes belong in the CLI reference (argparse epilogs), not in: {offenders}"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [page.name for page in PAGES if not re.search(rf":\s*{re.escape(page.name)}\s*$", nav, re.MULTILINE)]
    assert not missing, f"add to mkdocs.yml's nav: {missing}"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: path.name)
def test_every_relative_link_resolves_to_a_file(path: Path) -> None:
    broken = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.name} links to files that do not exist: {broken}"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: path.name)
def test_every_cited_source_path_exists(path: Path) -> None:
    generated = {line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()}
    missing = [
        cited
        for cited in CITED_PATH.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / cited).exists() and cited.rstrip("/") not in generated  # made by make examples, ...
    ]
    assert not missing, f"{path.name} cites paths that are not in the tree (moved? update the page): {missing}"


def test_readme_is_a_short_entry_that_links_into_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, f"README.md is over {README_MAX_LINES} lines: move it to docs/"
    linked = {Path(target.split("#", 1)[0]).name for target in _links(README) if target.startswith("docs/")}
    unlinked = sorted({page.name for page in PAGES} - linked - {"hooks.py"})
    assert not unlinked, f"README.md links to no docs page of: {unlinked}"


def test_the_local_stack_readme_points_at_the_docs() -> None:
    text = (ROOT / "mmedeploy" / "local" / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 3
    assert "docs/local-stack.md" in text
