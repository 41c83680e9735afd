"""``mmedeploy demo`` (``make demo``): the whole mission on the embedded local stack, step by step.

1. start the local stack detached (or use the one already running in the state directory)
2. package and validate ``examples/models/idcheck`` as the next free version of model ``idcheck``
3. push it and follow the pipeline live to AWAITING_APPROVAL
4. the Slack approval request, as the approver sees it (read from the local Slack sink)
5. approve it with a signed Slack interaction, follow it to PRODUCTION, the updated Slack message
6. the inference API through a Triton client: metadata, then the example's test cases
7. a broken ensemble pushed: REJECTED by the pipeline, with its findings
8. stop the stack it started (unless ``--keep``), and a summary of the steps

Each step is timed and says what it does (with the ``mmedeploy`` command that does the same by
hand). The demo exits 0 only if every step did what it should, otherwise 1 naming the failing
step; it stops the stack it started in both cases, and on Ctrl-C (130). Expected failures print a
line, not a traceback (``MMEDEPLOY_DEBUG=1`` adds it for unexpected ones).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from chalicelib.domain.lifecycle import Status
from chalicelib.domain.naming import ArtifactName
from chalicelib.domain.records import HistoryEntry, ModelVersion
from chalicelib.domain.validation.findings import Severity
from mmedeploy.local import DEFAULT_STATE_DIR
from mmedeploy.local.stack import StackInfo
from mmedeploy.packaging import InvalidPackage, package, write_tarball
from mmedeploy.project_files import project
from mmedeploy.registry_client import VersionSummary, find_approval, find_model, find_version
from mmedeploy.report_view import render_report
from mmedeploy.slack_view import message_panel
from mmedeploy.status_view import history_line, version_view
from mmedeploy.target import DeploymentTarget, local_stack_target

MODEL = "idcheck"
BROKEN_MODEL = "idcheck_broken"
# The typical mistake: an ensemble step maps an output its member does not have (LOGITS).
MISTAKE_FILE = "idcheck_pipeline/config.pbtxt"
GOOD_MAPPING = 'output_map { key: "LOGITS" value: "logits" }'
BROKEN_MAPPING = 'output_map { key: "LOGIT" value: "logits" }'

WAIT_S = 180.0  # for the pipeline, the promotion, a Slack message
SLACK_WAIT_S = 30.0
POLL_S = 0.25
ROUTE_CACHE_WAIT_S = 15.0  # the API sees a promotion within its route cache's TTL (5 s)
SLACK_WIDTH = 96


class StepFailed(Exception):
    """A step did not do what it should; the message says what happened instead."""


@dataclass
class StepResult:
    number: int
    title: str
    seconds: float
    outcome: str  # ok | failed | interrupted | skipped
    note: str = ""


# -- small helpers -----------------------------------------------------------------------------------
def epoch(at: str) -> float:
    """A registry timestamp (``2026-01-01T08:40:31.969Z``) as seconds since the epoch."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


class ApiRegistry:
    """The registry as the demo reads it: through the API's registry routes with the invoke token
    (:mod:`mmedeploy.registry_client`), as every command does."""

    def __init__(self, target: DeploymentTarget) -> None:
        self._target = target

    def versions(self, name: str) -> list[VersionSummary]:
        listing = find_model(self._target, name)
        return listing.versions if listing is not None else []

    def find(self, name: str, version: str, with_history: bool = True) -> ModelVersion | None:
        return find_version(self._target, name, version)  # the API answers with the history


def next_version(registry: ApiRegistry, name: str) -> str:
    """One more than the highest major version registered for ``name``: ``1`` for a new model."""
    majors = [int(head) for r in registry.versions(name) if (head := r.version.split(".")[0]).isdigit()]
    return str(max(majors, default=0) + 1)


def slack_calls(slack_url: str) -> list[dict[str, Any]]:
    """What the local Slack sink recorded (Web API calls and response_url posts), oldest first."""
    with urllib.request.urlopen(f"{slack_url.rstrip('/')}/_messages", timeout=5) as response:
        calls: list[dict[str, Any]] = json.load(response)
    return calls


