"""Issue 20's figure: the time from a rollout gate's breach to the canary's removal, on the local
stack (goal: at most one evaluation interval + 5 s).

A fresh local stack; version 1 in production; each round rolls out a new version (steps 50% ->
100%, a long bake so it stays at its first step) under synthetic traffic through the API, lets the
gates read it healthy a few times, then makes the candidate fail every request (its model raises
once a file exists: the local MME runs Triton on this machine) at a random moment within an
evaluation interval. From the traffic log (every answer's version, status and time):

- **breach**: the first answer after which the candidate's figures over the step's window (from
  its minute, as the gates read them) fail the error gate: errors per request above production's
  plus the margin, with at least ``min_requests`` requests of each version;
- **ROLLED_BACK**: the registry's history entry of the rollout's end (the gates' judgement; the
  API stops routing to a rollout's candidate that is no longer PROMOTING);
- **last candidate answer**: the last request the API sent to the candidate (its route cache
  holds a model's routes up to 5 s): what the model's consumers see.

    .venv/bin/python benchmarks/bench_rollout.py [--rounds 3] [--interval 10]   (or: make bench-rollout)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import BenchError, epoch, guarded, running_stack  # noqa: E402
from chalicelib.adapters.registry import ModelRegistry  # noqa: E402
from chalicelib.domain.lifecycle import Status  # noqa: E402
from chalicelib.inference.api_contract import VERSION_HEADER  # noqa: E402
from mmedeploy.local.stack import StackInfo  # noqa: E402
from testkit.http import call_api  # noqa: E402
from testkit.polling import TimedOut, wait_for  # noqa: E402
from testkit.slack import click  # noqa: E402
from testkit.tarballs import echo_repo, pack  # noqa: E402

NAME = "breach"
ROUTE_CACHE_S = 5.0  # the API's route cache TTL (Settings.route_cache_ttl_s): the goal's 5 s
MARGIN = 0.01
MIN_REQUESTS = 20


def failing_once(trigger: Path) -> bytes:
    """A model answering OUT = IN until ``trigger`` exists, then failing every request."""
    return f"""import os
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        if os.path.exists({str(trigger)!r}):
            raise ValueError("breach")
        return [
            pb_utils.InferenceResponse(
                [pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy().astype(np.float32))]
            )
            for r in requests
        ]
""".encode()


def at_status(registry: ModelRegistry, version: str, status: Status) -> Any:
    """A probe for ``wait_for``: NAME ``version``'s record once it has ``status``."""

    def probe() -> Any:
        record = registry.find(NAME, version)
        return record if record and record.status is status else None

    return probe


class Traffic:
    """Clients sending requests for NAME through the API; every answer as (wall time, version, status)."""

    def __init__(self, info: StackInfo, workers: int = 3) -> None:
        self.answers: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        headers = {"Authorization": f"Bearer {info.api_token}", "Content-Type": "application/json"}
        body = json.dumps({"inputs": [{"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": [1.0] * 4}]})

        def client() -> None:
            while not self._stop.is_set():
                status, answered, _ = call_api(info.api_url, "POST", f"/v2/models/{NAME}/infer", headers, body.encode())
                self.answers.append((time.time(), answered.get(VERSION_HEADER, "?"), status))

        self._threads = [threading.Thread(target=client, daemon=True) for _ in range(workers)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)


def breach_at(answers: list[tuple[float, str, int]], candidate: str, production: str, since: float) -> float | None:
    """The first answer's time after which the error gate fails over the window from ``since``."""
    counts = {candidate: [0, 0], production: [0, 0]}  # requests, errors
    for at, version, status in sorted(answers):
        if at < since or version not in counts:
            continue
        counts[version][0] += 1
        counts[version][1] += int(status >= 500)
        (ours, our_errors), (theirs, their_errors) = counts[candidate], counts[production]
        if min(ours, theirs) >= MIN_REQUESTS and our_errors / ours > their_errors / theirs + MARGIN:
            return at
    return None


