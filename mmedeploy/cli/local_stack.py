"""The local stack: start it (``up``), stop it (``down``), run the whole flow on it (``demo``),
read its functions' ``logs``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, aws_errors, say
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_OK, CommandError, Exit
from mmedeploy.local import (
    DEFAULT_APPROVAL_TIMEOUT_S,
    DEFAULT_LAMBDA_CONCURRENCY,
    DEFAULT_MME_LOAD_WAIT_S,
    DEFAULT_MME_MEMORY_MB,
    DEFAULT_PORT_BASE,
)

DEMO_INTRO = """\
Starts the local stack detached (or uses the one running in --state-dir), packages and pushes the
example ensemble (examples/models/idcheck) as the next free version of model idcheck, follows the
pipeline to AWAITING_APPROVAL, shows the Slack approval request, approves it with a signed Slack
interaction, follows it to PRODUCTION, calls the inference API with a Triton client, pushes a
broken copy and shows its rejection report. Then it stops the stack it started, unless --keep
(a stack that was already running keeps running). Ctrl-C stops the stack it started.
"""

LOGS_INTRO = """\
Reads the log group /aws/lambda/FUNCTION (every stream: one per execution environment) through
FilterLogEvents and prints its events in time order, each as '<stream id> <UTC time> <message>'.
FUNCTION is a function's full name (mmedeploy-dev-validate) or a short form of it (validate,
APIHandler, warm-staging). --follow prints new events as they arrive until Ctrl-C. The local stack
also keeps each function's output in <state dir>/logs/<function name>.log.
"""


def register(commands: Any) -> None:
    state_dir = options.state_dir(targeted=False)
    up = commands.add_parser("up", help="start the local stack (AWS emulator, API, Slack sink)", parents=[state_dir])
    up.add_argument("--detach", action="store_true", help="run in the background and return when ready")
    up.add_argument("--fresh", action="store_true", help="wipe the state kept from earlier runs")
    up.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, help="first of 4 consecutive ports")
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

    down = commands.add_parser("down", help="stop the local stack", parents=[state_dir])
    down.set_defaults(handler=cmd_down)

    demo = options.add_command(
        commands,
        "demo",
        "the whole flow on the local stack: package, push, approve, serve, reject (make demo)",
        DEMO_INTRO,
        parents=(state_dir,),
    )
    demo.add_argument("--keep", action="store_true", help="leave the stack running afterwards, to explore")
    demo.add_argument(
        "--port-base", type=int, default=DEFAULT_PORT_BASE, help="first of 4 consecutive ports for a new stack"
    )
    demo.set_defaults(handler=cmd_demo)

    logs = options.add_command(
        commands,
        "logs",
        "print a Lambda function's log events from CloudWatch Logs, like sam logs",
        LOGS_INTRO,
        parents=(options.state_dir(),),
    )
    logs.add_argument(
        "function", metavar="FUNCTION", help="the function's name, or a short form (validate, APIHandler, warm-staging)"
    )
    logs.add_argument("--follow", action="store_true", help="keep printing new events until Ctrl-C")
    logs.add_argument(
        "--since",
        type=options.since,
        default="10m",
        metavar="AGE",
        help="events of the last AGE: 30s, 10m, 2h, 1d (10m)",
    )
    logs.set_defaults(handler=cmd_logs)


# -- up / down -------------------------------------------------------------------------------------
def _need_local_extra(ctx: Context) -> None:
    """End the command, naming the install command, where the ``[local]`` extra is missing."""
    from mmedeploy.project_files import missing_local_modules

    missing = missing_local_modules()
    if missing:
        raise ctx.fail(
            f"the local stack needs mmedeploy's [local] extra ({', '.join(missing)} missing): "
            "pipx install --force 'mmedeploy[local]' (or pip install 'mmedeploy[local]')"
        )


def cmd_up(args: argparse.Namespace, ctx: Context) -> int:
    from pydantic import ValidationError

    _need_local_extra(ctx)

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
        raise ctx.fail(problems) from exc
    try:
        if args.detach:
            return control.up_detached(config, say)
        return control.up_foreground(config, say)
    except control.StackError as exc:
        raise CommandError(f"mmedeploy: {exc}", Exit.INVALID) from exc


def cmd_down(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.local import control
    from mmedeploy.target import SeveralLocalStacks, TargetUnavailable, find_local_stack

    state_dir = args.state_dir
    try:
        state_dir = find_local_stack(state_dir)  # the one running stack, from any folder
    except SeveralLocalStacks as exc:
        raise ctx.fail(str(exc)) from exc
    except TargetUnavailable:
        pass  # none runs: down says so
    try:
        return control.down(state_dir, say)
    except control.StackError as exc:
        raise CommandError(f"mmedeploy: {exc}", Exit.INVALID) from exc


# -- demo: the whole mission on the local stack ----------------------------------------------------
def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    _need_local_extra(ctx)
    from mmedeploy.demo import Demo

    if not 1 <= args.port_base <= 65535 - 3:
        raise ctx.fail(f"--port-base {args.port_base} leaves no room for 4 ports (1 to 65532)")
    return Demo(ctx.out, args.state_dir, args.port_base, args.keep).run()


# -- logs: a Lambda function's output, from CloudWatch Logs -----------------------------------------
def cmd_logs(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy import function_logs as fl
    from mmedeploy.target import TargetUnavailable

    try:
        target = ctx.target(args.state_dir)
    except TargetUnavailable as exc:
        kept = args.state_dir / "logs"
        hint = f" (the function logs of its last run are kept in {kept}/)" if kept.is_dir() else ""
        raise ctx.fail(f"{exc}{hint}") from exc
    try:
        function = fl.resolve_function(args.function, fl.function_names(target.client("lambda")))
    except fl.FunctionNotFound as exc:
        names = ", ".join(exc.names) or "none"
        raise ctx.fail(
            f"no function of {target.description} is named '{exc.query}' or ends with it; its functions: {names}",
            EXIT_INVALID,
        ) from exc
    except fl.AmbiguousFunction as exc:
        matches = ", ".join(exc.matches)
        raise ctx.fail(
            f"'{exc.query}' matches {len(exc.matches)} functions of {target.description}: {matches}; give one of them",
            EXIT_INVALID,
        ) from exc
    except aws_errors() as exc:
        raise ctx.fail(f"listing the functions on {target.description} failed: {exc}", EXIT_INVALID) from exc
    group = fl.log_group_name(function)
    start_ms = fl.start_time_ms(args.since)
    logs = target.client("logs")
    try:
        if args.follow:
            ctx.note(f"following {group} on {target.description} from {fl.format_timestamp(start_ms)} (Ctrl-C stops)")
            for batch in fl.follow_events(logs, group, start_ms):  # until Ctrl-C
                _print_events(ctx, batch)
        events = fl.read_events(logs, group, start_ms)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED  # quietly, as tail -f
    except fl.LogGroupMissing:
        ctx.note(f"{ctx.prog}: {function} has not logged anything yet (no log group {group})")
        return EXIT_OK
    except aws_errors() as exc:
        raise ctx.fail(f"reading {group} on {target.description} failed: {exc}", EXIT_INVALID) from exc
    _print_events(ctx, events)
    if not events:
        ctx.note(f"{ctx.prog}: no log events of {function} since {fl.format_timestamp(start_ms)}")
    return EXIT_OK


def _print_events(ctx: Context, events: list[Any]) -> None:
    from mmedeploy.function_logs import format_event

    for event in events:
        print(format_event(event), file=ctx.out.file)  # as they are: tabs kept, nothing wrapped or styled
    ctx.out.file.flush()  # piped (| grep) with --follow: each poll's events as they come
