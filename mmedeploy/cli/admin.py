"""The admin routes: ``promote`` a version and ``rollback`` (then follow the version until the
promotion ends), ``canary`` (a share of the traffic to a candidate). They need the admin token."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, dumps, target_option
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, Exit

if TYPE_CHECKING:
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
        what = "promotion" if args.version is not None else "rollback"
        raise ctx.fail(f"stopped waiting; the {what} goes on: {watch_hint}", Exit.INTERRUPTED) from None


def _follow(
    args: argparse.Namespace,
    ctx: Context,
    target: DeploymentTarget,
    version: str,
    baseline: int | None,
    watch_hint: str,
    accepted: dict[str, Any],
) -> int:
    from chalicelib.domain.records import ModelVersion
    from mmedeploy.follow import HistoryFeed, PromotionEnding, follow_promotion
    from mmedeploy.registry_client import RegistryUnavailable, version_reader
    from mmedeploy.status_view import history_line

    name, out = args.name, ctx.out
    what = "promotion" if args.command == "promote" else "rollback"
    spinner = out.status(f"waiting for {name} {version}") if out.is_terminal and not args.json else None
    # each status change once, as it is seen, after the elapsed seconds; with no baseline, from
    # the first read's latest
    feed = HistoryFeed(out, lambda entry, elapsed: history_line(entry, lead=f"{elapsed:7.1f} s  "), after=baseline)

    fetch = version_reader(target, name, version)

    def show(record: ModelVersion | None, elapsed: float) -> None:
        if record is None or args.json:
            return
        feed(record, elapsed)
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
def cmd_canary(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.admin_api import end_canary, request_canary
    from mmedeploy.status_view import percent

    if args.stop and (args.version is not None or args.weight is not None):
        raise ctx.fail(f"--stop ends the canary: give only NAME (mmedeploy canary {args.name} --stop)")
    if not args.stop and (args.version is None or args.weight is None):
        raise ctx.fail("give NAME VERSION --weight W to start a canary, or NAME --stop to end one")
    target = ctx.target(args.state_dir)
    if args.stop:
        answer = end_canary(target, args.name)
    else:
        answer = request_canary(target, args.name, args.version, args.weight)
    if args.json:
        print(dumps(answer.as_json()))
    if not answer.accepted:
        raise ctx.refused(answer, target, "admin")
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
        ctx.print(f"{name}: canary {version} ended (it had {share} of traffic); production {production} takes all")
    else:
        ctx.print(f"{name}: {share} of traffic -> {version} (production {production})")
        ctx.print(f"end it: mmedeploy canary {name} --stop{target_option(args)}")
    return EXIT_OK
