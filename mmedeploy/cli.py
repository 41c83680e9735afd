"""The ``mmedeploy`` command line. Exit codes: 0 ok/valid, 1 invalid, 2 usage or I/O error
(``status``, ``approve``/``reject``, ``promote``/``rollback`` add 3: no such model or version;
``invoke``, ``canary`` and ``models`` answer 1 for every refusal of the API, a 404 included).

No command prints a traceback: expected failures print what to do; anything unexpected prints
one line asking for a bug report (with ``MMEDEPLOY_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from chalicelib.naming import InvalidArtifactName
from chalicelib.validation.findings import Code
from chalicelib.validation.validator import validate_tarball
from mmedeploy import __version__
from mmedeploy.local import (
    DEFAULT_APPROVAL_TIMEOUT_S,
    DEFAULT_LAMBDA_CONCURRENCY,
    DEFAULT_MME_LOAD_WAIT_S,
    DEFAULT_MME_MEMORY_MB,
    DEFAULT_PORT_BASE,
)
from mmedeploy.packaging import InvalidPackage, PackagingError, package
from mmedeploy.report_view import render_report

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"mmedeploy: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmedeploy", description="Deploy Triton models to SageMaker multi-model endpoints.")
    parser.add_argument("--version", action="version", version=f"mmedeploy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="validate a model tarball without extracting it")
    validate.add_argument("tarball", type=Path)
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(handler=cmd_validate)

    pkg = commands.add_parser("package", help="package a Triton model repository as NAME_VERSION.tar.gz")
    pkg.add_argument("source", type=Path, metavar="SRC_DIR")
    pkg.add_argument("--name", required=True)
    pkg.add_argument("--version", required=True)
    pkg.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR")
    pkg.add_argument("--json", action="store_true", help="print the validation report as JSON")
    pkg.set_defaults(handler=cmd_package)

    up = commands.add_parser("up", help="start the local stack (AWS emulator, API, Slack sink)")
    up.add_argument("--detach", action="store_true", help="run in the background and return when ready")
    up.add_argument("--fresh", action="store_true", help="wipe the state kept from earlier runs")
    up.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, help="first of 4 consecutive ports")
    up.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="where stack.json and state live")
    up.add_argument(
        "--mme-memory-mb",
        type=int,
        default=DEFAULT_MME_MEMORY_MB,
        metavar="MB",
        help="memory each local endpoint may fill with models before it unloads the least recently used",
    )
    up.add_argument(
        "--mme-load-wait",
        type=float,
        default=DEFAULT_MME_LOAD_WAIT_S,
        metavar="SECONDS",
        help="how long an invocation waits for a loading model before ModelNotReadyException",
    )
    up.add_argument(
        "--approval-timeout",
        type=int,
        default=DEFAULT_APPROVAL_TIMEOUT_S,
        metavar="SECONDS",
        help="how long a staged version waits for a Slack decision before it is EXPIRED",
    )
    up.add_argument(
        "--lambda-concurrency",
        type=int,
        default=DEFAULT_LAMBDA_CONCURRENCY,
        metavar="N",
        help="execution environments (processes) each function may have at once",
    )
    up.add_argument(
        "--package-dir",
        type=Path,
        metavar="DIR",
        help="run this package (sam.yaml and its zips, from make package) instead of building build/dev",
    )
    up.set_defaults(handler=cmd_up)

    down = commands.add_parser("down", help="stop the local stack")
    down.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"))
    down.set_defaults(handler=cmd_down)

    _add_push(commands)
    _add_status(commands)
    _add_demo(commands)
    _add_decisions(commands)
    _add_admin(commands)
    _add_serving(commands)
    _add_logs(commands)
    return parser


def cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    path: Path = args.tarball
    if path.is_dir():
        err.print(f"mmedeploy: {path} is a directory; to check a source folder run 'mmedeploy package' on it")
        return EXIT_USAGE
    try:
        with open(path, "rb") as handle:
            report = validate_tarball(handle, path.name)
    except OSError as exc:  # opening failed: missing file, permissions
        err.print(f"mmedeploy: cannot read {path}: {exc.strerror or exc}")
        return EXIT_USAGE
    if any(f.code is Code.ARCHIVE_READ_ERROR for f in report.findings):
        err.print(f"mmedeploy: reading {path} failed: {report.errors[0].message}")
        return EXIT_USAGE
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        render_report(report, path.name, out)
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_package(args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        result = package(args.source, args.name, args.version, args.output_dir)
    except InvalidPackage as exc:
        if args.json:
            print(exc.report.model_dump_json(indent=2))
        else:
            render_report(exc.report, f"{args.name}_{args.version}.tar.gz", out)
        err.print(f"mmedeploy: not written: {exc}")
        return EXIT_INVALID
    except (PackagingError, InvalidArtifactName) as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_USAGE
    if args.json:
        print(result.report.model_dump_json(indent=2))
    else:
        render_report(result.report, result.path.name, out)
        out.print(f"wrote {result.path}")
    return EXIT_OK


def _say(line: str) -> None:
    # plain, unwrapped lines: URLs and paths must stay copyable
    print(line, flush=True)


def cmd_up(args: argparse.Namespace, out: Console, err: Console) -> int:
    from pydantic import ValidationError

    from mmedeploy.local import control
    from mmedeploy.local.stack import StackConfig

    try:
        config = StackConfig(
            port_base=args.port_base,
            state_dir=args.state_dir,
            fresh=args.fresh,
            mme_memory_mb=args.mme_memory_mb,
            mme_load_wait_s=args.mme_load_wait,
            approval_timeout_s=args.approval_timeout,
            lambda_concurrency=args.lambda_concurrency,
            package_dir=args.package_dir,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err.print(f"mmedeploy up: {problems}")
        return EXIT_USAGE
    try:
        if args.detach:
            return control.up_detached(config, _say)
        return control.up_foreground(config, _say)
    except control.StackError as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_INVALID


def cmd_down(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.local import control

    try:
        return control.down(args.state_dir, _say)
    except control.StackError as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_INVALID


# -- demo: the whole mission on the local stack ----------------------------------------------------
DEMO_EPILOG = """\
Starts the local stack detached (or uses the one running in --state-dir), packages and pushes the
example ensemble (examples/models/idcheck) as the next free version of model idcheck, follows the
pipeline to AWAITING_APPROVAL, shows the Slack approval request, approves it with a signed Slack
interaction, follows it to PRODUCTION, calls the inference API with a Triton client, pushes a
broken copy and shows its rejection report. Then it stops the stack it started, unless --keep
(a stack that was already running keeps running). Ctrl-C stops the stack it started.