def break_ensemble(source: Path, destination: Path) -> None:
    """A copy of the example with the typical mistake; StepFailed if the example no longer has the
    mapping this edits (so the demo never pushes an unbroken copy as "broken")."""
    shutil.copytree(source, destination)
    config = destination / MISTAKE_FILE
    text = config.read_text()
    if GOOD_MAPPING not in text:
        raise StepFailed(f"{MISTAKE_FILE} of the example has no '{GOOD_MAPPING}' to break")
    config.write_text(text.replace(GOOD_MAPPING, BROKEN_MAPPING, 1))


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Stopping the stack is not interrupted by a second Ctrl-C."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Demo:
    def __init__(self, console: Console, state_dir: Path, port_base: int, keep: bool) -> None:
        self.console = console
        self.state_dir = state_dir
        self.port_base = port_base
        self.keep = keep
        self.started = False  # this run started the stack (and stops it unless --keep)
        self.workdir = Path(tempfile.mkdtemp(prefix="mmedeploy-demo-"))
        self.results: list[StepResult] = []
        self._target: DeploymentTarget | None = None
        self._registry: ApiRegistry | None = None
        self.version = ""  # of idcheck, chosen in step 2
        self.example = project().examples / MODEL  # its generated parts are made in step 2 if missing
        self.tarball: Path | None = None
        self.approval_post: dict[str, Any] | None = None

    # -- what the steps share ------------------------------------------------------------------------
    @property
    def target(self) -> DeploymentTarget:
        if self._target is None:
            raise StepFailed("no local stack: step 1 did not start one")
        return self._target

    @property
    def registry(self) -> ApiRegistry:
        if self._registry is None:
            self._registry = ApiRegistry(self.target)
        return self._registry

    @property
    def option(self) -> str:
        """``--state-dir DIR`` where the commands shown need it."""
        return "" if self.state_dir == DEFAULT_STATE_DIR else f" --state-dir {self.state_dir}"

    def say(self, line: str, style: str = "") -> None:
        self.console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)

    def command(self, line: str, why: str = "") -> None:
        """The ``mmedeploy`` command that does the same by hand."""
        text = Text("$ ", style="dim")
        text.append(line, style="bold")
        if why:
            text.append(f"   # {why}", style="dim")
        self.console.print(text, soft_wrap=True)

    def spinner(self, what: str) -> Any:
        return self.console.status(what) if self.console.is_terminal else nullcontext()

    # -- the runner ------------------------------------------------------------------------------------
    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("Start the local stack", self.start_stack),
            ("Package and validate the example ensemble", self.package_example),
            ("Push it: the pipeline validates, warms and asks for approval", self.push_example),
            ("The approval request in Slack", self.show_approval_request),
            ("Approve it in Slack: promotion to production", self.approve),
            ("Call the inference API with a Triton client", self.infer),
            ("Push a broken model: rejected with a report", self.push_broken),
        ]

    def run(self) -> int:
        steps = self.steps()
        total = len(steps) + 1  # and stopping (or keeping) the stack
        try:
            for number, (title, action) in enumerate(steps, 1):
                if not self.run_step(number, total, title, action):
                    break
            for number, (title, _) in enumerate(steps[len(self.results) :], len(self.results) + 1):
                self.results.append(StepResult(number, title, 0.0, "skipped"))
        except KeyboardInterrupt:  # between steps
            self.results.append(StepResult(len(self.results) + 1, "(between steps)", 0.0, "interrupted", "Ctrl-C"))
        finally:
            interrupted = any(r.outcome == "interrupted" for r in self.results)
            self.run_step(total, total, self.last_title(interrupted), lambda: self.finish(interrupted))
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.summary()
        if interrupted:
            return 130
        return 0 if all(r.outcome == "ok" for r in self.results) else 1

    def run_step(self, number: int, total: int, title: str, action: Callable[[], None]) -> bool:
        """Run one step, timed; False if it failed or was interrupted (the message is printed)."""
        self.console.print()
        self.console.print(Rule(f"[bold]step {number}/{total}[/]  {title}", align="left", style="cyan"))
        started = time.monotonic()
        outcome, note = "ok", ""
        try:
            action()
        except StepFailed as exc:
            outcome, note = "failed", str(exc)
        except KeyboardInterrupt:
            outcome, note = "interrupted", "Ctrl-C"
        except Exception as exc:  # noqa: BLE001 - one line, the stack still gets stopped
            if os.environ.get("MMEDEPLOY_DEBUG"):
                self.console.print_exception()
            outcome, note = "failed", f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        self.results.append(StepResult(number, title, seconds, outcome, note))
        if outcome == "ok":
            self.console.print(Text(f"✔ done in {seconds:.1f} s", style="green"))
        else:
            line = Text(f"✘ {outcome} after {seconds:.1f} s: ", style="bold red")
            line.append(note, style="red")
            self.console.print(line, soft_wrap=True)
        return outcome == "ok"

    # -- step 1 --------------------------------------------------------------------------------------
    def start_stack(self) -> None:
        from mmedeploy.local import control
        from mmedeploy.local.stack import StackConfig, read_stack

        running = read_stack(self.state_dir)
        if running is not None:
            self.say(
                f"a local stack is already running in {self.state_dir} (pid {running.pid}): the demo uses it "
                "and leaves it running"
            )
        else:
            self.command(
                f"mmedeploy up --detach --port-base {self.port_base}{self.option}",
                "AWS emulator, API, Slack sink, MME (a real Triton)",
            )
            config = StackConfig(port_base=self.port_base, state_dir=self.state_dir)
            told: list[str] = []
            try:
                with self.spinner("starting the local stack ..."):
                    control.up_detached(config, told.append)
            except control.StackError as exc:
                raise StepFailed(str(exc)) from None
            except KeyboardInterrupt:
                self.adopt_starting_stack()
                raise
            self.started = True
            self.say(told[0] if told else "local stack ready")
        self._target = local_stack_target(self.state_dir)
        info = read_stack(self.state_dir)
        if info is not None:
            self.show_urls(info)

    def adopt_starting_stack(self) -> None:
        """Ctrl-C while the detached stack was starting: wait for it (up to its ready timeout) so
        that it is stopped with the rest rather than left running."""
        from mmedeploy.local import control
        from mmedeploy.local.stack import read_stack

        self.say("interrupted while the stack was starting: waiting for it so that it can be stopped ...")
        with sigint_ignored():
            deadline = time.monotonic() + control.READY_TIMEOUT_S
            while time.monotonic() < deadline:
                if read_stack(self.state_dir) is not None:
                    self.started = True
                    return
                time.sleep(0.2)

    def show_urls(self, info: StackInfo) -> None:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("API", f"{info.api_url}   (inference, admin, Slack webhook)")
        grid.add_row("AWS emulator", f"{info.aws_endpoint_url}   (S3, DynamoDB, Step Functions, ...)")
        grid.add_row("Slack sink", f"{info.slack_url}   (GET /_messages)")
        grid.add_row("MME", f"{info.mme_url}   (staging and production endpoints)")
        grid.add_row("state", f"{self.state_dir}   (stack.json, stack.log)")
        self.console.print(grid)

    # -- step 2 --------------------------------------------------------------------------------------
    def package_example(self) -> None:
        try:
            self.example = project().built_examples() / MODEL
        except ImportError as exc:
            raise StepFailed(
                f"the example's model cannot be generated without {exc.name}: install mmedeploy[local]"
            ) from None
        earlier = [r.version for r in self.registry.versions(MODEL)]
        self.version = next_version(self.registry, MODEL)
        if earlier:
            self.say(f"the registry already holds {MODEL} {', '.join(earlier)}: this is version {self.version}")
        example = project().shown(self.example)
        self.command(
            f"mmedeploy package {example} --name {MODEL} --version {self.version} -o {self.workdir}",
            "validates, then writes",
        )
        try:
            result = package(self.example, MODEL, self.version, self.workdir)
        except InvalidPackage as exc:
            render_report(exc.report, f"{MODEL}_{self.version}.tar.gz", self.console)
            raise StepFailed(f"the example ensemble did not validate: {exc}") from None
        render_report(result.report, result.path.name, self.console)
        self.tarball = result.path

    # -- step 3 --------------------------------------------------------------------------------------
    def push(self, path: Path) -> float:
        """Upload ``path`` (with a progress bar on a terminal); the wall-clock time it began."""
        from mmedeploy.push import push_tarball, upload_progress

        self.command(f"mmedeploy push {path}{self.option}", "into the staging bucket: the pipeline starts")
        began, clock = time.time(), time.monotonic()
        with upload_progress(self.console, path.name, path.stat().st_size, show=self.console.is_terminal) as progress:
            result = push_tarball(self.target, path, progress)
        self.say(f"pushed {path.name} ({result.size:,} B) to {result.uri} in {time.monotonic() - clock:.2f} s")
        return began

    def follow(self, name: str, version: str, since: float, what: str = "the push") -> ModelVersion:
        """Follow the version until it settles, printing each status change as it is recorded:
        seconds since ``since`` (by the registry's timestamps), status, actor, reason."""
        from mmedeploy.follow import HistoryFeed, watch_version

        self.command(f"mmedeploy status {name} {version} --watch{self.option}", f"seconds since {what}")
        feed = HistoryFeed(self.console, lambda entry, elapsed: self.history_line(entry, since))
        status = self.spinner(f"waiting for {name} {version} ...")

        def fetch() -> ModelVersion | None:
            return self.registry.find(name, version, with_history=True)

        def show(record: ModelVersion | None, elapsed: float) -> None:
            feed(record, elapsed)
            if hasattr(status, "update"):
                now = record.status.value if record else "not registered yet"
                status.update(f"{name} {version} is {now}: {elapsed:.0f} s of {WAIT_S:.0f} s")

        with status:
            result = watch_version(fetch, show, POLL_S, WAIT_S)
        if result.record is None:
            raise StepFailed(f"{name} {version} was not registered within {WAIT_S:.0f} s; see {self.stack_log}")
        if result.timed_out:
            raise StepFailed(f"{name} {version} is still {result.record.status.value} after {WAIT_S:.0f} s")
        return result.record

    @staticmethod
    def history_line(entry: HistoryEntry, since: float) -> Text:
        """A status change, seconds after ``since`` by the registry's timestamp."""
        return history_line(entry, lead=f"{f'+{epoch(entry.at) - since:.2f}':>9} s  ", at=False, status_width=17)

    @property
    def stack_log(self) -> Path:
        return self.state_dir / "stack.log"

    def push_example(self) -> None:
        if self.tarball is None:
            raise StepFailed("nothing to push: step 2 wrote no tarball")
        pushed = self.push(self.tarball)
        record = self.follow(MODEL, self.version, pushed)
        if record.status is not Status.AWAITING_APPROVAL:
            raise StepFailed(f"{MODEL} {self.version} is {record.status.value}, not AWAITING_APPROVAL: {record.reason}")
        took = epoch(record.history[-1].at) - pushed if record.history else 0.0
        self.say(f"{MODEL} {self.version} waits for approval {took:.1f} s after the push", "bold")

    # -- step 4 --------------------------------------------------------------------------------------
    def wait_for_slack(self, matches: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The latest call the Slack sink recorded that ``matches``, waiting up to SLACK_WAIT_S."""
        slack_url = self.target.slack_url
        if not slack_url:
            raise StepFailed(f"{self.target.description} has no Slack sink to read")
        deadline = time.monotonic() + SLACK_WAIT_S
        while True:
            found = [call for call in slack_calls(slack_url) if matches(call)]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise StepFailed(f"the Slack sink recorded no {what} within {SLACK_WAIT_S:.0f} s")
            time.sleep(POLL_S)

    def slack_panel(self, call: dict[str, Any], caption: str) -> None:
        payload = call.get("payload") or {}
        title = f"Slack · {payload.get('channel', '?')} · {call.get('method')} · {caption}"
        self.console.print(message_panel(payload, title, width=min(self.console.width, SLACK_WIDTH)))

    def show_approval_request(self) -> None:
        record = self.registry.find(MODEL, self.version)
        if record is None or not record.approval_id:
            raise StepFailed(f"{MODEL} {self.version} has no approval request")
        approval_id = record.approval_id
        self.command(f"curl -s {self.target.slack_url}/_messages", "every call Slack got, recorded by the sink")
        post = self.wait_for_slack(
            lambda call: call.get("method") == "chat.postMessage" and approval_id in json.dumps(call.get("payload")),
            f"approval request for {MODEL} {self.version}",
        )
        self.slack_panel(post, "what the approver sees")
        buttons = [
            element.get("action_id")
            for block in post["payload"].get("blocks", [])
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]
        if "approve" not in buttons:
            raise StepFailed("the approval request has no Approve button")
        self.approval_post = post

    # -- step 5 --------------------------------------------------------------------------------------
    def approve(self) -> None:
        from chalicelib.domain.approvals import Decision
        from mmedeploy.decision import decided, default_user, send_decision
        from mmedeploy.follow import HistoryFeed, PromotionEnding, follow_promotion

        record = self.registry.find(MODEL, self.version)
        if record is None or not record.approval_id:
            raise StepFailed(f"{MODEL} {self.version} has no approval request")
        approval = find_approval(self.target, MODEL, self.version)
        user = default_user(self.target)
        if not user:
            raise StepFailed(f"{self.target.description} names no Slack approver")
        self.command(
            f"mmedeploy approve {MODEL} {self.version}{self.option}", f"the Approve click, as Slack user {user}"
        )
        clicked, clock = time.time(), time.monotonic()
        answer = send_decision(self.target, record, Decision.APPROVE, user, approval)
        answered_ms = (time.monotonic() - clock) * 1000
        if not decided(answer):
            raise StepFailed(f"the webhook did not approve it (HTTP {answer.http_status}): {answer.error}")
        self.say(f"the webhook answered HTTP {answer.http_status} in {answered_ms:.0f} ms (Slack allows 3 s):")
        self.say(f"  {answer.document.get('text') or answer.error}", "bold")

        self.say("the promotion, as the registry records it (seconds since the click):")
        feed = HistoryFeed(
            self.console, lambda entry, elapsed: self.history_line(entry, clicked), after=record.revision
        )

        def fetch() -> ModelVersion | None:
            return self.registry.find(MODEL, self.version, with_history=True)

        with self.spinner(f"waiting for {MODEL} {self.version} to reach PRODUCTION ..."):
            result = follow_promotion(fetch, feed, record.revision, interval=POLL_S, timeout=WAIT_S)
        final = result.record
        if result.outcome is not PromotionEnding.PRODUCTION or final is None:
            now = f"{final.status.value}: {final.reason}" if final else "not found"
            raise StepFailed(f"{MODEL} {self.version} did not reach PRODUCTION within {WAIT_S:.0f} s ({now})")
        took = epoch(final.history[-1].at) - clicked if final.history else result.elapsed
        self.say(f"{MODEL} {self.version} is PRODUCTION {took:.1f} s after the click", "bold green")
        self.show_updated_message()

    def show_updated_message(self) -> None:
        post = self.approval_post
        if post is None:
            raise StepFailed("no approval request was shown to update")
        ts, fallback = post.get("ts"), f"{MODEL} {self.version} is PRODUCTION"
        update = self.wait_for_slack(
            lambda call: (
                call.get("method") == "chat.update"
                and (call.get("payload") or {}).get("ts") == ts
                and (call.get("payload") or {}).get("text") == fallback
            ),
            f"chat.update of the approval message to PRODUCTION ({MODEL} {self.version})",
        )
        self.slack_panel(update, "the same message, updated: no buttons any more")
        announced = f"{MODEL} {self.version} serves in production"
        try:
            promoted = self.wait_for_slack(
                lambda call: (
                    call.get("method") == "chat.postMessage" and (call.get("payload") or {}).get("text") == announced
                ),
                "promotion announcement",
            )
        except StepFailed as exc:
            self.say(str(exc), "yellow")
        else:
            self.slack_panel(promoted, "the channel is told")

    # -- step 6 --------------------------------------------------------------------------------------
    def infer(self) -> None:
        import numpy as np
        import tritonclient.http as triton
        from tritonclient.utils import InferenceServerException, triton_to_np_dtype

        api_url, token = self.target.api_url, self.target.api_token
        if not api_url or not token:
            raise StepFailed(f"{self.target.description} has no API URL or invoke token")
        headers = {"Authorization": f"Bearer {token}"}
        url = api_url.removeprefix("http://")
        self.say(f"tritonclient.http.InferenceServerClient(url={url!r}) with 'Authorization: Bearer <api_token>'")
        client = triton.InferenceServerClient(url=url, network_timeout=60)
        try:
            metadata = client.get_model_metadata(MODEL, headers=headers)
            self.say(
                f"get_model_metadata({MODEL!r}): platform {metadata.get('platform')}, "
                f"versions {', '.join(metadata.get('versions', []))}"
            )
            for kind in ("inputs", "outputs"):
                for tensor in metadata.get(kind, []):
                    self.say(f"  {kind[:-1]:6} {tensor['name']:14} {tensor['datatype']:5} {tensor['shape']}")
            for case_file in sorted((self.example / "tests").glob("*.json")):
                case = json.loads(case_file.read_text())
                inputs = []
                for spec in case["inputs"]:
                    tensor = triton.InferInput(spec["name"], spec["shape"], spec["datatype"])
                    data = np.array(spec["data"], dtype=triton_to_np_dtype(spec["datatype"])).reshape(spec["shape"])
                    tensor.set_data_from_numpy(data, binary_data=True)
                    inputs.append(tensor)
                outputs = [triton.InferRequestedOutput(o["name"], binary_data=True) for o in case["outputs"]]
                self.infer_case(client, case_file.stem, case, inputs, outputs, headers)
        except InferenceServerException as exc:
            raise StepFailed(f"the API refused: {exc}") from None
        finally:
            client.close()

    def infer_case(
        self,
        client: Any,
        name: str,
        case: dict[str, Any],
        inputs: list[Any],
        outputs: list[Any],
        headers: dict[str, str],
    ) -> None:
        """One test case: infer (again while the API's route cache still names an older version),
        print the outputs and who served, and compare DECISION with the case's."""
        deadline = time.monotonic() + ROUTE_CACHE_WAIT_S
        while True:
            clock = time.monotonic()
            result = client.infer(MODEL, inputs, outputs=outputs, headers=headers)
            took_ms = (time.monotonic() - clock) * 1000
            served = str(result.get_response().get("model_version"))
            if served == self.version or time.monotonic() > deadline:
                break
            self.say(f"  served by version {served}: the API's route cache has not seen the promotion yet", "dim")
            time.sleep(1.0)
        probabilities = [round(float(p), 3) for p in result.as_numpy("PROBABILITIES").ravel()]
        decisions = [d.decode() if isinstance(d, bytes) else str(d) for d in result.as_numpy("DECISION").ravel()]
        expected = next(o["data"] for o in case["outputs"] if o["name"] == "DECISION")
        line = Text(f"  tests/{name}.json  ")
        line.append(f"PROBABILITIES {probabilities}  DECISION {', '.join(decisions)}", style="bold")
        line.append(f"  (expected {', '.join(expected)}; served by {MODEL} {served}, {took_ms:.0f} ms)", style="dim")
        self.console.print(line, soft_wrap=True)
        if decisions != expected:
            raise StepFailed(f"tests/{name}.json: DECISION {decisions}, expected {expected}")
        if served != self.version:
            raise StepFailed(f"tests/{name}.json was served by version {served}, not {self.version}")

    # -- step 7 --------------------------------------------------------------------------------------
    def push_broken(self) -> None:
        version = next_version(self.registry, BROKEN_MODEL)
        source = self.workdir / "broken" / MODEL
        break_ensemble(self.example, source)
        self.say(f"a copy of the example with a typical mistake in {MISTAKE_FILE} (step idcheck_inferencer):")
        self.say(f"  - {GOOD_MAPPING}", "green")
        self.say(f"  + {BROKEN_MAPPING}   # the member's output is LOGITS", "red")
        artifact = ArtifactName.build(BROKEN_MODEL, version)
        tarball = self.workdir / artifact.filename
        write_tarball(source, artifact, tarball)
        self.say(
            f"written as {artifact.filename} without validating ('mmedeploy package' would refuse it): "
            "the pipeline must catch it"
        )
        pushed = self.push(tarball)
        record = self.follow(BROKEN_MODEL, version, pushed)
        if record.status is not Status.REJECTED:
            raise StepFailed(f"{BROKEN_MODEL} {version} is {record.status.value}, not REJECTED: {record.reason}")
        errors = sorted({f.code.value for f in record.findings if f.severity is Severity.ERROR})
        if not errors:
            raise StepFailed(f"{BROKEN_MODEL} {version} was REJECTED without an error finding: {record.reason}")
        self.command(f"mmedeploy status {BROKEN_MODEL} {version}{self.option}", "the rejection report")
        self.console.print(version_view(record))
        self.say(f"rejected by validation with {', '.join(errors)}: nothing was staged", "bold")
        try:
            told = self.wait_for_slack(
                lambda call: (call.get("payload") or {}).get("text") == f"{BROKEN_MODEL} {version} is REJECTED",
                "rejection notice",
            )
        except StepFailed as exc:
            self.say(str(exc), "yellow")
        else:
            self.slack_panel(told, "the channel is told")

    # -- step 8 --------------------------------------------------------------------------------------
    def last_title(self, interrupted: bool) -> str:
        if self._target is None and not self.started:
            return "Nothing to stop"
        if not self.started:
            return "Leave the running stack running"
        if self.keep and not interrupted:
            return "Keep the local stack (--keep)"
        return "Stop the local stack"

    def finish(self, interrupted: bool) -> None:
        from mmedeploy.local import control

        if not self.started:
            if self._target is None:
                self.say("no stack was started")
            else:
                self.say(
                    f"the stack was running before the demo: it keeps running (stop it: mmedeploy down{self.option})"
                )
            return
        if self.keep and not interrupted:
            self.say(f"kept running (--keep); stop it with: mmedeploy down{self.option}")
            return
        self.command(f"mmedeploy down{self.option}", "saves its state for the next start, stops both Tritons")
        with sigint_ignored(), self.spinner("stopping the local stack ..."):
            try:
                control.down(self.state_dir, self.say)
            except control.StackError as exc:
                raise StepFailed(str(exc)) from None

    def summary(self) -> None:
        table = Table(title="demo summary", title_justify="left", header_style="bold")
        table.add_column("step", justify="right")
        table.add_column("what")
        table.add_column("time", justify="right")
        table.add_column("result")
        styles = {"ok": "green", "failed": "bold red", "interrupted": "bold yellow", "skipped": "dim"}
        for r in self.results:
            seconds = f"{r.seconds:.1f} s" if r.outcome != "skipped" else "-"
            table.add_row(str(r.number), r.title, seconds, Text(r.outcome, style=styles.get(r.outcome, "")))
        self.console.print()
        self.console.print(table)
        total = sum(r.seconds for r in self.results)
        failed = next((r for r in self.results if r.outcome in ("failed", "interrupted")), None)
        if failed is None:
            self.console.print(Text(f"demo finished: every step did what it should ({total:.1f} s)", "bold green"))
            if (self.keep and self.started) or (not self.started and self._target is not None):
                self.explore()
            return
        line = Text(f"demo {failed.outcome} at step {failed.number} ({failed.title})", style="bold red")
        if failed.note:
            line.append(f": {failed.note}", style="red")
        self.console.print(line, soft_wrap=True)
        if self.started and self.keep and failed.outcome == "failed":
            self.say(f"the stack keeps running (--keep) to look into it: mmedeploy status {MODEL}{self.option}")

    def explore(self) -> None:
        target = self.target
        self.say("explore next (the stack keeps running):", "bold")
        for line in (
            f"mmedeploy status {MODEL}{self.option}",
            f"mmedeploy status {MODEL} {self.version}{self.option}",
            f"mmedeploy invoke {MODEL} --data {project().shown(self.example / 'tests' / 'approved.json')}{self.option}",
            f"curl -s -H 'Authorization: Bearer {target.api_token}' {target.api_url}/v2/models/{MODEL}",
            f"curl -s {target.slack_url}/_messages",
            f"mmedeploy down{self.option}",
        ):
            self.say(f"  {line}")
