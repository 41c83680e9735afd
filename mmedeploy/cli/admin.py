"""The admin routes: ``promote`` a version and ``rollback`` (then follow the version until the
promotion ends), ``canary`` (a share of the traffic to a candidate), ``rollout`` (a promotion in
canary steps judged by gates; then follow it) and its ``pause``/``resume``/``abort``. They need
the admin token."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, dumps, target_option
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, Exit

if TYPE_CHECKING:
    from chalicelib.domain.records import ModelVersion
    from chalicelib.domain.rollout.policy import RolloutPolicy
    from mmedeploy.admin_api import ApiAnswer
    from mmedeploy.target import DeploymentTarget

ADMIN_INTRO = """\
Needs the admin token (the local stack's admin_token). Unless --no-wait, follows the version
through the API's registry routes until it is PRODUCTION, FAILED, or RETIRED again (a rollback
that could not warm it), or --timeout passes, backing off while the API throttles or fails;
Ctrl-C stops waiting (exit 130), not the {what}.
"""

CANARY_INTRO = """\
A canary sends a share of NAME's traffic (the requests that name no version) to VERSION beside
production; VERSION must be staged and warm (see 'mmedeploy status NAME'). Running it again
changes the version or the weight; --stop ends it; promoting the canary's version ends it too.
Needs the admin token (the local stack's admin_token).

  mmedeploy canary fraud 2 --weight 10%     # or --weight 0.1
  mmedeploy canary fraud --stop
"""

ROLLOUT_INTRO = """\
A rollout promotes VERSION in canary steps: warmed on production, it takes each step's share of
NAME's traffic (the last step, 100%, is the promotion itself), and at each step the gates compare
its error rate and p99 latency with production's every --interval; once a step has baked (--bake)
with the gates passing it moves on. A breach ends it: VERSION is ROLLED_BACK, its canary removed,
production unchanged. A VERSION awaiting approval is approved by the request (as promote does);
an APPROVED one, or one whose promotion or rollout failed, is rolled out. The options given
override the policy's other layers (the deployment's settings, the model's rollout.json); the
others are theirs. Unless --no-wait, follows VERSION
until PRODUCTION (exit 0), ROLLED_BACK or FAILED (exit 1), or --timeout (default: the policy's
steps x bake, plus 15 minutes), printing each step and reading; Ctrl-C stops waiting, not the
rollout. 'mmedeploy status NAME VERSION' shows its panel. pause holds the rollout at its step (the
gates still read, a breach still rolls it back), resume lets it go on, abort ends it at once
(ROLLED_BACK). Needs the admin token (the local stack's admin_token).

  mmedeploy rollout fraud 2                              # the policy as its layers resolve it
  mmedeploy rollout fraud 2 --steps 10,50,100 --bake 15m --interval 1m --min-requests 500
  mmedeploy rollout pause fraud
  mmedeploy rollout resume fraud
  mmedeploy rollout abort fraud
"""
ROLLOUT_USAGE = """\
%(prog)s NAME VERSION [--steps W,W,...] [--bake D] [--interval D] [--min-requests N]
                         [--max-error-margin F] [--max-latency-ratio R] [--no-wait] [--timeout S] [--json]
       %(prog)s {pause,resume,abort} NAME [--json]"""
CONTROLS = ("pause", "resume", "abort")


class RolloutOption(NamedTuple):
    """An option of ``rollout NAME VERSION``: the policy field it sets (its argparse dest)."""

    flag: str
    field: str
    kind: Callable[[str], Any]
    metavar: str
    help: str


ROLLOUT_OPTIONS = (
    RolloutOption(
        "--steps",
        "steps",
        options.percent_steps,
        "W,W,...",
        "the canary's weights in percent, rising to 100: 5,25,50,100 (or 5%%,25%%,50%%,100%%)",
    ),
    RolloutOption(
        "--bake",
        "bake_seconds",
        options.duration_seconds,
        "D",
        "how long each step runs with the gates passing before the next: seconds, or 30s, 10m, 1h",
    ),
    RolloutOption(
        "--interval",
        "evaluation_interval_seconds",
        options.duration_seconds,
        "D",
        "time between two readings of the gates: seconds, or 30s, 1m (at most the bake)",
    ),
    RolloutOption(
        "--min-requests",
        "min_requests",
        int,
        "N",
        "requests each version must serve in a step before the gates judge it",
    ),
    RolloutOption(
        "--max-error-margin",
        "max_error_rate_margin",
        float,
        "F",
        "the candidate's error rate at most production's plus this fraction (0.01: one point)",
    ),
    RolloutOption(
        "--max-latency-ratio",
        "max_p99_latency_ratio",
        float,
        "R",
        "the candidate's p99 latency at most this many times production's (1.2: 20%% slower)",
    ),
)
FOLLOW_MARGIN_S = 900.0  # the default --timeout: the policy's steps x bake, plus warming and the flip


def register(commands: Any) -> None:
    state_dir = options.state_dir()
    following = options.following(0.5, 900.0, watch=False)
    for command, summary, what in (
        ("promote", "promote a version to production (admin)", "promotion"),
        ("rollback", "make the previous production version production again (admin)", "rollback"),
    ):
        parser = options.add_command(
            commands, command, summary, ADMIN_INTRO.format(what=what), parents=(state_dir, following)
        )
        parser.add_argument("name", metavar="NAME")
        if command == "promote":
            parser.add_argument("version", metavar="VERSION")
        else:  # the version the rollback goes to is the API's answer
            parser.set_defaults(version=None)
        parser.add_argument("--no-wait", action="store_true", help="return once the API accepted the request")
        parser.add_argument("--json", action="store_true", help="print JSON (the API's answer, and the outcome)")
        parser.set_defaults(handler=cmd_promote)

    canary = options.add_command(
        commands,
        "canary",
        "send a share of a model's traffic to a candidate version, or --stop (admin)",
        CANARY_INTRO,
        parents=(state_dir,),
    )
    canary.add_argument("name", metavar="NAME")
    canary.add_argument("version", metavar="VERSION", nargs="?", help="the candidate (omit with --stop)")
    canary.add_argument(
        "--weight",
        type=options.weight,
        metavar="W",
        help="its share of the traffic: a fraction (0.1) or a percentage (10%%)",
    )
    canary.add_argument("--stop", action="store_true", help="end the canary: production takes all the traffic")
    canary.add_argument("--json", action="store_true", help="print the API's answer and its http_status")
    canary.set_defaults(handler=cmd_canary)

    rollout = options.add_command(
        commands,
        "rollout",
        "promote a version in canary steps judged by gates, or pause/resume/abort one (admin)",
        ROLLOUT_INTRO,
        parents=(state_dir,),
    )
    rollout.usage = ROLLOUT_USAGE
    rollout.add_argument("first", metavar="NAME", help="the model (or pause, resume, abort)")
    rollout.add_argument("second", metavar="VERSION", help="the candidate version (or the model, after an action)")
    policy = rollout.add_argument_group("the rollout's policy (each one given overrides the policy's other layers)")
    for option in ROLLOUT_OPTIONS:
        policy.add_argument(option.flag, dest=option.field, type=option.kind, metavar=option.metavar, help=option.help)
    rollout.add_argument("--no-wait", action="store_true", help="return once the API accepted the rollout")
    rollout.add_argument(
        "--timeout",
        type=options.positive_seconds,
        metavar="S",
        help="give up waiting after this many seconds, exit 1 (default: the policy's steps x bake, plus 15 minutes)",
    )
    rollout.add_argument(
        "--poll",
        dest="interval",
        type=options.positive_seconds,
        default=5.0,
        metavar="S",
        help="seconds between reads of the version while following it (5)",
    )
    rollout.add_argument("--json", action="store_true", help="print JSON (the API's answer, and the outcome)")
    rollout.set_defaults(handler=cmd_rollout)


# -- promote / rollback ----------------------------------------------------------------------------
def cmd_promote(args: argparse.Namespace, ctx: Context) -> int:
    """``promote`` (args.version set) and ``rollback`` (args.version None): request, then follow."""
    from mmedeploy.admin_api import request_promotion, request_rollback
    from mmedeploy.registry_client import find_model, find_version

    name = args.name
    target = ctx.target(args.state_dir)
    revisions: dict[str, int] = {}  # before the request: a later RETIRED with a higher one is a failed rollback
    if not args.no_wait:
        if args.version is not None:
            found = find_version(target, name, args.version)
            revisions = {found.version: found.revision} if found else {}
        else:
            listing = find_model(target, name)
            revisions = {line.version: line.revision for line in listing.versions} if listing else {}
    if args.version is not None:
        answer = request_promotion(target, name, args.version)
    else:
        answer = request_rollback(target, name)

    if not answer.accepted:
        if args.json:
            print(dumps(answer.as_json()))
        code = answer.http_status
        exit = EXIT_NOT_FOUND if code == 404 else EXIT_INVALID
        if code in (401, 403):
            raise ctx.fail(
                f"the API refused the admin token of {target.description} (HTTP {code}): {answer.error}", exit
            )
        if code < 500:
            raise ctx.fail(f"refused (HTTP {code}): {answer.error}", exit)
        raise ctx.fail(f"the API failed (HTTP {code}): {answer.error}; see its logs, then try again", exit)

    document = answer.document
    version = str(document.get("version") or args.version or "")
    watch_hint = f"mmedeploy status {name} {version} --watch{target_option(args)}"
    if args.json and args.no_wait:
        print(dumps(answer.as_json()))
        return EXIT_OK
    if not args.json:
        accepted = f"({document.get('status') or 'accepted'})"
        if document.get("status") == "FAILED":  # a promotion that failed, asked for again
            accepted = f"(it was FAILED: {document.get('action') or 'promotion requested again'})"
        if args.version is not None:
            ctx.print(f"promotion of {name} {version} accepted {accepted}")
        else:
            replacing = f", replacing {document['from_version']}" if document.get("from_version") else ""
            ctx.print(f"rollback of {name} accepted: {version} becomes production again{replacing} {accepted}")
        if args.no_wait:
            ctx.print(f"follow it: {watch_hint}")
            return EXIT_OK
    if not version:
        raise ctx.fail(f"the API's answer names no version to follow; see: mmedeploy status {name}", EXIT_INVALID)
    try:
        return _follow(args, ctx, target, version, revisions.get(version), watch_hint, answer.as_json())
    except KeyboardInterrupt:
        raise ctx.fail(f"stopped waiting; the {_WHAT[args.command]} goes on: {watch_hint}", Exit.INTERRUPTED) from None


_WHAT = {"promote": "promotion", "rollback": "rollback", "rollout": "rollout"}


def _follow(
    args: argparse.Namespace,
    ctx: Context,
    target: DeploymentTarget,
    version: str,
    baseline: int | None,
    watch_hint: str,
    accepted: dict[str, Any],
    on_read: Callable[[ModelVersion, float], None] | None = None,
) -> int:
    """Follow ``version`` until its promotion (or rollback, or rollout) ends, printing each history
    entry once (and whatever ``on_read`` prints of each read); the exit code, or CommandError."""
    from mmedeploy.follow import HistoryFeed, PromotionEnding, follow_promotion
    from mmedeploy.registry_client import RegistryUnavailable, version_reader
    from mmedeploy.status_view import history_line

    name, out = args.name, ctx.out
    what = _WHAT[args.command]
    spinner = out.status(f"waiting for {name} {version}") if out.is_terminal and not args.json else None
    # each status change once, as it is seen, after the elapsed seconds; with no baseline, from
    # the first read's latest
    feed = HistoryFeed(out, lambda entry, elapsed: history_line(entry, lead=f"{elapsed:7.1f} s  "), after=baseline)

    fetch = version_reader(target, name, version)

    def show(record: ModelVersion | None, elapsed: float) -> None:
        if record is None or args.json:
            return
        feed(record, elapsed)
        if on_read is not None:
            on_read(record, elapsed)
        if spinner is not None:
            spinner.update(
                f"{name} {version} is {record.status.value}: {elapsed:.0f} s of {args.timeout:g} s "
                f"(Ctrl-C stops waiting, not the {what})"
            )

    with spinner if spinner is not None else nullcontext():
        result = follow_promotion(
            fetch,
            show,
            baseline,
            interval=args.interval,
            timeout=args.timeout,
            retry_on=(RegistryUnavailable,),
        )
    record = result.record
    if args.json:
        print(
            dumps(
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
    if result.outcome is PromotionEnding.PRODUCTION:
        if not args.json:
            again = " again" if args.command == "rollback" else ""
            ctx.print(f"{name} {version} is PRODUCTION{again} ({took})")
        return EXIT_OK
    if result.outcome is PromotionEnding.FAILED and record is not None:
        raise ctx.fail(f"{name} {version} is {record.status.value} ({took}){reason}", EXIT_INVALID)
    if result.outcome is PromotionEnding.RETIRED:
        kept = f"; {accepted['from_version']} stays production" if accepted.get("from_version") else ""
        raise ctx.fail(f"{name} {version} is RETIRED again ({took}){reason}{kept}", EXIT_INVALID)
    if record is None:
        raise ctx.fail(f"{name} {version} was not found in the registry within {args.timeout:g} s", EXIT_INVALID)
    raise ctx.fail(
        f"{name} {version} is still {record.status.value} after {args.timeout:g} s; "
        f"the {what} goes on: watch it with: {watch_hint}",
        EXIT_INVALID,
    )


# -- canary ----------------------------------------------------------------------------------------
def _answered(args: argparse.Namespace, ctx: Context, target: DeploymentTarget, answer: ApiAnswer) -> bool:
    """An admin call's answer: --json prints it (with its http_status); a refusal ends the command
    (exit 1, the API's error). True when nothing is left to print (--json)."""
    if args.json:
        print(dumps(answer.as_json()))
    if not answer.accepted:
        raise ctx.refused(answer, target, "admin")
    return bool(args.json)


def cmd_canary(args: argparse.Namespace, ctx: Context) -> int:
    from chalicelib.adapters.rollout_text import percent
    from mmedeploy.admin_api import end_canary, request_canary

    if args.stop and (args.version is not None or args.weight is not None):
        raise ctx.fail(f"--stop ends the canary: give only NAME (mmedeploy canary {args.name} --stop)")
    if not args.stop and (args.version is None or args.weight is None):
        raise ctx.fail("give NAME VERSION --weight W to start a canary, or NAME --stop to end one")
    target = ctx.target(args.state_dir)
    if args.stop:
        answer = end_canary(target, args.name)
    else:
        answer = request_canary(target, args.name, args.version, args.weight)
    if _answered(args, ctx, target, answer):
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
        ctx.print(f"{name}: canary {version} ended (it had {share} of traffic); production {production} takes all")
    else:
        ctx.print(f"{name}: {share} of traffic -> {version} (production {production})")
        ctx.print(f"end it: mmedeploy canary {name} --stop{target_option(args)}")
    return EXIT_OK


# -- rollout ---------------------------------------------------------------------------------------
def cmd_rollout(args: argparse.Namespace, ctx: Context) -> int:
    """``rollout NAME VERSION [options]`` starts one; ``rollout pause|resume|abort NAME`` controls
    the one running. The control form is two words, the first an action and the second a model
    name (a version, ``1.0``, never is one)."""
    from chalicelib.domain.naming import NAME_PATTERN, VERSION_PATTERN

    first, second = args.first, args.second
    if first in CONTROLS and NAME_PATTERN.match(second):
        return _control_rollout(args, ctx, first, second)
    if not NAME_PATTERN.match(first):
        raise ctx.fail(
            f"'{first}' is not a model name (1-63 letters, digits, '_' or '-', starting with a letter or digit)"
        )
    if not VERSION_PATTERN.match(second):
        control = f"; to {first} a rollout: mmedeploy rollout {first} NAME" if first in CONTROLS else ""
        raise ctx.fail(
            f"'{second}' is not a version (1 to 3 dot-separated numbers, e.g. 2 or 1.2.0): give NAME VERSION "
            f"to start a rollout, or pause|resume|abort NAME{control}"
        )
    return _start_rollout(args, ctx, first, second)


def rollout_options(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    """The request's body: the options given (the policy's fields), checked as the API checks them
    so that a bad value is a usage error here (exit 2) and nothing is sent."""
    from chalicelib.domain.errors import RolloutPolicyInvalid
    from chalicelib.domain.rollout.policy import overrides_from

    body = {o.field: getattr(args, o.field) for o in ROLLOUT_OPTIONS if getattr(args, o.field) is not None}
    try:
        overrides_from(body)
    except RolloutPolicyInvalid as exc:
        message = exc.message
        for option in ROLLOUT_OPTIONS:  # the option the user typed, not the API's field
            message = re.sub(rf"\b{option.field}(?=[:\[]| is )", option.flag, message)
        raise ctx.fail(message) from None
    return {key: list(value) if isinstance(value, tuple) else value for key, value in body.items()}


def _start_rollout(args: argparse.Namespace, ctx: Context, name: str, version: str) -> int:
    from mmedeploy.admin_api import request_rollout
    from mmedeploy.registry_client import find_version

    body = rollout_options(args, ctx)
    target = ctx.target(args.state_dir)
    found = None if args.no_wait else find_version(target, name, version)
    answer = request_rollout(target, name, version, body)
    if not answer.accepted:
        if args.json:
            print(dumps(answer.as_json()))
        refused = ctx.refused(answer, target, "admin")
        if answer.http_status == 404:  # no such model or version
            refused.exit = Exit.NOT_FOUND
        raise refused
    document = answer.document
    version = str(document.get("version") or version)
    policy = _policy_of(document)
    watch_hint = f"mmedeploy status {name} {version} --watch{target_option(args)}"
    if args.json and args.no_wait:
        print(dumps(answer.as_json()))
        return EXIT_OK
    if not args.json:
        from chalicelib.adapters.rollout_text import policy_line

        production = document.get("production") or "?"
        ctx.print(
            f"rollout of {name} {version} accepted ({document.get('status') or 'accepted'}): "
            f"judged against production {production}"
        )
        if policy is not None:
            ctx.print(f"  {policy_line(policy)}")
        if args.no_wait:
            ctx.print(
                f"follow it: {watch_hint}; pause, resume or abort it: mmedeploy rollout pause|resume|abort {name}"
            )
            return EXIT_OK
    if args.timeout is None:
        bakes = (len(policy.steps) - 1) * policy.bake_seconds if policy is not None else 3600
        args.timeout = float(bakes) + FOLLOW_MARGIN_S
    args.name = name
    try:
        return _follow(
            args, ctx, target, version, found.revision if found else None, watch_hint, answer.as_json(), _steps(ctx)
        )
    except KeyboardInterrupt:
        raise ctx.fail(f"stopped waiting; the rollout goes on: {watch_hint}", Exit.INTERRUPTED) from None


def _steps(ctx: Context) -> Callable[[ModelVersion, float], None]:
    """Prints the rollout's step and latest reading whenever one of them changes (or a pause)."""
    from chalicelib.domain.lifecycle import Status
    from mmedeploy.status_view import rollout_line

    seen: list[tuple[object, ...]] = []

    def show(record: ModelVersion, elapsed: float) -> None:
        run = record.promotion.rollout if record.promotion else None
        if run is None or record.status is not Status.PROMOTING:
            return
        key = (run.step, run.paused_by, run.last.at if run.last else None)
        if key not in seen[-1:]:
            seen.append(key)
            ctx.out.print(rollout_line(run, lead=f"{elapsed:7.1f} s  "), soft_wrap=True)

    return show


def _policy_of(document: dict[str, Any]) -> RolloutPolicy | None:
    """The answer's resolved policy (a RolloutPolicy), or None where it has none this CLI reads."""
    from pydantic import ValidationError

    from chalicelib.domain.rollout.policy import RolloutPolicy

    try:
        return RolloutPolicy.model_validate(document.get("policy"))
    except ValidationError:
        return None


def _control_rollout(args: argparse.Namespace, ctx: Context, action: str, name: str) -> int:
    from chalicelib.adapters.rollout_text import step_line
    from chalicelib.domain.rollout.progress import RolloutRun
    from mmedeploy.admin_api import control_rollout

    given = [option.flag for option in ROLLOUT_OPTIONS if getattr(args, option.field) is not None]
    given += [option for option, on in (("--no-wait", args.no_wait), ("--timeout", args.timeout)) if on]
    if given:
        raise ctx.fail(
            f"{', '.join(given)}: options of a rollout being started (mmedeploy rollout NAME VERSION ...); "
            f"{action} takes only NAME (mmedeploy rollout {action} {name})"
        )
    target = ctx.target(args.state_dir)
    answer = control_rollout(target, name, action)
    if _answered(args, ctx, target, answer):
        return EXIT_OK
    document = answer.document
    version = document.get("version") or "?"
    production = document.get("production") or "?"
    said = str(document.get("action") or action)
    try:
        run: RolloutRun | None = RolloutRun.model_validate(document.get("rollout"))
    except ValueError:
        run = None
    where = f" ({step_line(run)})" if run is not None and action != "abort" else ""
    ctx.print(f"{name} {version}: {said}{where}; production {production}")
    if action == "abort":
        ctx.print(f"{name} {version} is {document.get('status') or 'ROLLED_BACK'}: production {production} unchanged")
    elif run is not None and run.paused_by:
        ctx.print(f"resume it: mmedeploy rollout resume {name}{target_option(args)}")
    return EXIT_OK
