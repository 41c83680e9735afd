"""The README documents every finding code with the catalogue's severity."""

from __future__ import annotations

from pathlib import Path

from chalicelib.validation.findings import CATALOGUE

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_finding_code_is_in_the_readme_table() -> None:
    missing = [
        code.value
        for code, (severity, _) in CATALOGUE.items()
        if f"| `{code.value}` | {severity.value} |" not in README
    ]
    assert not missing, f"add these to README's finding-code table: {missing}"
