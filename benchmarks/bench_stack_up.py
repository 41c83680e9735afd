"""Issue 15's stack figures: how long ``mmedeploy up`` takes to a ready stack (goal <= 10 s), and
the first upload -> AWAITING_APPROVAL, which meets every function cold (a new awslambdaric process
each), against a second upload that finds them warm (goal: cold <= 2x warm).

The artifacts the stack runs (build/dev) are built or reused first, outside every clock, and the
time that took is printed on its own line; the example ensemble is packaged and validated as
``idcheck`` 1 and 2 before any clock starts too. Then, ``--runs`` times, on a fresh state
directory and port range:

- ``mmedeploy up --detach --fresh``: the wall time of the command (what a user waits: interpreter
  start, imports, the stack's start, ready) and the stack's own ``ready_seconds`` from stack.json;
- push ``idcheck_1.tar.gz`` (``mmedeploy push``): from just before the push to the registry's
  AWAITING_APPROVAL timestamp (``mmedeploy status idcheck 1 --json`` shows the same history);
- push ``idcheck_2.tar.gz`` once it is AWAITING_APPROVAL: the same, with warm processes;
- ``mmedeploy down``, also on an error or Ctrl-C.

Both uploads pay a real cold load of a new model on the staging MME (Triton); its time
(``cold_load_ms``) is shown beside them. From the functions' lines in CloudWatch Logs for each
upload's window: the new execution environments and their ``Init Duration``, and the time before
each function's ``START`` (delivery by EventBridge and Step Functions, and the local Lambda
service's preparation: it unzips a package on its first invocation, so the unzip time of each
package is measured once for reference). Then each recorded status step, cold against warm. About
half a minute per run on a 2-core machine.

    .venv/bin/python benchmarks/bench_stack_up.py [--runs 3]    (or: make bench-stack-up)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stack import (
    ROOT,
    RunningStack,
    Upload,
    ensure_artifacts,
    epoch,
    example_tarball,
    guarded,
    lambda_groups,
    median,
    push_until_awaiting,
    reports,
    running_stack,
    verdict,
)

READY_GOAL_S = 10.0
COLD_WARM_GOAL = 2.0


@dataclass
class Timed:
    upload: Upload
    inits: int  # execution environments started during the upload
    init_ms: float  # their Init Durations, summed
    before_start_s: float  # before each function's START: delivery, and the code unzipped on first use

    @property
    def seconds(self) -> float:
        return self.upload.to_awaiting_s

    @property
    def triton_load_s(self) -> float:
        return float(self.upload.record.metrics.get("cold_load_ms", 0.0)) / 1000


@dataclass
class Run:
    up_wall_s: float
    ready_s: float
    cold: Timed
    warm: Timed
    packaged: str


def unzip_seconds() -> dict[str, float]:
    """How long unzipping each package the stack runs takes here (the local Lambda service unzips
    a package on its first invocation, before that invocation's START): a reference for the cold
    upload's time before START."""
    from mmedeploy.local.provision import PACKAGE_STAGE

    seconds = {}
    for archive in sorted((ROOT / "build" / PACKAGE_STAGE).glob("*.zip")):
        with tempfile.TemporaryDirectory(prefix="bench-unzip-") as tmp:
            started = time.perf_counter()
            with zipfile.ZipFile(archive) as opened:
                opened.extractall(tmp)
            seconds[archive.name] = time.perf_counter() - started
    return seconds


def timed_upload(stack: RunningStack, tarball: Path, version: str) -> Timed:
    target = stack.target
    upload = push_until_awaiting(target, tarball, version)
    end = upload.at(upload.record.status) + 1.0  # the last function's REPORT follows its status write
    found = reports(target, upload.pushed_at, end, lambda_groups(target))
    started = [r for r in found if r.init_ms is not None]
    # the pipeline runs its functions one after another: the time from the push (then from each
    # function's end) to the next function's START is delivery (EventBridge, Step Functions), the
    # Lambda service's preparation (the package unzipped on its first use) and process start
    before, last = 0.0, upload.pushed_at
    for report in found:
        if report.started_ms is not None:
            before += max(0.0, report.started_ms / 1000 - last)
        last = report.timestamp_ms / 1000
    return Timed(upload, len(started), sum(r.init_ms or 0.0 for r in started), before)


def one_run(tarballs: dict[str, Path], state_dir: Path) -> Run:
    with running_stack(state_dir) as stack:
        cold = timed_upload(stack, tarballs["1"], "1")
        warm = timed_upload(stack, tarballs["2"], "2")
        return Run(stack.up_wall_s, stack.info.ready_seconds, cold, warm, stack.packaged)


def show(runs: list[Run], unzipped: dict[str, float]) -> bool:
    print(f"\n{'stack':12}{'up --detach s':>15}{'ready_seconds':>15}")
    for number, run in enumerate(runs, 1):
        print(f"{f'run {number}':12}{run.up_wall_s:15.2f}{run.ready_s:15.2f}")
        if run.packaged:
            print(f"  (the stack built artifacts itself, counted in its ready time: {run.packaged})")
    print(
        f"\n{'upload -> AWAITING_APPROVAL':28}{'total s':>9}{'new envs':>10}{'Init s':>8}"
        f"{'before START s':>16}{'Triton load s':>15}{'cold/warm':>11}"
    )
    for number, run in enumerate(runs, 1):
        for label, timed in (
            (f"run {number} cold (version 1)", run.cold),
            (f"run {number} warm (version 2)", run.warm),
        ):
            ratio = f"{run.cold.seconds / run.warm.seconds:10.2f}x" if timed is run.warm else ""
            print(
                f"{label:28}{timed.seconds:9.2f}{timed.inits:10}{timed.init_ms / 1000:8.2f}"
                f"{timed.before_start_s:16.2f}{timed.triton_load_s:15.2f}{ratio}"
            )
    up_wall = median([r.up_wall_s for r in runs])
    ready = median([r.ready_s for r in runs])
    cold = median([r.cold.seconds for r in runs])
    warm = median([r.warm.seconds for r in runs])
    ratio = median([r.cold.seconds / r.warm.seconds for r in runs])
    cold_triton = median([r.cold.triton_load_s for r in runs])
    warm_triton = median([r.warm.triton_load_s for r in runs])
    without = (cold - cold_triton) / (warm - warm_triton)
    ready_ok = up_wall <= READY_GOAL_S and ready <= READY_GOAL_S
    print(f"\nmedians of {len(runs)} run(s):")
    print(
        f"  stack ready: `mmedeploy up --detach` {up_wall:.2f} s, ready_seconds {ready:.2f} s "
        f"(goal <= {READY_GOAL_S:.0f} s: {'met' if ready_ok else 'MISSED'})"
    )
    print(
        f"  upload -> AWAITING_APPROVAL: cold processes {cold:.2f} s, warm {warm:.2f} s, "
        f"cold/warm {ratio:.2f}x ({verdict(ratio, COLD_WARM_GOAL)})"
    )
    print(
        f"  the same without the staging MME's Triton load of the new model ({cold_triton:.2f} s cold, "
        f"{warm_triton:.2f} s warm): {cold - cold_triton:.2f} s vs {warm - warm_triton:.2f} s = {without:.2f}x"
    )
    steps(runs)
    each = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in unzipped.items())
    print(f"\n  for reference, unzipping the packages here (once, outside the runs): {each}")
    return ready_ok and ratio <= COLD_WARM_GOAL


