"""``make demo``: the main job that exists so far, shown as a user would see it.

Packages and validates the example models, then packages a copy of the ensemble with a typical
wiring mistake to show a rejection. Exits non-zero if anything does not behave as it should.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from mmedeploy.packaging import InvalidPackage, package
from mmedeploy.report_view import render_report

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"
DIST = ROOT / "examples" / "dist"


def main() -> int:
    console = Console()
    ok = True
    for source, name, version in ((EXAMPLES / "idcheck", "idcheck", "1"), (EXAMPLES / "textstats", "textstats", "1.0")):
        console.print(Rule(f"mmedeploy package {source.relative_to(ROOT)} --name {name} --version {version}"))
        try:
            result = package(source, name, version, DIST)
        except InvalidPackage as exc:
            render_report(exc.report, f"{name}_{version}.tar.gz", console)
            ok = False
            continue
        render_report(result.report, result.path.name, console)
        console.print(f"wrote {result.path.relative_to(ROOT)}\n")

    console.print(Rule("a broken ensemble: a step maps a tensor its member does not have"))
    with tempfile.TemporaryDirectory() as tmp:
        broken = Path(tmp) / "idcheck"
        shutil.copytree(EXAMPLES / "idcheck", broken)
        config = broken / "idcheck_pipeline" / "config.pbtxt"
        config.write_text(config.read_text().replace('key: "LOGITS" value: "logits"', 'key: "LOGIT" value: "logits"'))
        try:
            package(broken, "idcheck", "2", Path(tmp) / "dist")
            console.print("[red]the broken ensemble was accepted: the validator missed it[/red]")
            ok = False
        except InvalidPackage as exc:
            render_report(exc.report, "idcheck_2.tar.gz", console)
            console.print("refused as expected: nothing was written\n")
    console.print("[bold green]demo finished[/bold green]" if ok else "[bold red]demo failed[/bold red]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
