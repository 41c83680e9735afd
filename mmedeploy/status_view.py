"""``mmedeploy status``: the JSON shapes and the human (rich) views of registry records.

Pure functions of :class:`~chalicelib.domain.records.ModelVersion` records, so they are tested
without a stack. The exit policy of ``status --watch`` lives here too (:func:`watch_exit_code`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chalicelib.adapters.rollout_text import figure_rows, percent, step_line, timing_line
from chalicelib.domain.lifecycle import FAILURE, IN_PROGRESS, Status
from chalicelib.domain.records import Canary, HistoryEntry, ModelRoutes, ModelVersion
from chalicelib.domain.rollout.gates import Outcome
from chalicelib.domain.rollout.progress import RolloutRun
from chalicelib.domain.validation.findings import Finding, Severity

_STYLES: dict[Status, str] = {
    **{status: "bold red" for status in FAILURE},
    **{status: "cyan" for status in IN_PROGRESS},
    Status.AWAITING_APPROVAL: "bold yellow",
    Status.APPROVED: "bold green",
    Status.PRODUCTION: "bold green",
    Status.RETIRED: "dim",
}


class VersionRow(Protocol):
    """What a model's listing shows of each version: a registry record, or a line of the API's
    ``GET /models/NAME`` (:class:`mmedeploy.registry_client.VersionSummary`)."""

    @property
    def version(self) -> str: ...
    @property
    def status(self) -> Status: ...
    @property
    def reason(self) -> str: ...
    @property
    def uploaded_at(self) -> str: ...
    @property
    def updated_at(self) -> str: ...


def status_style(status: Status) -> str:
    return _STYLES.get(status, "")


def watch_exit_code(status: Status) -> int:
    """Exit code of ``status --watch`` once the version settled: 1 if it failed, else 0."""
    return 1 if status in FAILURE else 0


# -- JSON ---------------------------------------------------------------------------------------
def _findings_first_errors(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: f.severity is not Severity.ERROR)  # stable: keeps their order


def aliases(routes: ModelRoutes | None) -> dict[str, str]:
    """Where each alias points, only those set: ``production``, ``previous`` (where a rollback
    goes) and ``canary``; ``{}`` before the first promotion."""
    if routes is None:
        return {}
    pointers: dict[str, str] = {}
    if routes.production is not None:
        pointers["production"] = routes.production.version
        if routes.production.previous:
            pointers["previous"] = routes.production.previous
    if routes.canary is not None:
        pointers["canary"] = routes.canary.version
    return pointers


def model_json(name: str, records: Sequence[VersionRow], routes: ModelRoutes | None = None) -> dict[str, Any]:
    """``status NAME --json``: every version, oldest upload first, and the aliases: ``aliases`` maps
    each one set to its version; ``production`` (with ``previous``, ``revision``, ``updated_at``,
    ``actor``) and ``canary`` (with ``weight``, ``started_at``, ``actor``) give the details, or null."""
    production = routes.production if routes else None
    canary = routes.canary if routes else None
    return {
        "name": name,
        "versions": [
            {
                "version": r.version,
                "status": r.status.value,
                "reason": r.reason,
                "uploaded_at": r.uploaded_at,
                "updated_at": r.updated_at,
            }
            for r in records
        ],
        "aliases": aliases(routes),
        "production": production.model_dump(mode="json", exclude={"name", "alias"}) if production else None,
        "canary": canary.model_dump(mode="json", exclude={"name"}) if canary else None,
    }


# -- human views --------------------------------------------------------------------------------
def _when(at: str | None) -> str:
    return at.replace("T", " ").removesuffix("Z") if at else "-"


def _short(sha256: str | None) -> str:
    return sha256[:16] + "…" if sha256 else "-"


def _size(size: int | None) -> str:
    return f"{size:,} B" if size is not None else "-"


def _metrics_line(metrics: dict[str, float]) -> Text | None:
    parts: list[str] = []
    if "validation_ms" in metrics:
        parts.append(f"validation {metrics['validation_ms']:.1f} ms")
    if "cold_load_ms" in metrics:
        parts.append(f"cold load {metrics['cold_load_ms'] / 1000:.2f} s")
    if "warm_p50_ms" in metrics:
        parts.append(f"warm p50 {metrics['warm_p50_ms']:.1f} ms")
    if "smoke_tests" in metrics:
        parts.append(f"smoke tests {int(metrics['smoke_tests'])}")
    known = {"validation_ms", "cold_load_ms", "warm_p50_ms", "smoke_tests"}
    parts += [f"{key} {value:g}" for key, value in sorted(metrics.items()) if key not in known]
    return Text("   ".join(parts)) if parts else None


def _findings_table(findings: list[Finding]) -> Table:
    table = Table(title="findings", title_justify="left", header_style="bold", expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("code", no_wrap=True)
    table.add_column("path", overflow="fold")
    table.add_column("what to change", overflow="fold", ratio=1)
    for finding in _findings_first_errors(findings):
        style = "red" if finding.severity is Severity.ERROR else "yellow"
        table.add_row(Text(finding.severity.value, style=style), finding.code.value, finding.path, finding.message)
    return table


def _history_table(record: ModelVersion) -> Table:
    table = Table(title="history", title_justify="left", header_style="bold", expand=False)
    for column in ("at (UTC)", "status", "by"):
        table.add_column(column, no_wrap=True)
    table.add_column("why", overflow="fold", ratio=1)
    for entry in record.history:
        table.add_row(
            _when(entry.at), Text(entry.status.value, style=status_style(entry.status)), entry.actor, entry.reason
        )
    return table


NARROW_COLUMNS = 110  # below this the history table has no room left for "why"


class _History:
    """The history as a table, or one line per entry (wrapped) where a table would lose "why"
    (an 80-column terminal, a CI log)."""

    def __init__(self, record: ModelVersion) -> None:
        self._record = record

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if options.max_width >= NARROW_COLUMNS:
            yield _history_table(self._record)
            return
        yield Text("history", style="italic")
        for entry in self._record.history:
            yield history_line(entry)


def _refused_table(record: ModelVersion) -> Table:
    table = Table(title="refused uploads", title_justify="left", header_style="bold", expand=False)
    for column in ("at (UTC)", "etag", "sha256"):
        table.add_column(column, no_wrap=True)
    table.add_column("why", overflow="fold", ratio=1)
    for refused in record.rejected_uploads:
        table.add_row(_when(refused.at), refused.etag, _short(refused.sha256), refused.reason)
    return table


def version_view(record: ModelVersion, footer: RenderableType | None = None, now: datetime | None = None) -> Panel:
    """One version: status and reason, evidence, metrics, its rollout (see :func:`rollout_view`),
    findings, history, refused uploads."""
    headline = Text(record.status.value, style=status_style(record.status))
    if record.reason:
        headline.append(f"  {record.reason}", style="")
    details = Table.grid(padding=(0, 2))
    details.add_column(style="dim")
    details.add_column(overflow="fold")
    details.add_row("sha256", _short(record.sha256))
    details.add_row("size", _size(record.size))
    details.add_row("object", f"s3://{record.bucket}/{record.key}")
    details.add_row("uploaded", _when(record.uploaded_at) + " UTC")
    details.add_row("updated", _when(record.updated_at) + " UTC")
    metrics = _metrics_line(record.metrics)
    if metrics is not None:
        details.add_row("metrics", metrics)
    parts: list[RenderableType] = [headline, details]
    rollout = rollout_view(record, now)
    if rollout is not None:
        parts.append(rollout)
    if record.findings:
        parts.append(_findings_table(record.findings))
    if record.history:
        parts.append(_History(record))
    if record.rejected_uploads:
        parts.append(_refused_table(record))
    if footer is not None:
        parts.append(footer)
    return Panel(Group(*parts), title=f"[bold]{record.name}[/] {record.version}", title_align="left", expand=False)


# -- a rollout's panel ------------------------------------------------------------------------------
_OUTCOME_STYLES = {Outcome.PASS: "green", Outcome.WAIT: "yellow", Outcome.FAIL: "bold red"}


def rollout_of(record: ModelVersion) -> RolloutRun | None:
    """The rollout a panel shows: one running (PROMOTING) or one its gates or an admin ended
    (ROLLED_BACK); None otherwise."""
    run = record.promotion.rollout if record.promotion else None
    return run if record.status in (Status.PROMOTING, Status.ROLLED_BACK) else None


def _mark(passed: bool | None) -> Text:
    if passed is None:
        return Text("-", style="dim")
    return Text("pass", style="green") if passed else Text("FAIL", style="bold red")


def rollout_view(record: ModelVersion, now: datetime | None = None) -> Panel | None:
    """A rollout's panel: candidate and production, the step and its weight, paused (by whom), the
    latest reading (both versions' requests, errors and p99 latency against each gate's bound, the
    outcome and why), the time to the next reading and what is left of the step's bake. None when
    the version has no rollout (see :func:`rollout_of`)."""
    run = rollout_of(record)
    if run is None:
        return None
    now = now or datetime.now(UTC)
    ended = record.status is Status.ROLLED_BACK
    lines: list[RenderableType] = [
        Text.assemble(
            ("candidate ", "dim"),
            (record.version, "bold"),
            ("  production ", "dim"),
            (run.production_version, "bold"),
            ("  ", ""),
            ("ROLLED_BACK " if ended else "", status_style(Status.ROLLED_BACK)),
            (step_line(run), "bold yellow" if run.paused_by and not ended else ""),
        )
    ]
    if run.paused_by and run.paused_at and not ended:
        lines.append(Text(f"paused by {run.paused_by} at {_when(run.paused_at)} UTC: it holds its weight", "yellow"))
    reading = run.last
    if reading is None:
        lines.append(Text("no reading yet", style="dim"))
    else:
        lines.append(
            Text.assemble(
                (f"latest reading {_when(reading.at)} UTC  ", "dim"),
                (reading.outcome.value, _OUTCOME_STYLES.get(reading.outcome, "")),
                (f"  {reading.reason}", ""),
            )
        )
        table = Table(header_style="bold", expand=False, box=None, padding=(0, 2))
        table.add_column("")
        table.add_column(f"candidate {reading.candidate.version}", justify="right")
        table.add_column(f"production {reading.production.version}", justify="right")
        table.add_column("bound", justify="right")
        table.add_column("gate")
        for row in figure_rows(run):
            table.add_row(row.label, row.candidate, row.production, row.bound, _mark(row.passed))
        lines.append(table)
    timing = None if ended else timing_line(run, now)
    if timing:
        lines.append(Text(timing, style="dim"))
    title = f"[bold]rollout[/] of {record.name} {record.version}{' (ended)' if ended else ''}"
    return Panel(Group(*lines), title=title, title_align="left", expand=False)


def rollout_line(run: RolloutRun, lead: str = "") -> Text:
    """A rollout's step and latest reading on one line (``mmedeploy rollout`` following one)."""
    line = Text(lead)
    line.append(step_line(run), style="bold")
    if run.last is not None:
        line.append("  ")
        line.append(run.last.outcome.value, style=_OUTCOME_STYLES.get(run.last.outcome, ""))
        line.append(f"  {run.last.reason}")
    return line