def step_seconds(upload: Upload) -> list[tuple[str, float]]:
    """Each recorded status since the previous one (the first since the push began)."""
    rows, previous, last = [], "push", upload.pushed_at
    for entry in upload.record.history:
        at = epoch(entry.at)
        rows.append((f"{previous} -> {entry.status.value}", at - last))
        previous, last = entry.status.value, at
    return rows


def steps(runs: list[Run]) -> None:
    """Where the cold upload's time goes: each step's median, cold and warm (the registry's timestamps)."""
    cold = [step_seconds(run.cold.upload) for run in runs]
    warm = [step_seconds(run.warm.upload) for run in runs]
    names = [name for name, _ in cold[0]]
    if any([n for n, _ in rows] != names for rows in cold + warm):
        return  # a run recorded other steps: no common table
    print(f"\n  {'step (registry timestamps, medians)':44}{'cold s':>9}{'warm s':>9}{'cold - warm s':>15}")
    for index, name in enumerate(names):
        c = median([rows[index][1] for rows in cold])
        w = median([rows[index][1] for rows in warm])
        print(f"  {name:44}{c:9.2f}{w:9.2f}{c - w:15.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be 1..20")
    return guarded("bench-stack-up", lambda: measure(args.runs))


def measure(count: int) -> int:
    print(ensure_artifacts())
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-stack-up-") as tmp:
        tarballs = {version: example_tarball(version, Path(tmp)) for version in ("1", "2")}
        unzipped = unzip_seconds()
        for number in range(1, count + 1):
            run = one_run(tarballs, Path(tmp) / f"run{number}" / ".mmedeploy")
            runs.append(run)
            print(
                f"run {number}: ready {run.up_wall_s:.2f} s, cold upload {run.cold.seconds:.2f} s, "
                f"warm upload {run.warm.seconds:.2f} s"
            )
    return 0 if show(runs, unzipped) else 1


if __name__ == "__main__":
    raise SystemExit(main())