def one_round(
    info: StackInfo, registry: ModelRegistry, s3: Any, version: str, interval: int, folder: Path
) -> dict[str, float]:
    trigger = folder / f"breach-{version}"
    s3.put_object(
        Bucket=info.staging_bucket,
        Key=f"{NAME}_{version}.tar.gz",
        Body=pack(echo_repo(NAME, version, failing_once(trigger))),
    )
    wait_for(at_status(registry, version, Status.AWAITING_APPROVAL), 180, f"{version} awaiting approval")
    policy = {
        "steps": [50, 100],
        "bake_seconds": 3600,
        "evaluation_interval_seconds": interval,
        "min_requests": MIN_REQUESTS,
    }
    headers = {"Authorization": f"Bearer {info.admin_token}", "Content-Type": "application/json"}
    status, _, body = call_api(
        info.api_url, "POST", f"/models/{NAME}/versions/{version}/rollout", headers, json.dumps(policy).encode()
    )
    if status != 202:
        raise BenchError(f"the rollout was refused ({status}): {body.decode()}")
    traffic = Traffic(info)
    try:

        def read_twice() -> Any:
            record = registry.find(NAME, version)
            run = record.promotion.rollout if record and record.promotion else None
            return run if run and run.last and run.last.outcome == "PASS" else None

        run = wait_for(read_twice, 240, "the gates to pass the healthy candidate")
        time.sleep(random.uniform(0, interval))  # the breach lands anywhere within an interval
        trigger.touch()
        wait_for(at_status(registry, version, Status.ROLLED_BACK), interval * 3 + 60, "the rollout's end")
        time.sleep(ROUTE_CACHE_S + 3)
    finally:
        traffic.stop()
    record = registry.get(NAME, version, with_history=True)
    ended = epoch(next(h.at for h in record.history if h.status is Status.ROLLED_BACK))
    window = epoch(str(run.step_started_at)) // 60 * 60
    breach = breach_at(traffic.answers, version, "1", window)
    if breach is None:
        raise BenchError("no breach in the traffic log")
    last = max(at for at, served, _ in traffic.answers if served == version)
    production_errors = sum(1 for _, served, status in traffic.answers if served == "1" and status != 200)
    return {
        "to_rolled_back": ended - breach,
        "to_last_candidate_answer": last - breach,
        "production_errors": production_errors,
        "reason_names_gate": float("error_rate gate failed" in record.reason),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=int, default=10, help="the rollout's evaluation interval (s)")
    args = parser.parse_args()
    return guarded("bench-rollout", lambda: run(args.rounds, args.interval))


def run(round_count: int, interval: int) -> int:
    try:
        return measure(round_count, interval)
    except TimedOut as exc:
        raise BenchError(str(exc)) from None


def measure(round_count: int, interval: int) -> int:
    goal = interval + ROUTE_CACHE_S
    rounds = []
    with tempfile.TemporaryDirectory() as folder, running_stack(Path(folder) / ".mmedeploy") as stack:
        info = stack.info
        session = boto3.session.Session(
            aws_access_key_id=info.aws_access_key_id,
            aws_secret_access_key=info.aws_secret_access_key,
            region_name=info.region,
        )
        s3 = session.client("s3", endpoint_url=info.aws_endpoint_url)
        registry = ModelRegistry(info.registry_table, session.client("dynamodb", endpoint_url=info.aws_endpoint_url))
        s3.put_object(Bucket=info.staging_bucket, Key=f"{NAME}_1.tar.gz", Body=pack(echo_repo(NAME, "1")))
        record = wait_for(at_status(registry, "1", Status.AWAITING_APPROVAL), 180, "1 awaiting approval")
        click(info, str(record.approval_id))
        wait_for(at_status(registry, "1", Status.PRODUCTION), 180, "1 in production")
        for index in range(round_count):
            figures = one_round(info, registry, s3, str(index + 2), interval, Path(folder))
            rounds.append(figures)
            ended, last = figures["to_rolled_back"], figures["to_last_candidate_answer"]
            print(
                f"round {index + 1}: breach -> ROLLED_BACK {ended:.1f} s, -> last request to the candidate "
                f"{last:.1f} s; production errors {figures['production_errors']:.0f}",
                flush=True,
            )
    to_end = statistics.median(r["to_rolled_back"] for r in rounds)
    to_last = max(r["to_last_candidate_answer"] for r in rounds)
    production_errors = sum(r["production_errors"] for r in rounds)
    print(
        f"evaluation interval {interval} s; goal: breach -> canary removed "
        f"<= interval + {ROUTE_CACHE_S:g} s = {goal:g} s"
    )
    print(f"breach -> ROLLED_BACK (the canary's route ends): median {to_end:.1f} s = {to_end / goal:.2f}x the goal")
    print(f"breach -> last request sent to the candidate: worst {to_last:.1f} s = {to_last / goal:.2f}x the goal")
    print(f"production answers that failed meanwhile: {production_errors:.0f}")
    ok = to_last <= goal and production_errors == 0 and all(r["reason_names_gate"] for r in rounds)
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
