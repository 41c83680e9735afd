"""``approve`` / ``decline``: the Slack buttons on an approval request, without Slack.

Only on the local stack, whose Slack is a sink: on a deployed stack the decision is Slack's (an
approver clicks the request's buttons; the webhook checks Slack's signature and the approver
list), so these commands say so and point an admin at ``mmedeploy promote``, which approves a
version awaiting approval through the API with the admin token. A target is the local stack when
it carries the Slack signing secret: only the local stack's does (a deployed stack's stays in
Secrets Manager, out of the CLI's reach).

``reject`` is the former name of ``decline``: a hidden alias that says so on stderr, kept so that
scripts do not break."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, dumps, target_option
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK

if TYPE_CHECKING:
    from chalicelib.domain.approvals import Decision

DECISION_INTRO = """\
On the local stack: sends what Slack sends when the button on the approval request is clicked, a
block_actions interaction signed with the stack's Slack signing secret, to POST
<api_url>/slack/interactions. The approval is the version's (read through the API: see
'mmedeploy status NAME VERSION'). On a deployed stack approvers decide in Slack; an admin
approves with 'mmedeploy promote NAME VERSION' (the admin token).
"""

DEPRECATED = {"reject": "decline"}  # former name -> command: still accepted, hidden from the help
PAST = {"approve": "approved", "decline": "declined"}


def button(command: str) -> Decision:
    """The Slack button a command clicks."""
    from chalicelib.domain.approvals import Decision

    return Decision.APPROVE if command == "approve" else Decision.DECLINE


def register(commands: Any) -> None:
    state_dir = options.state_dir()
    for command in ("approve", "decline"):
        parser = options.add_command(
            commands,
            command,
            f"{command} a staged version, as the Slack button does (a signed Slack interaction)",
            DECISION_INTRO,
            parents=(state_dir,),
        )
        _arguments(parser)
    for former, command in DEPRECATED.items():
        # no help=: not listed among the commands (main leaves it out of the usage line too)
        hidden = commands.add_parser(former, description=f"deprecated: use 'mmedeploy {command}'", parents=[state_dir])
        _arguments(hidden)
        hidden.set_defaults(deprecated_for=command)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument(
        "--user", metavar="SLACK_USER_ID", help="the Slack user who clicks (default: the first approver)"
    )
    parser.add_argument("--json", action="store_true", help="print the webhook's answer and its http_status")
    parser.set_defaults(handler=cmd_decide)


def cmd_decide(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.decision import decided, default_user, send_decision
    from mmedeploy.registry_client import find_approval, find_version

    command = getattr(args, "deprecated_for", None) or args.command
    if command != args.command:
        ctx.note(f"{ctx.prog}: deprecated, use 'mmedeploy {command}' (it does the same)")
    name, version = args.name, args.version
    target = ctx.target(args.state_dir)
    if not target.slack_signing_secret:  # a deployed stack: Slack decides
        raise ctx.fail(
            f"on {target.description} approvals are made in Slack, with the buttons on the approval "
            f"request; an admin can approve without Slack: mmedeploy promote {name} {version}",
            EXIT_INVALID,
        )
    user = args.user or default_user(target)
    if not user:
        raise ctx.fail(f"{target.description} names no Slack approver; give --user SLACK_USER_ID")
    record = find_version(target, name, version)
    if record is None:
        raise ctx.fail(
            f"no version {version} of model {name} in the registry; see: mmedeploy status {name}", EXIT_NOT_FOUND
        )
    if not record.approval_id:
        because = f": {record.reason}" if record.reason else ""
        raise ctx.fail(
            f"no approval was requested for {name} {version}; it is {record.status.value}{because}", EXIT_INVALID
        )
    approval = find_approval(target, name, version)
    answer = send_decision(target, record, button(command), user, approval)
    ok = decided(answer)
    if args.json:
        print(dumps(answer.as_json()))
        return EXIT_OK if ok else EXIT_INVALID
    document = answer.document
    status = document.get("status")
    if ok:
        ctx.print(answer.error)  # the webhook's text, as Slack would show it
        # the status read when the click was taken: the pipeline moves the version on from there
        ctx.print(f"  decided as Slack user {user} while {name} {version} was {status or 'awaiting approval'}")
        ctx.print(f"follow it: mmedeploy status {name} {version} --watch{target_option(args)}")
        return EXIT_OK
    code = answer.http_status
    if code == 200:
        why = f"not {PAST[command]} ({document.get('outcome') or 'refused'}): {answer.error}"
    elif code == 401:
        why = f"the webhook refused the signature (HTTP 401): {answer.error}"
    elif code == 403:
        approvers = ", ".join(target.slack_approver_ids) or "none listed"
        why = f"Slack user {user} may not decide (HTTP 403): {answer.error}; approvers: {approvers}"
    elif code == 400:
        why = f"the webhook found the interaction malformed (HTTP 400): {answer.error}"
    else:
        why = f"the webhook answered HTTP {code}: {answer.error}"
    raise ctx.fail(f"{name} {version}: {why}" + (f"; it is {status}" if status else ""), EXIT_INVALID)
