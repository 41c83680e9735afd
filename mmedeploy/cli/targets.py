"""``mmedeploy target``: the stacks the commands act on. ``add`` names a deployed CloudFormation
stack (with its region and AWS profile), ``list``, ``show``, ``use`` and ``remove`` manage them,
``login`` stores a target's API tokens (:mod:`mmedeploy.tokens`). ``local``, the running local
stack, is always a target."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, dumps
from mmedeploy.cli.errors import Exit
from mmedeploy.local import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from mmedeploy.target import DeploymentTarget
    from mmedeploy.target_config import TargetConfig, TargetEntry
    from mmedeploy.tokens import Kind

INTRO = """\
A target is a deployed stack: its CloudFormation outputs name the API, the buckets, the registry
table, the state machines and the endpoints, read when a command runs with boto3's standard
credentials (the target's --profile, SSO, AWS_* variables, AWS_ENDPOINT_URL, instance roles).
'local' is the running local stack. A command acts on --target NAME, else MMEDEPLOY_TARGET, else
the target 'target use' chose, else the local stack. Targets are kept in the user's config
directory (MMEDEPLOY_CONFIG_DIR overrides it); tokens come from MMEDEPLOY_API_TOKEN and
MMEDEPLOY_ADMIN_TOKEN, or from 'target login' (the OS keyring, else a file only you can read).

  mmedeploy target add staging --stack mmedeploy-staging --region eu-west-1 --profile ml-staging
  mmedeploy target login staging
  mmedeploy --target staging status fraud
"""


def register(commands: Any) -> None:
    target = options.add_command(commands, "target", "add, list, show, choose and log in to deployed stacks", INTRO)
    actions = target.add_subparsers(dest="action", required=True, parser_class=options.Parser)

    add = actions.add_parser("add", help="add a deployed stack as a target, checking its outputs")
    add.add_argument("name", metavar="NAME", help="the target's name (letters, digits, '.', '_', '-')")
    add.add_argument("--stack", required=True, metavar="STACK_NAME", help="the CloudFormation stack's name")
    add.add_argument("--region", metavar="R", help="its AWS region (default: the profile's or AWS_REGION)")
    add.add_argument("--profile", metavar="P", help="the AWS profile to use (default: boto3's default chain)")
    add.add_argument("--replace", action="store_true", help="replace a target of the same name")
    add.add_argument("--no-check", action="store_true", help="do not read the stack's outputs now")
    add.set_defaults(handler=cmd_add)

    listed = actions.add_parser("list", help="the targets, the one in use marked *")
    listed.add_argument("--json", action="store_true", help="print JSON")
    listed.set_defaults(handler=cmd_list)

    show = actions.add_parser("show", help="a target and its stack's outputs (never its tokens)")
    show.add_argument("name", metavar="NAME", nargs="?", help="default: the target commands use now")
    show.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=argparse.SUPPRESS)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_show)

    use = actions.add_parser("use", help="act on this target by default ('local': the local stack)")
    use.add_argument("name", metavar="NAME")
    use.set_defaults(handler=cmd_use)

    remove = actions.add_parser("remove", help="forget a target and its stored tokens")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=cmd_remove)

    login = actions.add_parser(
        "login",
        help="store a target's API tokens (prompted; from stdin, one a line, when not a terminal)",
        description="Store NAME's invoke token and admin token: the OS keyring, else a file only you can read. "
        "Each is prompted without echo (leave one empty to keep it as it is); from a pipe, the first "
        "line is the invoke token and the second the admin token.",
    )
    login.add_argument("name", metavar="NAME")
    login.set_defaults(handler=cmd_login)


def _config(ctx: Context) -> TargetConfig:
    from mmedeploy.target_config import TargetConfig, TargetConfigError

    try:
        return TargetConfig.load()
    except TargetConfigError as exc:
        raise ctx.fail(str(exc)) from exc


def _entry(ctx: Context, config: TargetConfig, name: str) -> TargetEntry:
    from mmedeploy.target_config import TargetConfigError

    try:
        return config.get(name)
    except TargetConfigError as exc:
        raise ctx.fail(str(exc)) from exc


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.target import TargetUnavailable, deployed_target
    from mmedeploy.target_config import TargetConfigError, TargetEntry

    config = _config(ctx)
    entry = TargetEntry(name=args.name, stack=args.stack, region=args.region, profile=args.profile)
    try:
        config.add(entry, replace=args.replace)
    except TargetConfigError as exc:
        raise ctx.fail(str(exc)) from exc
    if not args.no_check:
        try:
            resolved = deployed_target(entry)
        except TargetUnavailable as exc:
            raise ctx.fail(f"{exc} (nothing was added; --no-check adds it unchecked)") from exc
        ctx.print(f"target {entry.name}: {entry.where()}, API {resolved.api_url}")
    config.save()
    ctx.print(f"added target {entry.name} to {config.path}")
    ctx.print(f"log in (its API tokens): mmedeploy target login {entry.name}")
    ctx.print(f"use it: mmedeploy --target {entry.name} status NAME, or by default: mmedeploy target use {entry.name}")
    return int(Exit.OK)


def _in_use(ctx: Context) -> str:
    from mmedeploy.target import TargetUnavailable, chosen_target

    try:
        return chosen_target(DEFAULT_STATE_DIR, ctx.target_name)
    except TargetUnavailable as exc:
        raise ctx.fail(str(exc)) from exc


def _local_stack() -> Path | None:
    from mmedeploy.target import TargetUnavailable, find_local_stack

    try:
        return find_local_stack()
    except TargetUnavailable:
        return None


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.target_config import LOCAL

    config = _config(ctx)
    in_use = _in_use(ctx)
    local = _local_stack()
    if args.json:
        rows: list[dict[str, Any]] = [
            {"name": LOCAL, "in_use": in_use == LOCAL, "state_dir": str(local) if local else None}
        ]
        rows += [
            {"name": e.name, "in_use": in_use == e.name, "stack": e.stack, "region": e.region, "profile": e.profile}
            for e in config.targets.values()
        ]
        ctx.print(dumps({"targets": rows, "config": str(config.path)}))
        return int(Exit.OK)
    running = f"the local stack ({local})" if local else "the local stack (none runs)"
    ctx.print(f"{'*' if in_use == LOCAL else ' '} {LOCAL:<16} {running}")
    for entry in config.targets.values():
        ctx.print(f"{'*' if in_use == entry.name else ' '} {entry.name:<16} {entry.where()}")
    if in_use != LOCAL and in_use not in config.targets:
        ctx.note(f"{ctx.prog}: the target in use, {in_use}, is not defined: mmedeploy target add {in_use} ...")
    return int(Exit.OK)


def _token_lines(target: DeploymentTarget) -> dict[Kind, dict[str, Any]]:
    """Whether each token is set and where from: never the token."""
    from mmedeploy.target_config import LOCAL
    from mmedeploy.tokens import KINDS, TokenStore

    if target.name == LOCAL:
        return {kind: {"set": True, "source": "from the local stack's stack.json"} for kind in KINDS}
    store = TokenStore()
    tokens = {kind: store.get(target.name, kind) for kind in KINDS}
    return {kind: {"set": token.value is not None, "source": token.source} for kind, token in tokens.items()}


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.target import TargetUnavailable, resolve_target
    from mmedeploy.target_config import LOCAL
    from mmedeploy.tokens import WHAT

    name = args.name or _in_use(ctx)
    config = _config(ctx)
    entry = None if name == LOCAL else _entry(ctx, config, name)
    try:
        target = resolve_target(args.state_dir, name)
    except TargetUnavailable as exc:
        raise ctx.fail(f"{name}: {exc}") from exc
    try:
        tokens = _token_lines(target)
    except OSError as exc:
        raise ctx.fail(f"{name}: {exc}") from exc
    document: dict[str, Any] = {
        "name": name,
        "in_use": name == _in_use(ctx),
        "stack": entry.stack if entry else None,
        "region": target.region,
        "profile": entry.profile if entry else None,
        "api_url": target.api_url,
        "staging_bucket": target.staging_bucket,
        "registry_table": target.registry_table,
        "outputs": dict(target.outputs),
        "tokens": tokens,
    }
    if args.json:
        ctx.print(dumps(document))
        return int(Exit.OK)
    ctx.print(f"{name}: {target.description}{' (in use)' if document['in_use'] else ''}")
    if entry is not None:
        ctx.print(f"  {'profile':<26} {entry.profile or '(the default credential chain)'}")
    for key, value in sorted(target.outputs.items()):
        ctx.print(f"  {key:<26} {value}")
    for kind, token in tokens.items():
        state = f"set ({token['source']})" if token["set"] else f"not set: mmedeploy target login {name}"
        ctx.print(f"  {WHAT[kind]:<26} {state}")
    return int(Exit.OK)


def cmd_use(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.target_config import LOCAL, TargetConfigError

    config = _config(ctx)
    try:
        config.use(args.name)
    except TargetConfigError as exc:
        raise ctx.fail(str(exc)) from exc
    config.save()
    what = "the running local stack" if args.name == LOCAL else config.targets[args.name].where()
    ctx.print(f"commands now act on {args.name}: {what} (--target or MMEDEPLOY_TARGET still choose another)")
    return int(Exit.OK)


def cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.tokens import TokenStore

    config = _config(ctx)
    entry = _entry(ctx, config, args.name)
    config.remove(args.name)
    config.save()
    try:
        TokenStore().forget(args.name)
    except OSError as exc:
        raise ctx.fail(f"removed target {entry.name}, but not its stored tokens: {exc}") from exc
    ctx.print(f"removed target {entry.name} ({entry.where()}) and its stored tokens")
    return int(Exit.OK)


def _read_tokens(interactive: bool) -> dict[Kind, str]:
    from mmedeploy.tokens import KINDS, WHAT

    given: dict[Kind, str] = {}
    for kind in KINDS:
        prompt = f"{WHAT[kind]} (empty: leave as it is): "
        value = getpass.getpass(prompt) if interactive else sys.stdin.readline()
        if value.strip():
            given[kind] = value.strip()
    return given


def cmd_login(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.target_config import LOCAL
    from mmedeploy.tokens import WHAT, TokenStore

    if args.name == LOCAL:
        raise ctx.fail("the local stack's tokens come from its stack.json: there is nothing to log in to")
    _entry(ctx, _config(ctx), args.name)
    tokens = _read_tokens(sys.stdin.isatty())
    if not tokens:
        raise ctx.fail("no token given: nothing was stored")
    try:
        where = TokenStore().store(args.name, tokens)
    except OSError as exc:
        raise ctx.fail(f"could not store the tokens: {exc}") from exc
    stored = " and ".join(WHAT[kind] for kind in tokens)
    ctx.print(f"stored the {stored} of {args.name} in {where}")
    return int(Exit.OK)
