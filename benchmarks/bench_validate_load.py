"""``mmedeploy validate --load`` of the example ensemble against the local MME's cold load of the
same tarball, measured in the same run (issue 19; goal: validate --load <= 2x the cold load).

- validate --load: the CLI as a user runs it (``.venv/bin/mmedeploy validate T --load``, a fresh
  process each round), wall time from start to exit: interpreter start, the static checks,
  staging, a fresh tritonserver, the load, the two smoke-test cases, stopping Triton.
- the local MME's cold load: a fresh endpoint (``LocalEndpoint``: its own tritonserver, started
  as the MME starts one on an endpoint's first invocation) and its first invoke of the tarball
  (fetch, stage, load the ensemble and its 3 members, one inference). The fetch is a local file
  copy rather than moto's S3, and there is no HTTP front door: both would only add to the MME's
  side. The MME's backend directory is prepared once beforehand, as the MME does at start.

Rounds alternate the two so drift hits both alike; medians are compared.

    .venv/bin/python benchmarks/bench_validate_load.py [--rounds 5]    (or: make bench-validate-load)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.build_examples import MODELS, build  # noqa: E402
from mmedeploy.local.mme.endpoint import EndpointSettings, LocalEndpoint  # noqa: E402
from mmedeploy.local.mme.triton import TritonInstall  # noqa: E402
from mmedeploy.packaging import package  # noqa: E402
from testkit.mme import idcheck_body  # noqa: E402

GOAL = 2.0
CLI = Path(sys.executable).with_name("mmedeploy")


def validate_load(tarball: Path) -> float:
    command = [str(CLI), "validate", str(tarball), "--load", "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    report = json.loads(done.stdout)["load"]
    if not report["passed"] or len(report["cases"]) != 2:
        raise RuntimeError(f"validate --load did not pass both cases: {report}")
    return elapsed


def mme_cold_load(tarball: Path, install: TritonInstall, backends: Path, work: Path, body: bytes) -> float:
    directory = work / f"endpoint-{time.monotonic_ns()}"

    def fetch(target: str, destination: Path) -> None:
        shutil.copyfile(tarball, destination)

    started = time.perf_counter()
    endpoint = LocalEndpoint(
        "bench",
        directory,
        install,
        backends,
        fetch=fetch,
        settings=EndpointSettings(memory_budget_bytes=4 << 30, load_wait_s=120.0),
        metric=lambda *args: None,
    )
    try:
        result = endpoint.invoke(tarball.name, body, "application/json")
        elapsed = time.perf_counter() - started
    finally:
        endpoint.stop()
        shutil.rmtree(directory, ignore_errors=True)
    if "PROBABILITIES" not in result.body.decode():
        raise RuntimeError(f"the MME's first invoke did not answer as expected: {result.body[:300]!r}")
    return elapsed


def run(rounds: int) -> dict[str, Any]:
    build()
    install = TritonInstall()
    body = idcheck_body(np.random.default_rng(1).normal(size=(1, 16)).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="bench-validate-load-") as tmp:
        work = Path(tmp)
        tarball = package(MODELS / "idcheck", "idcheck", "1", work).path
        backends = install.prepare_backends(work / "backends")
        validate_load(tarball)  # the first run pays cold file caches (Triton's libraries, imports)
        mme_cold_load(tarball, install, backends, work, body)
        cli, mme = [], []
        for _ in range(rounds):
            cli.append(validate_load(tarball))
            mme.append(mme_cold_load(tarball, install, backends, work, body))
    return {
        "validate_load_median_s": round(statistics.median(cli), 3),
        "mme_cold_load_median_s": round(statistics.median(mme), 3),
        "ratio": round(statistics.median(cli) / statistics.median(mme), 2),
        "validate_load_s": [round(s, 3) for s in cli],
        "mme_cold_load_s": [round(s, 3) for s in mme],
        "rounds": rounds,
        "goal": GOAL,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each (5)")
    args = parser.parse_args()
    result = run(args.rounds)
    print(json.dumps(result, indent=2))
    print(
        f"validate --load {result['validate_load_median_s']:.2f} s (median, the CLI in a fresh process) vs the "
        f"local MME's cold load {result['mme_cold_load_median_s']:.2f} s (fresh endpoint, first invoke) = "
        f"{result['ratio']:.2f}x (goal <= {GOAL:g}x)"
    )
    return 0 if result["ratio"] <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