def _alias_cells(routes: ModelRoutes | None) -> dict[str, str]:
    """What the versions table says of each aliased version."""
    cells: dict[str, list[str]] = {}
    for alias, version in aliases(routes).items():
        label = alias
        if alias == "canary" and routes is not None and routes.canary is not None:
            label = f"{_canary_kind(routes.canary)} {percent(routes.canary.weight)}"
        cells.setdefault(version, []).append(label)
    return {version: ", ".join(labels) for version, labels in cells.items()}


def _canary_kind(canary: Canary) -> str:
    """'rollout' for a rollout's canary (its execution owns it), else 'canary' (an admin's)."""
    return "rollout" if canary.rollout_execution else "canary"


def routes_line(routes: ModelRoutes | None) -> str | None:
    """Where the traffic goes, in words; None before the first promotion."""
    if routes is None or (routes.production is None and routes.canary is None):
        return None
    production, canary = routes.production, routes.canary
    parts = []
    if production is not None:
        rollback = f" (a rollback goes to {production.previous})" if production.previous else ""
        parts.append(f"production {production.version}{rollback}")
    else:
        parts.append("no production version")
    if canary is not None and canary.rollout_execution:
        parts.append(
            f"rollout of {canary.version}: it takes {percent(canary.weight)} of the traffic "
            f"(mmedeploy status {canary.name} {canary.version} shows its step)"
        )
    elif canary is not None:
        parts.append(f"canary {canary.version} takes {percent(canary.weight)} of the traffic (by {canary.actor})")
    return "; ".join(parts)


