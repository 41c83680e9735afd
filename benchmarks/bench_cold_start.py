"""Issue 15's artifact figures: each packaged handler's cold import from its artifact, as a ratio
to ``import boto3; boto3.client("dynamodb")`` measured in the same run, and each artifact's size.

The package of STAGE (default staging) is built, or reused when its inputs are unchanged
(``mmedeploy.deploy.package.ensure_built``); each zip is unzipped into a task root; then, for
every ``AWS::Serverless::Function`` of the packaged template, Lambda's import of its ``Handler``
runs in a fresh ``python3.12 -I -S -B`` with only the task root on ``sys.path`` and the function's
template environment (``mmedeploy.deploy.cold_start``), alternately with the baseline in the same
task root and environment. Each figure is the median of ``--runs`` processes, after one discarded
warm-up of each (the page cache). Interpreter start-up is not counted, the import is. No bytecode
is written, so each process sees exactly what Lambda's read-only task root holds.

Goals: the Chalice app's handlers (API, authorizer, upload trigger) <= 1.5x the baseline, the stage
Lambdas' <= 2x, every artifact <= 60 MB unzipped.

    .venv/bin/python benchmarks/bench_cold_start.py [--stage staging] [--runs 11]   (or: make bench-cold-start)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmedeploy.deploy.cold_start import (  # noqa: E402
    BASELINE,
    clean_import,
    interpreter,
    lambda_environment,
    packaged_functions,
    unpack,
)
from mmedeploy.deploy.package import ARTIFACT_BUDGET_BYTES, CHALICE_ZIP, PackageError, ensure_built  # noqa: E402

API_GOAL = 1.5  # the Chalice app's functions (deployment.zip)
STAGE_GOAL = 2.0  # the stage Lambdas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="staging", help="the package to measure (build/STAGE)")
    parser.add_argument("--runs", type=int, default=11, help="timed processes per handler and for the baseline")
    args = parser.parse_args()
    try:
        built = ensure_built(args.stage, ROOT / "build" / args.stage)
    except PackageError as exc:
        print(f"bench-cold-start: {exc}", file=sys.stderr)
        return 1
    what = f"rebuilt {', '.join(built.rebuilt)}" if built.rebuilt else "reused: inputs unchanged"
    print(f"package: {built.out.relative_to(ROOT)} ({what}, {built.seconds:.1f} s)\n")

    functions = packaged_functions(built.template)
    missed: list[str] = []
    rows: list[tuple[str, str, str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        codes = sorted({function.code_uri for function in functions})
        roots = {code: unpack(built.out / code, Path(tmp) / Path(code).stem) for code in codes}
        for function in functions:
            python = interpreter(function.runtime)
            if python is None:
                print(f"bench-cold-start: no {function.runtime} on PATH for {function.logical_id}", file=sys.stderr)
                return 1
            root = roots[function.code_uri]
            env = lambda_environment(function, root)
            baseline: list[float] = []
            handler: list[float] = []
            for run in range(args.runs + 1):
                base = clean_import(BASELINE, root, env, python)
                mine = clean_import(function.import_code(), root, env, python)
                for result in (base, mine):
                    if not result.ok:
                        print(f"bench-cold-start: {function.logical_id}: {result.error}", file=sys.stderr)
                        return 1
                if run:  # the first pair warms the page cache
                    baseline.append(base.seconds)
                    handler.append(mine.seconds)
            goal = API_GOAL if Path(function.code_uri).name == CHALICE_ZIP else STAGE_GOAL
            ratio = statistics.median(handler) / statistics.median(baseline)
            rows.append(
                (
                    function.logical_id,
                    function.handler,
                    Path(function.code_uri).name,
                    statistics.median(handler) * 1000,
                    statistics.median(baseline) * 1000,
                    ratio,
                    goal,
                )
            )
            if ratio > goal:
                missed.append(f"{function.logical_id} {ratio:.2f}x > {goal}x")

    width = max(len(row[1]) for row in rows)
    print(f"cold import from the artifact, median of {args.runs} processes (python3.12 -I -S -B):")
    print(f"  {'handler':<{width}}  {'artifact':<14} {'import':>9} {'baseline':>9} {'ratio':>6}  goal")
    for _, handler_name, artifact, ms, base_ms, ratio, goal in rows:
        flag = "" if ratio <= goal else "  MISSED"
        print(
            f"  {handler_name:<{width}}  {artifact:<14} {ms:7.0f} ms {base_ms:6.0f} ms {ratio:5.2f}x  <= {goal}x{flag}"
        )

    print(f"\nartifacts (goal: each <= {ARTIFACT_BUDGET_BYTES / 1e6:.0f} MB unzipped):")
    for artifact in built.artifacts:
        flag = "" if artifact.unzipped_bytes <= ARTIFACT_BUDGET_BYTES else "  MISSED"
        print(
            f"  {artifact.name:<14} {artifact.zipped_bytes / 1e6:6.1f} MB zipped "
            f"{artifact.unzipped_bytes / 1e6:6.1f} MB unzipped  {artifact.files} files, "
            f"{len(artifact.functions)} functions{flag}"
        )
        if artifact.unzipped_bytes > ARTIFACT_BUDGET_BYTES:
            missed.append(f"{artifact.name} {artifact.unzipped_bytes / 1e6:.1f} MB")

    worst_api = max(row[5] for row in rows if row[6] == API_GOAL)
    worst_stage = max(row[5] for row in rows if row[6] == STAGE_GOAL)
    largest = max(a.unzipped_bytes for a in built.artifacts) / 1e6
    print(
        f"\nworst Chalice handler {worst_api:.2f}x (goal <= {API_GOAL}x), worst stage handler {worst_stage:.2f}x "
        f"(goal <= {STAGE_GOAL}x), largest artifact {largest:.1f} MB (goal <= {ARTIFACT_BUDGET_BYTES / 1e6:.0f} MB): "
        + ("all goals met" if not missed else "MISSED: " + "; ".join(missed))
    )
    return 1 if missed else 0  # as the other benchmarks: a missed goal fails the make target


if __name__ == "__main__":
    sys.exit(main())
