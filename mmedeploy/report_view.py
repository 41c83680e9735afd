"""Human-readable rendering of a validation report (the JSON form is the report's model_dump)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chalicelib.domain.signature import TensorSpec
from chalicelib.domain.validation.findings import Severity
from chalicelib.domain.validation.report import ValidationReport


def _tensors(tensors: list[TensorSpec]) -> str:
    return "\n".join(f"{t.name} {t.data_type.removeprefix('TYPE_')} {t.dims}" for t in tensors) or "-"


def render_report(report: ValidationReport, filename: str, console: Console) -> None:
    errors, warnings = len(report.errors), len(report.warnings)
    if report.valid:
        headline = Text(f"✔ {filename} is valid", style="bold green")
    else:
        headline = Text(f"✘ {filename} is invalid", style="bold red")
    headline.append(f"  ({errors} error(s), {warnings} warning(s))", style="dim")
    console.print(headline)
    sha = report.sha256[:16] + "…" if report.sha256 else "not computed (read stopped early)"
    console.print(
        f"  sha256 {sha}   size {report.size:,} B   uncompressed {report.uncompressed_size:,} B   "
        f"members {report.member_count}",
        style="dim",
    )
    if report.findings:
        table = Table(show_header=True, header_style="bold", expand=False)
        for column in ("severity", "code", "path", "what to change"):
            table.add_column(column, overflow="fold")
        for finding in report.findings:
            style = "red" if finding.severity is Severity.ERROR else "yellow"
            table.add_row(Text(finding.severity.value, style=style), finding.code.value, finding.path, finding.message)
        console.print(table)
    if report.models:
        table = Table(title="Triton models", show_header=True, header_style="bold", title_justify="left")
        for column in ("model", "platform/backend", "max batch", "inputs", "outputs", "versions"):
            table.add_column(column, overflow="fold")
        for model in report.models:
            name = Text(model.name, style="bold") if model.served else Text(model.name)
            if model.served:
                name.append(" (served)", style="cyan")
            table.add_row(
                name,
                model.platform or model.backend or "?",
                str(model.max_batch_size),
                _tensors(model.inputs),
                _tensors(model.outputs),
                ",".join(map(str, model.versions)),
            )
        console.print(table)