def versions_view(name: str, records: Sequence[VersionRow], routes: ModelRoutes | None = None) -> Table:
    """Every version of a model, oldest upload first, with its aliases."""
    table = Table(
        title=f"{name}: {len(records)} version(s)",
        title_justify="left",
        header_style="bold",
        caption=routes_line(routes),
        caption_justify="left",
    )
    cells = _alias_cells(routes)
    table.add_column("version", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if cells:
        table.add_column("alias", no_wrap=True, min_width=max(len(cell) for cell in cells.values()))
    for column in ("uploaded (UTC)", "updated (UTC)"):
        table.add_column(column, overflow="fold")  # on a narrow screen the time goes under the date
    table.add_column("reason", overflow="fold", ratio=1)
    for record in records:
        alias = [Text(cells.get(record.version, ""), style="bold")] if cells else []
        table.add_row(
            record.version,
            Text(record.status.value, style=status_style(record.status)),
            *alias,
            _when(record.uploaded_at),
            _when(record.updated_at),
            record.reason,
        )
    return table


def waiting_view(name: str, version: str, footer: RenderableType) -> Panel:
    """Shown by ``--watch`` until the upload is registered."""
    body = Group(
        Text(f"not registered yet: waiting for {name}_{version}.tar.gz to reach the registry", style="dim"), footer
    )
    return Panel(body, title=f"[bold]{name}[/] {version}", title_align="left", expand=False)


def history_line(entry: HistoryEntry, lead: str = "", at: bool = True, status_width: int = 0) -> Text:
    """One history entry on one line (``--watch`` to a CI log, ``promote``, the demo): ``lead``
    (e.g. the seconds elapsed), the time unless ``at`` is False, the status (padded to
    ``status_width``), who, why."""
    line = Text(lead)
    if at:
        line.append(f"{_when(entry.at)}  ")
    line.append(entry.status.value.ljust(status_width), style=status_style(entry.status))
    line.append(f"  {entry.actor}", style="dim")
    if entry.reason:
        line.append(f"  {entry.reason}")
    return line
