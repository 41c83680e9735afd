"""``mmedeploy doctor``: check the target end to end (:mod:`mmedeploy.doctor`), one line per check
with the fix to apply; exit 0 where none failed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, dumps
from mmedeploy.cli.errors import Exit

if TYPE_CHECKING:
    from mmedeploy.target import DeploymentTarget

INTRO = """\
Checks, each whatever the others found (a few seconds each at most): the stack's outputs the CLI
needs; the staging bucket sends EventBridge notifications; both endpoints InService; both state
machines ACTIVE; the secrets hold real values, not the template's placeholders (read only where
your credentials may, never printed: else 'skipped'); the API's /health; the invoke token reads
(GET /models) and the admin token is accepted by an admin route that changes nothing (DELETE
/models/mmedeploy-doctor-probe/canary: no such canary, 404); Slack approvers are set.

  mmedeploy doctor --target staging
"""


def register(commands: Any) -> None:
    doctor = options.add_command(
        commands,
        "doctor",
        "check a target end to end: outputs, bucket events, endpoints, state machines, secrets, API, tokens",
        INTRO,
        parents=(options.state_dir(),),
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=cmd_doctor)


def _resolve(args: argparse.Namespace, ctx: Context) -> tuple[DeploymentTarget, str]:
    """The target, resolved with no output required (missing ones are a check's finding), and its stack's name."""
    from mmedeploy.local import STACK_NAME
    from mmedeploy.local.stack import read_stack
    from mmedeploy.target import chosen_target, find_local_stack, resolve_target
    from mmedeploy.target_config import LOCAL, TargetConfig

    if ctx.injected is not None:
        return ctx.injected, STACK_NAME
    name = chosen_target(args.state_dir, ctx.target_name)
    target = resolve_target(args.state_dir, name, required=())
    if name == LOCAL:
        info = read_stack(find_local_stack(args.state_dir))
        return target, info.stack_name if info else STACK_NAME
    return target, TargetConfig.load().get(name).stack


def cmd_doctor(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.doctor import Doctor, aws_client_factory, http_client, run_checks

    target, stack = _resolve(args, ctx)
    findings = run_checks(Doctor(target, stack, aws_client_factory(target), http_client))
    failures = [finding for finding in findings if finding.failed]
    if args.json:
        document = {
            "target": target.name,
            "stack": stack,
            "ok": not failures,
            "checks": [finding.as_json() for finding in findings],
        }
        ctx.print(dumps(document))
    else:
        ctx.print(f"{target.name}: {target.description}")
        width = max(len(finding.check) for finding in findings)
        for finding in findings:
            mark = {"ok": "ok", "failed": "FAILED", "skipped": "skipped"}[finding.status]
            ctx.print(f"  {mark:<7} {finding.check:<{width}}  {finding.detail}")
            if finding.fix:
                ctx.print(f"          {'':<{width}}  fix: {finding.fix}")
        summary = f"{len(failures)} of {len(findings)} checks failed" if failures else "every check passed"
        ctx.print(summary)
    return int(Exit.INVALID if failures else Exit.OK)