exit codes: 0 every step did what it should, 1 a step did not (it is named), 2 usage error,
130 interrupted
"""


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="the whole flow on the local stack: package, push, approve, serve, reject (make demo)",
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--keep", action="store_true", help="leave the stack running afterwards, to explore")
    demo.add_argument(
        "--port-base", type=int, default=DEFAULT_PORT_BASE, help="first of 4 consecutive ports for a new stack"
    )
    demo.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="where stack.json and state live")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.demo import Demo

    if not 1 <= args.port_base <= 65535 - 3:
        _fail(err, f"mmedeploy demo: --port-base {args.port_base} leaves no room for 4 ports (1 to 65532)")
        return EXIT_USAGE
    return Demo(out, args.state_dir, args.port_base, args.keep).run()


# -- push / status: the deployment pipeline seen from a person's machine ---------------------------
PUSH_EPILOG = """\
The object key is the file name, which must follow <model_name>_<model_version>.tar.gz; the
upload starts the deployment pipeline (validation, staging warm-up, approval).

exit codes: 0 uploaded, 2 usage or I/O error (missing or misnamed file, no local stack, upload failed)
"""

STATUS_EPILOG = """\
exit codes:
  0  found (with --watch: settled in AWAITING_APPROVAL, APPROVED, PRODUCTION or RETIRED)
  1  with --watch: settled in REJECTED, FAILED, EXPIRED or DECLINED, or --timeout reached
  2  usage or I/O error (no local stack, registry unreadable)
  3  no such model or version (--watch waits for a version not registered yet instead)
