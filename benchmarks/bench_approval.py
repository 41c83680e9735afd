"""Issue 6's figures: how fast the Slack webhook answers a click (Slack allows 3 s), and how long
an approval takes to serve in production (click -> PRODUCTION, split into the production warm-up
and everything else).

Each round stages a small echo model under a new version on a fresh local stack, then clicks
Approve with a signed interaction (as Slack would) and times the webhook's answer; a second click
times the already-decided answer. The click's start is the clock's zero for the promotion.

    .venv/bin/python benchmarks/bench_approval.py [--rounds 5]    (or: make bench-approval)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.adapters.registry import ModelRegistry  # noqa: E402
from chalicelib.domain.lifecycle import Status  # noqa: E402
from chalicelib.domain.records import ModelVersion  # noqa: E402
from testkit.slack import click  # noqa: E402
from testkit.stack_process import start_stack, stop_stack  # noqa: E402
from testkit.tarballs import echo_repo, pack  # noqa: E402

SLACK_BUDGET_S = 3.0


def wait(registry: ModelRegistry, name: str, version: str, statuses: set[Status], timeout: float = 120) -> ModelVersion:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = registry.find(name, version)
        if record and record.status in statuses:
            return record
        time.sleep(0.01)
    raise TimeoutError(f"{name} {version} did not reach {sorted(statuses)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / ".mmedeploy"
        info = start_stack(state)
        try:
            session = boto3.session.Session(
                aws_access_key_id=info.aws_access_key_id,
                aws_secret_access_key=info.aws_secret_access_key,
                region_name=info.region,
            )
            s3 = session.client("s3", endpoint_url=info.aws_endpoint_url)
            dynamodb = session.client("dynamodb", endpoint_url=info.aws_endpoint_url)
            registry = ModelRegistry(info.registry_table, dynamodb)
            acks: list[float] = []
            repeats: list[float] = []
            promotions: list[float] = []
            warms: list[float] = []
            for round_ in range(1, rounds + 1):
                version = str(round_)
                body = pack(echo_repo("bench", version))
                s3.put_object(Bucket=info.staging_bucket, Key=f"bench_{version}.tar.gz", Body=body)
                staged = wait(registry, "bench", version, {Status.AWAITING_APPROVAL})
                started = time.perf_counter()
                status, answer = click(info, str(staged.approval_id))
                acks.append(time.perf_counter() - started)
                assert (status, answer["outcome"]) == (200, "approved"), answer
                again = time.perf_counter()
                status, answer = click(info, str(staged.approval_id))
                repeats.append(time.perf_counter() - again)
                assert answer["outcome"] == "already_decided", answer
                served = wait(registry, "bench", version, {Status.PRODUCTION, Status.FAILED})
                promotions.append(time.perf_counter() - started)
                assert served.status is Status.PRODUCTION, served.reason
                warms.append(served.metrics["production_cold_load_ms"] / 1000)
                print(
                    f"round {round_}: webhook {acks[-1] * 1000:.0f} ms (repeat {repeats[-1] * 1000:.0f} ms), "
                    f"click -> PRODUCTION {promotions[-1]:.2f} s (production warm-up {warms[-1]:.2f} s)"
                )
        finally:
            stop_stack(state)
    ack = statistics.median(acks)
    print(
        f"\nwebhook answer p50 {ack * 1000:.0f} ms, max {max(acks) * 1000:.0f} ms "
        f"= {max(acks) / SLACK_BUDGET_S:.3f}x Slack's {SLACK_BUDGET_S:.0f} s; "
        f"already-decided p50 {statistics.median(repeats) * 1000:.0f} ms"
    )
    overhead = statistics.median(p - w for p, w in zip(promotions, warms, strict=True))
    print(
        f"click -> PRODUCTION p50 {statistics.median(promotions):.2f} s = production warm-up "
        f"{statistics.median(warms):.2f} s + orchestration {overhead:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
