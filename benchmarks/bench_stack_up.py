"""Time from `mmedeploy up` to ready, and the running stack's memory.

Runs `mmedeploy up --detach --fresh` a few times on a free port range and reports, per run, the
stack's own start-to-ready time (from stack.json), the wall time of the `up` command (process
start, imports, provisioning) and the host process's resident memory once ready (VmRSS) and at
its peak (VmHWM). Target from issue 3: ready in under 15 s.

    .venv/bin/python benchmarks/bench_stack_up.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmedeploy.local.stack import StackInfo  # noqa: E402
from tests.stack_process import free_port_base, mmedeploy  # noqa: E402


def _memory_mib(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            state_dir = Path(tmp) / ".mmedeploy"
            started = time.monotonic()
            result = mmedeploy(
                "up", "--detach", "--fresh", "--port-base", str(free_port_base()), "--state-dir", str(state_dir)
            )
            wall = time.monotonic() - started
            if result.returncode != 0:
                print(result.stdout, result.stderr)
                return 1
            info = StackInfo.model_validate_json((state_dir / "stack.json").read_text())
            rss, peak = _memory_mib(info.pid)
            mmedeploy("down", "--state-dir", str(state_dir))
        rows.append((info.ready_seconds, wall, rss, peak))
        print(
            f"run {run + 1}: ready {info.ready_seconds:.2f} s in-process, `up --detach` {wall:.2f} s, "
            f"RSS {rss:.0f} MiB (peak {peak:.0f})"
        )
    ready, wall, rss, peak = (statistics.median(column) for column in zip(*rows, strict=True))
    print(
        f"median: ready {ready:.2f} s, `up --detach` wall {wall:.2f} s "
        f"(target < 15 s: {'ok' if wall < 15 else 'MISSED'}), RSS {rss:.0f} MiB, peak {peak:.0f} MiB"
    )
    return 0 if wall < 15 else 1


if __name__ == "__main__":
    sys.exit(main())