"""


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def _add_push(commands: Any) -> None:
    push = commands.add_parser(
        "push",
        help="upload a model tarball to the staging bucket, which starts its deployment",
        epilog=PUSH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push.add_argument("tarball", type=Path, metavar="TARBALL", help="NAME_VERSION.tar.gz (see 'mmedeploy package')")
    push.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory")
    push.add_argument(
        "--json", action="store_true", help='print {"bucket", "key", "etag", "version_id", "size"}, no progress bar'
    )
    push.set_defaults(handler=cmd_push)


def _add_status(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="show a model's versions, or one version's status, evidence and history",
        epilog=STATUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("name", metavar="NAME")
    status.add_argument("version", metavar="VERSION", nargs="?", help="omit to list the model's versions")
    status.add_argument("--json", action="store_true", help="print JSON (with --watch: only the final state)")
    status.add_argument("--watch", action="store_true", help="follow VERSION live until it settles (needs VERSION)")
    status.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory")
    status.add_argument(
        "--interval", type=_positive_seconds, default=1.0, metavar="S", help="seconds between reads with --watch (1)"
    )
    status.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=600.0,
        metavar="S",
        help="give up watching after this many seconds, exit 1 (600)",
    )
    status.set_defaults(handler=cmd_status)


def _fail(err: Console, message: str) -> None:
    # no markup (messages quote options like [--state-dir DIR]), no inserted line breaks
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _state_dir_option(state_dir: Path) -> str:
    return "" if state_dir == Path(".mmedeploy") else f" --state-dir {state_dir}"


def _aws_errors() -> tuple[type[Exception], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (Boto3Error, BotoCoreError, ClientError)


def cmd_push(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.push import PushError, check_tarball, push_tarball, upload_progress
    from mmedeploy.target import TargetUnavailable, resolve_target

    path: Path = args.tarball
    try:
        artifact = check_tarball(path)
        target = resolve_target(args.state_dir)
        size = path.stat().st_size
    except (PushError, TargetUnavailable) as exc:
        _fail(err, f"mmedeploy push: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        _fail(err, f"mmedeploy push: cannot read {path}: {exc.strerror or exc}")
        return EXIT_USAGE
    destination = f"s3://{target.staging_bucket}/{artifact.filename}"
    try:
        with upload_progress(out, path.name, size, show=out.is_terminal and not args.json) as progress:
            result = push_tarball(target, path, progress)
    except _aws_errors() as exc:
        _fail(err, f"mmedeploy push: uploading to {destination} on {target.description} failed: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        _fail(err, f"mmedeploy push: cannot read {path}: {exc.strerror or exc}")
        return EXIT_USAGE
    if args.json:
        print(result.model_dump_json(indent=2))
        return EXIT_OK
    _say(f"pushed {path.name} ({result.size:,} B) to {result.uri}")
    _say(f"  etag {result.etag}   version id {result.version_id or '-'}")
    _say(f"follow it: mmedeploy status {artifact.name} {artifact.version} --watch{_state_dir_option(args.state_dir)}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.target import TargetUnavailable, resolve_target

    if args.watch and args.version is None:
        _fail(err, "mmedeploy status: --watch follows one version: give NAME VERSION")
        return EXIT_USAGE
    try:
        target = resolve_target(args.state_dir)
    except TargetUnavailable as exc:
        _fail(err, f"mmedeploy status: {exc}")
        return EXIT_USAGE
    registry = target.registry()
    try:
        if args.version is None:
            return _status_of_model(args, registry, out, err)
        if args.watch:
            return _watch_version(args, registry, out, err)
        return _status_of_version(args, registry, out, err)
    except _aws_errors() as exc:
        _fail(err, f"mmedeploy status: reading the registry on {target.description} failed: {exc}")
        return EXIT_USAGE


def _not_found(err: Console, what: str, name: str, state_dir: Path) -> int:
    from chalicelib.naming import ArtifactName

    message = f"mmedeploy status: {what}"
    try:
        artifact = ArtifactName.parse(name)
    except ValueError:
        pass
    else:  # `status idcheck_1.tar.gz`: a file name given for the model name
        message += f"; did you mean: mmedeploy status {artifact.name} {artifact.version}{_state_dir_option(state_dir)}"
    _fail(err, message)
    return EXIT_NOT_FOUND


def _status_of_model(args: argparse.Namespace, registry: Any, out: Console, err: Console) -> int:
    from mmedeploy.status_view import model_json, versions_view

    records = registry.versions(args.name)
    if not records:
        return _not_found(err, f"no versions of model {args.name} in the registry", args.name, args.state_dir)
    routes = registry.routes(args.name)
    if args.json:
        print(_dumps(model_json(args.name, records, routes)))
    else:
        out.print(versions_view(args.name, records, routes))
    return EXIT_OK


def _status_of_version(args: argparse.Namespace, registry: Any, out: Console, err: Console) -> int:
    from mmedeploy.status_view import version_json, version_view

    record = registry.find(args.name, args.version, with_history=True)
    if record is None:
        return _not_found(
            err, f"no version {args.version} of model {args.name} in the registry", args.name, args.state_dir
        )
    if args.json:
        print(_dumps(version_json(record)))
    else:
        out.print(version_view(record))
    return EXIT_OK


def _watch_version(args: argparse.Namespace, registry: Any, out: Console, err: Console) -> int:
    from rich.live import Live
    from rich.text import Text

    from chalicelib.registry import ModelVersion
    from mmedeploy.status_view import history_line, version_json, version_view, waiting_view, watch_exit_code
    from mmedeploy.watch import watch_version

    name, version = args.name, args.version

    def fetch() -> ModelVersion | None:
        return registry.find(name, version, with_history=True)  # type: ignore[no-any-return]

    def footer(elapsed: float) -> Text:
        return Text(
            f"watching every {args.interval:g} s: {elapsed:.0f} s of {args.timeout:g} s "
            "(Ctrl-C stops watching, not the deployment)",
            style="dim",
        )

    if args.json:
        result = watch_version(fetch, lambda record, elapsed: None, args.interval, args.timeout)
    elif out.is_terminal:
        with Live(console=out, auto_refresh=False, transient=False) as live:

            def show(record: ModelVersion | None, elapsed: float) -> None:
                view = version_view(record, footer(elapsed)) if record else waiting_view(name, version, footer(elapsed))
                live.update(view, refresh=True)

            result = watch_version(fetch, show, args.interval, args.timeout)
            if result.record is not None:
                live.update(version_view(result.record), refresh=True)
    else:  # a log, not a screen: one line per history entry as it happens, then the summary
        printed = 0

        def log(record: ModelVersion | None, elapsed: float) -> None:
            nonlocal printed
            for entry in record.history[printed:] if record else []:
                out.print(history_line(entry), soft_wrap=True)
            printed = len(record.history) if record else printed

        result = watch_version(fetch, log, args.interval, args.timeout)
        if result.record is not None:
            out.print(version_view(result.record))

    record = result.record
    if args.json and record is not None:
        print(_dumps(version_json(record)))
    if not result.timed_out and record is not None:
        return watch_exit_code(record.status)
    if record is None:
        _fail(
            err,
            f"mmedeploy status: {name} {version} was not registered within {args.timeout:g} s; was "
            f"{name}_{version}.tar.gz uploaded to the staging bucket (mmedeploy push)?",
        )
    else:
        _fail(
            err,
            f"mmedeploy status: {name} {version} is still {record.status.value} after {args.timeout:g} s; "
            f"keep watching with: mmedeploy status {name} {version} --watch{_state_dir_option(args.state_dir)}",
        )
    return EXIT_INVALID


# -- approve / reject: the Slack buttons, without Slack ---------------------------------------------
DECISION_EPILOG = """\
Sends what Slack sends when the button on the approval request is clicked: a block_actions
interaction, signed with the stack's Slack signing secret, to POST <api_url>/slack/interactions.
The approval is the version's (see 'mmedeploy status NAME VERSION').

exit codes:
  0  decided: the version is approved / declined
  1  not decided: no approval was requested, already decided, expired, not awaiting approval,
     signature refused (401), the user may not decide (403), malformed (400)
  2  usage or connection error (no local stack, the API does not answer)
  3  no such model or version
"""

ADMIN_EPILOG = """\
Needs the admin token (the local stack's admin_token). Unless --no-wait, follows the version until
it is PRODUCTION, FAILED, or RETIRED again (a rollback that could not warm it), or --timeout passes;
Ctrl-C stops waiting, not the {what}.

exit codes:
  0  {done}
  1  refused by the API (401/403: the admin token was refused), FAILED, RETIRED again, or --timeout
  2  usage or connection error (no local stack, the API does not answer, registry unreadable)
  3  no such model or version
"""


def _add_decisions(commands: Any) -> None:
    for command, verb in (("approve", "approve"), ("reject", "reject (decline)")):
        parser = commands.add_parser(
            command,
            help=f"{verb} a staged version, as the Slack button does (a signed Slack interaction)",
            epilog=DECISION_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("version", metavar="VERSION")
        parser.add_argument(
            "--user", metavar="SLACK_USER_ID", help="the Slack user who clicks (default: the first approver)"
        )
        parser.add_argument("--json", action="store_true", help="print the webhook's answer and its http_status")
        parser.add_argument(
            "--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory"
        )
        parser.set_defaults(handler=cmd_decide)


def _add_admin(commands: Any) -> None:
    promote = commands.add_parser(
        "promote",
        help="promote a version to production (admin)",
        epilog=ADMIN_EPILOG.format(what="promotion", done="accepted (--no-wait), or the version is PRODUCTION"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION")
    rollback = commands.add_parser(
        "rollback",
        help="make the previous production version production again (admin)",
        epilog=ADMIN_EPILOG.format(what="rollback", done="accepted (--no-wait), or the previous version is PRODUCTION"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rollback.add_argument("name", metavar="NAME")
    rollback.set_defaults(version=None)
    for parser, handler in ((promote, cmd_promote), (rollback, cmd_rollback)):
        parser.add_argument("--no-wait", action="store_true", help="return once the API accepted the request")
        parser.add_argument(
            "--timeout",
            type=_positive_seconds,
            default=900.0,
            metavar="S",
            help="give up waiting after this many seconds, exit 1 (900)",
        )
        parser.add_argument(
            "--interval", type=_positive_seconds, default=0.5, metavar="S", help="seconds between reads (0.5)"
        )
        parser.add_argument("--json", action="store_true", help="print JSON (the API's answer, and the outcome)")
        parser.add_argument(
            "--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory"
        )
        parser.set_defaults(handler=handler)


def _unreachable(err: Console, prog: str, exc: Exception, state_dir: Path) -> int:
    _fail(
        err,
        f"{prog}: {exc}; the local stack may not be running or may have stopped: check with "
        f"'mmedeploy status', or (re)start it with: mmedeploy up --detach{_state_dir_option(state_dir)}",
    )
    return EXIT_USAGE


def _plain(console: Console, line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def cmd_decide(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.admin_api import ApiNotConfigured, ApiUnreachable
    from mmedeploy.decision import Decision, decided, default_user, send_decision
    from mmedeploy.target import TargetUnavailable, resolve_target

    prog = f"mmedeploy {args.command}"
    decision = Decision(args.command)
    name, version = args.name, args.version
    try:
        target = resolve_target(args.state_dir)
    except TargetUnavailable as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    user = args.user or default_user(target)
    if not user:
        _fail(err, f"{prog}: {target.description} names no Slack approver; give --user SLACK_USER_ID")
        return EXIT_USAGE
    registry = target.registry()
    try:
        record = registry.find(name, version)
        approval = registry.find_approval(record.approval_id) if record and record.approval_id else None
    except _aws_errors() as exc:
        _fail(err, f"{prog}: reading the registry on {target.description} failed: {exc}")
        return EXIT_USAGE
    if record is None:
        _fail(err, f"{prog}: no version {version} of model {name} in the registry; see: mmedeploy status {name}")
        return EXIT_NOT_FOUND
    if not record.approval_id:
        because = f": {record.reason}" if record.reason else ""
        _fail(err, f"{prog}: no approval was requested for {name} {version}; it is {record.status.value}{because}")
        return EXIT_INVALID
    try:
        answer = send_decision(target, record, decision, user, approval)
    except ApiNotConfigured as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    except ApiUnreachable as exc:
        return _unreachable(err, prog, exc, args.state_dir)
    ok = decided(answer)
    if args.json:
        print(_dumps(answer.as_json()))
        return EXIT_OK if ok else EXIT_INVALID
    document = answer.document
    status = document.get("status")
    if ok:
        _plain(out, answer.error)  # the webhook's text, as Slack would show it
        # the status read when the click was taken: the pipeline moves the version on from there
        _plain(out, f"  decided as Slack user {user} while {name} {version} was {status or 'awaiting approval'}")
        _plain(out, f"follow it: mmedeploy status {name} {version} --watch{_state_dir_option(args.state_dir)}")
        return EXIT_OK
    code = answer.http_status
    if code == 200:
        why = f"not {decision.past} ({document.get('outcome') or 'refused'}): {answer.error}"
    elif code == 401:
        why = f"the webhook refused the signature (HTTP 401): {answer.error}"
    elif code == 403:
        approvers = ", ".join(target.slack_approver_ids) or "none listed"
        why = f"Slack user {user} may not decide (HTTP 403): {answer.error}; approvers: {approvers}"
    elif code == 400:
        why = f"the webhook found the interaction malformed (HTTP 400): {answer.error}"
    else:
        why = f"the webhook answered HTTP {code}: {answer.error}"
    _fail(err, f"{prog}: {name} {version}: {why}" + (f"; it is {status}" if status else ""))
    return EXIT_INVALID


def cmd_promote(args: argparse.Namespace, out: Console, err: Console) -> int:
    return _admin_command(args, out, err)


def cmd_rollback(args: argparse.Namespace, out: Console, err: Console) -> int:
    return _admin_command(args, out, err)


def _admin_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """``promote`` (args.version set) and ``rollback`` (args.version None): request, then follow."""
    from mmedeploy.admin_api import ApiNotConfigured, ApiUnreachable, request_promotion, request_rollback
    from mmedeploy.target import TargetUnavailable, resolve_target

    prog = f"mmedeploy {args.command}"
    name = args.name
    try:
        target = resolve_target(args.state_dir)
    except TargetUnavailable as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    registry = target.registry()
    revisions: dict[str, int] = {}  # before the request: a later RETIRED with a higher one is a failed rollback
    if not args.no_wait:
        try:
            if args.version is not None:
                found = registry.find(name, args.version)
                revisions = {found.version: found.revision} if found else {}
            else:
                revisions = {r.version: r.revision for r in registry.versions(name)}
        except _aws_errors() as exc:
            _fail(err, f"{prog}: reading the registry on {target.description} failed: {exc}")
            return EXIT_USAGE
    try:
        if args.version is not None:
            answer = request_promotion(target, name, args.version)
        else:
            answer = request_rollback(target, name)
    except ApiNotConfigured as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    except ApiUnreachable as exc:
        return _unreachable(err, prog, exc, args.state_dir)

    if not answer.accepted:
        if args.json:
            print(_dumps(answer.as_json()))
        code = answer.http_status
        if code in (401, 403):
            _fail(err, f"{prog}: the API refused the admin token of {target.description} (HTTP {code}): {answer.error}")
        elif code < 500:
            _fail(err, f"{prog}: refused (HTTP {code}): {answer.error}")
        else:
            _fail(err, f"{prog}: the API failed (HTTP {code}): {answer.error}; see its logs, then try again")
        return EXIT_NOT_FOUND if code == 404 else EXIT_INVALID

    document = answer.document
    version = str(document.get("version") or args.version or "")
    watch_hint = f"mmedeploy status {name} {version} --watch{_state_dir_option(args.state_dir)}"
    if args.json and args.no_wait:
        print(_dumps(answer.as_json()))
        return EXIT_OK
    if not args.json:
        accepted = f"({document.get('status') or 'accepted'})"
        if args.version is not None:
            _plain(out, f"promotion of {name} {version} accepted {accepted}")
        else:
            replacing = f", replacing {document['from_version']}" if document.get("from_version") else ""
            _plain(out, f"rollback of {name} accepted: {version} becomes production again{replacing} {accepted}")
        if args.no_wait:
            _plain(out, f"follow it: {watch_hint}")
            return EXIT_OK
    if not version:
        _fail(err, f"{prog}: the API's answer names no version to follow; see: mmedeploy status {name}")
        return EXIT_INVALID
    try:
        return _follow(args, registry, name, version, revisions.get(version), watch_hint, answer.as_json(), out, err)
    except _aws_errors() as exc:
        _fail(err, f"{prog}: reading the registry on {target.description} failed: {exc}; follow it: {watch_hint}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        what = "promotion" if args.version is not None else "rollback"
        _fail(err, f"{prog}: stopped waiting; the {what} goes on: {watch_hint}")
        return 130


def _follow(
    args: argparse.Namespace,
    registry: Any,
    name: str,
    version: str,
    baseline: int | None,
    watch_hint: str,
    accepted: dict[str, Any],
    out: Console,
    err: Console,
) -> int:
    from contextlib import nullcontext

    from rich.text import Text

    from chalicelib.registry import ModelVersion
    from mmedeploy.follow import Outcome, follow_promotion
    from mmedeploy.status_view import history_line

    prog = f"mmedeploy {args.command}"
    what = "promotion" if args.command == "promote" else "rollback"
    shown = baseline  # history entries up to this revision were there before the request
    spinner = out.status(f"waiting for {name} {version}") if out.is_terminal and not args.json else None

    def fetch() -> ModelVersion | None:
        return registry.find(name, version, with_history=True)  # type: ignore[no-any-return]

    def show(record: ModelVersion | None, elapsed: float) -> None:
        nonlocal shown
        if record is None or args.json:
            return
        # each status change once, as it is seen; with no baseline, from the first read's latest
        new = record.history[-1:] if shown is None else [e for e in record.history if e.revision > shown]
        for entry in new:
            line = Text(f"{elapsed:7.1f} s  ")
            line.append_text(history_line(entry))
            out.print(line, soft_wrap=True)
        shown = max(shown or 0, record.revision)
        if spinner is not None:
            spinner.update(
                f"{name} {version} is {record.status.value}: {elapsed:.0f} s of {args.timeout:g} s "
                f"(Ctrl-C stops waiting, not the {what})"
            )

    with spinner if spinner is not None else nullcontext():
        result = follow_promotion(fetch, show, baseline, interval=args.interval, timeout=args.timeout)
    record = result.record
    if args.json:
        print(
            _dumps(
                {
                    "request": accepted,
                    "outcome": result.outcome.value,
                    "name": name,
                    "version": version,
                    "status": record.status.value if record else None,
                    "reason": record.reason if record else None,
                    "elapsed_s": round(result.elapsed, 3),
                }
            )
        )
    took = f"after {result.elapsed:.1f} s"
    reason = f": {record.reason}" if record and record.reason else ""
    if result.outcome is Outcome.PRODUCTION:
        if not args.json:
            again = " again" if args.command == "rollback" else ""
            _plain(out, f"{name} {version} is PRODUCTION{again} ({took})")
    elif result.outcome is Outcome.FAILED and record is not None:
        _fail(err, f"{prog}: {name} {version} is {record.status.value} ({took}){reason}")
    elif result.outcome is Outcome.RETIRED:
        kept = f"; {accepted['from_version']} stays production" if accepted.get("from_version") else ""
        _fail(err, f"{prog}: {name} {version} is RETIRED again ({took}){reason}{kept}")
    elif record is None:
        _fail(err, f"{prog}: {name} {version} was not found in the registry within {args.timeout:g} s")
    else:
        _fail(
            err,
            f"{prog}: {name} {version} is still {record.status.value} after {args.timeout:g} s; "
            f"the {what} goes on: watch it with: {watch_hint}",
        )
    return result.exit_code


# -- invoke / models / canary: the serving side of the API -----------------------------------------
INVOKE_EPILOG = """\
FILE is a KServe v2 JSON inference request ('-' reads standard input), e.g.
  {"inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": [0.1, ...]}]}
It goes to POST <api_url>/v2/models/NAME/infer (with --version: .../versions/V/infer, pinned)
with the invoke token (the admin token if the target has none). Without --version the API routes
the request: production, or the canary for its share of the traffic. Prints who served (version
and route: production, canary or pinned) and each output (name, datatype, shape, data; long
tensors are cut after a few values: --json prints everything).

exit codes:
  0  answered (HTTP 200)
  1  refused or failed by the API (the status and the API's error are printed)
  2  usage or I/O error (FILE unreadable or not a JSON object, no local stack, the API does not answer)
"""

CANARY_EPILOG = """\
A canary sends a share of NAME's traffic (the requests that name no version) to VERSION beside
production; VERSION must be staged and warm (see 'mmedeploy status NAME'). Running it again
changes the version or the weight; --stop ends it; promoting the canary's version ends it too.
Needs the admin token (the local stack's admin_token).

  mmedeploy canary fraud 2 --weight 10%     # or --weight 0.1
  mmedeploy canary fraud --stop

exit codes:
  0  started, changed or ended
  1  refused by the API (401/403: the admin token was refused; 404: no such model, version,
     production version or canary; 409: the version cannot take traffic)
  2  usage or connection error (bad weight, no local stack, the API does not answer)
"""

MODELS_EPILOG = """\
Reads GET <api_url>/models with the invoke token. Without --limit every page is read (following
the API's 'next' token); with --limit N one page of at most N models, and the command to read the
next one. --json prints {"models": [{"name", "latest_version", "updated_at", "production_version",
"canary_version"}], "next": TOKEN|null}.

exit codes: 0 listed, 1 refused by the API, 2 usage or connection error
"""

MAX_MODELS_PAGE = 1000  # the API's largest page (chalicelib.inference.catalog.MAX_PAGE; not imported: CLI start-up)


def _weight(text: str) -> float:
    """A canary's share of the traffic: a fraction (0.1) or a percentage (10%), strictly between 0 and 1."""
    stripped = text.strip()
    try:
        weight = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a weight: give a fraction (0.1) or a percentage (10%)"
        ) from None
    if not 0 < weight < 1:
        hint = f" (did you mean {stripped}%?)" if not stripped.endswith("%") and 1 < weight < 100 else ""
        raise argparse.ArgumentTypeError(
            f"{text} is not a share of the traffic: the weight must be more than 0 and less than 1 "
            f"(0% to 100%, both excluded){hint}"
        )
    return weight


def _page_size(text: str) -> int:
    size = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= size <= MAX_MODELS_PAGE:
        raise argparse.ArgumentTypeError(f"'{text}' is not a page size from 1 to {MAX_MODELS_PAGE}")
    return size


def _add_serving(commands: Any) -> None:
    invoke = commands.add_parser(
        "invoke",
        help="send a KServe v2 inference request to a model through the API",
        epilog=INVOKE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    invoke.add_argument("name", metavar="NAME")
    invoke.add_argument(
        "--data", required=True, metavar="FILE", help="the KServe v2 JSON inference request ('-': standard input)"
    )
    invoke.add_argument(
        "--version", metavar="V", help="pin the version that serves (default: the API routes: production or canary)"
    )
    invoke.add_argument(
        "--json",
        action="store_true",
        help="print the KServe answer with http_status, served_version and route added",
    )
    invoke.add_argument(
        "--timeout", type=_positive_seconds, default=60.0, metavar="S", help="wait this long for the answer (60)"
    )
    invoke.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory")
    invoke.set_defaults(handler=cmd_invoke)

    canary = commands.add_parser(
        "canary",
        help="send a share of a model's traffic to a candidate version, or --stop (admin)",
        epilog=CANARY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    canary.add_argument("name", metavar="NAME")
    canary.add_argument("version", metavar="VERSION", nargs="?", help="the candidate (omit with --stop)")
    canary.add_argument(
        "--weight", type=_weight, metavar="W", help="its share of the traffic: a fraction (0.1) or a percentage (10%%)"
    )
    canary.add_argument("--stop", action="store_true", help="end the canary: production takes all the traffic")
    canary.add_argument("--json", action="store_true", help="print the API's answer and its http_status")
    canary.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory")
    canary.set_defaults(handler=cmd_canary)

    models = commands.add_parser(
        "models",
        help="list the models: production, canary and latest version of each",
        epilog=MODELS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_argument(
        "--limit", type=_page_size, metavar="N", help=f"one page of at most N models (1-{MAX_MODELS_PAGE})"
    )
    models.add_argument("--next", metavar="TOKEN", help="start after the page that gave this token (with --limit)")
    models.add_argument("--json", action="store_true", help='print {"models": [...], "next": TOKEN|null}')
    models.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory")
    models.set_defaults(handler=cmd_models)


def _api_error(err: Console, prog: str, answer: Any, target: Any, token: str) -> int:
    """An API refusal on stderr: ``error 404: unknown model fraud``, with a hint where one helps."""
    code = answer.http_status
    message = f"{prog}: error {code}: {answer.error}"
    if code in (401, 403):
        message += f" (the API refused the {token} token of {target.description})"
    retry = answer.header("Retry-After")
    if code == 503 and retry:
        message += f"; try again in {retry} s"
    _fail(err, message)
    return EXIT_INVALID


def cmd_invoke(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.admin_api import ApiNotConfigured, ApiUnreachable
    from mmedeploy.inference_client import BadRequestFile, infer, inference, inference_lines, read_request
    from mmedeploy.target import TargetUnavailable, resolve_target

    prog = "mmedeploy invoke"
    try:
        body = read_request(args.data)
        target = resolve_target(args.state_dir)
        answer = infer(target, args.name, args.version, body, timeout=args.timeout)
    except (BadRequestFile, TargetUnavailable, ApiNotConfigured) as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    except ApiUnreachable as exc:
        return _unreachable(err, prog, exc, args.state_dir)
    served = inference(answer)
    if args.json:
        print(_dumps(served.as_json()))
    if not answer.accepted:
        token = "invoke" if target.api_token else "admin"
        return _api_error(err, prog, answer, target, token)
    if "outputs" not in served.document:
        _fail(err, f"{prog}: the API answered HTTP {answer.http_status} without a KServe answer: {answer.error}")
        return EXIT_INVALID
    if not args.json:
        for line in inference_lines(args.name, served):
            _plain(out, line)
    return EXIT_OK


def cmd_canary(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.admin_api import ApiNotConfigured, ApiUnreachable, end_canary, request_canary
    from mmedeploy.status_view import percent
    from mmedeploy.target import TargetUnavailable, resolve_target

    prog = "mmedeploy canary"
    if args.stop and (args.version is not None or args.weight is not None):
        _fail(err, f"{prog}: --stop ends the canary: give only NAME (mmedeploy canary {args.name} --stop)")
        return EXIT_USAGE
    if not args.stop and (args.version is None or args.weight is None):
        _fail(err, f"{prog}: give NAME VERSION --weight W to start a canary, or NAME --stop to end one")
        return EXIT_USAGE
    try:
        target = resolve_target(args.state_dir)
        if args.stop:
            answer = end_canary(target, args.name)
        else:
            answer = request_canary(target, args.name, args.version, args.weight)
    except (TargetUnavailable, ApiNotConfigured) as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    except ApiUnreachable as exc:
        return _unreachable(err, prog, exc, args.state_dir)
    if args.json:
        print(_dumps(answer.as_json()))
    if not answer.accepted:
        return _api_error(err, prog, answer, target, "admin")
    if args.json:
        return EXIT_OK
    document = answer.document
    name = document.get("name") or args.name
    production = document.get("production") or "-"
    canary = document.get("canary")
    canary = canary if isinstance(canary, dict) else {}
    version = canary.get("version") or args.version or "?"
    weight = canary.get("weight", args.weight)
    share = percent(float(weight)) if isinstance(weight, int | float) and not isinstance(weight, bool) else "its share"
    if args.stop:
        _plain(out, f"{name}: canary {version} ended (it had {share} of traffic); production {production} takes all")
    else:
        _plain(out, f"{name}: {share} of traffic -> {version} (production {production})")
        _plain(out, f"end it: mmedeploy canary {name} --stop{_state_dir_option(args.state_dir)}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.admin_api import ApiNotConfigured, ApiUnreachable
    from mmedeploy.inference_client import PagingLoop, list_models, models_lines
    from mmedeploy.target import TargetUnavailable, resolve_target

    prog = "mmedeploy models"
    if args.next is not None and args.limit is None:
        _fail(err, f"{prog}: --next continues a paged listing: give --limit N too")
        return EXIT_USAGE
    try:
        target = resolve_target(args.state_dir)
        listing = list_models(target, args.limit, args.next)
    except (TargetUnavailable, ApiNotConfigured) as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_USAGE
    except ApiUnreachable as exc:
        return _unreachable(err, prog, exc, args.state_dir)
    except PagingLoop as exc:
        _fail(err, f"{prog}: {exc}")
        return EXIT_INVALID
    if listing.failed is not None:
        if args.json:
            print(_dumps(listing.failed.as_json()))
        return _api_error(err, prog, listing.failed, target, "invoke" if target.api_token else "admin")
    if args.json:
        print(_dumps({"models": listing.models, "next": listing.next}))
        return EXIT_OK
    if not listing.models and args.next:
        _plain(out, "no more models")
    elif not listing.models:
        _plain(out, "no models yet: push one with: mmedeploy push NAME_VERSION.tar.gz")
    else:
        for line in models_lines(listing.models):
            _plain(out, line)
    if listing.next:
        _plain(
            out,
            f"more: mmedeploy models --limit {args.limit} --next {listing.next}{_state_dir_option(args.state_dir)}",
        )
    return EXIT_OK


# -- logs: a Lambda function's output, from CloudWatch Logs -----------------------------------------
LOGS_EPILOG = """\
Reads the log group /aws/lambda/FUNCTION (every stream: one per execution environment) through
FilterLogEvents and prints its events in time order, each as '<stream id> <UTC time> <message>'.
FUNCTION is a function's full name (mmedeploy-dev-validate) or a short form of it (validate,
APIHandler, warm-staging). --follow prints new events as they arrive until Ctrl-C. The local stack
also keeps each function's output in <state dir>/logs/<function name>.log.

exit codes:
  0  printed (also when there are no events yet)
  1  no such function, or several match (their names are printed), or reading the logs failed
  2  usage error, or no local stack runs
  130  Ctrl-C with --follow
"""


def _since(text: str) -> int:
    from mmedeploy.function_logs import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_logs(commands: Any) -> None:
    logs = commands.add_parser(
        "logs",
        help="print a Lambda function's log events from CloudWatch Logs, like sam logs",
        epilog=LOGS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logs.add_argument(
        "function", metavar="FUNCTION", help="the function's name, or a short form (validate, APIHandler, warm-staging)"
    )
    logs.add_argument("--follow", action="store_true", help="keep printing new events until Ctrl-C")
    logs.add_argument(
        "--since", type=_since, default="10m", metavar="AGE", help="events of the last AGE: 30s, 10m, 2h, 1d (10m)"
    )
    logs.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="the local stack's state directory")
    logs.set_defaults(handler=cmd_logs)


def cmd_logs(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy import function_logs as fl
    from mmedeploy.target import TargetUnavailable, resolve_target

    prog = "mmedeploy logs"
    try:
        target = resolve_target(args.state_dir)
    except TargetUnavailable as exc:
        kept = args.state_dir / "logs"
        hint = f" (the function logs of its last run are kept in {kept}/)" if kept.is_dir() else ""
        _fail(err, f"{prog}: {exc}{hint}")
        return EXIT_USAGE
    try:
        function = fl.resolve_function(args.function, fl.function_names(target.client("lambda")))
    except fl.FunctionNotFound as exc:
        names = ", ".join(exc.names) or "none"
        _fail(
            err,
            f"{prog}: no function of {target.description} is named '{exc.query}' or ends with it; "
            f"its functions: {names}",
        )
        return EXIT_INVALID
    except fl.AmbiguousFunction as exc:
        matches = ", ".join(exc.matches)
        _fail(
            err,
            f"{prog}: '{exc.query}' matches {len(exc.matches)} functions of {target.description}: {matches}; "
            "give one of them",
        )
        return EXIT_INVALID
    except _aws_errors() as exc:
        _fail(err, f"{prog}: listing the functions on {target.description} failed: {exc}")
        return EXIT_INVALID
    group = fl.log_group_name(function)
    start_ms = fl.start_time_ms(args.since)
    logs = target.client("logs")
    try:
        if args.follow:
            _plain(
                err, f"following {group} on {target.description} from {fl.format_timestamp(start_ms)} (Ctrl-C stops)"
            )
            for batch in fl.follow_events(logs, group, start_ms):  # until Ctrl-C
                _print_events(out, batch)
        events = fl.read_events(logs, group, start_ms)
    except KeyboardInterrupt:
        return 130  # quietly, as tail -f
    except fl.LogGroupMissing:
        _fail(err, f"{prog}: {function} has not logged anything yet (no log group {group})")
        return EXIT_OK
    except _aws_errors() as exc:
        _fail(err, f"{prog}: reading {group} on {target.description} failed: {exc}")
        return EXIT_INVALID
    _print_events(out, events)
    if not events:
        _fail(err, f"{prog}: no log events of {function} since {fl.format_timestamp(start_ms)}")
    return EXIT_OK


def _print_events(out: Console, events: list[Any]) -> None:
    from mmedeploy.function_logs import format_event

    for event in events:
        print(format_event(event), file=out.file)  # as they are: tabs kept, nothing wrapped or styled
    out.file.flush()  # piped (| grep) with --follow: each poll's events as they come


def _dumps(document: dict[str, Any]) -> str:
    import json

    return json.dumps(document, indent=2)


def main(argv: list[str] | None = None) -> int:
    out, err = Console(), Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args, out, err))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        err.print("mmedeploy: interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("MMEDEPLOY_DEBUG"):
            raise
        err.print(
            f"mmedeploy: internal error ({type(exc).__name__}: {exc}); please report it with "
            "MMEDEPLOY_DEBUG=1 set to include the traceback"
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
