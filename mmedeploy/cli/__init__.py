"""The ``mmedeploy`` command line: one module per command group, the options several commands
share declared once (:mod:`.options`), and the exit codes in one table (:mod:`.errors`) that
:func:`main` applies to whatever a command raises.

- :mod:`.pipeline`: ``validate``, ``package``, ``push``, ``status``
- :mod:`.decisions`: ``approve``, ``decline`` (the Slack buttons, without Slack)
- :mod:`.admin`: ``promote``, ``rollback``, ``canary``, ``rollout``
- :mod:`.serving`: ``invoke``, ``models``
- :mod:`.local_stack`: ``up``, ``down``, ``demo``, ``logs``
- :mod:`.targets`: ``target add|list|show|use|remove|login``
- :mod:`.doctor`: ``doctor`` (a target checked end to end)
- :mod:`.completion`: ``completion bash|zsh|tcsh``

Commands act on a :class:`~mmedeploy.target.DeploymentTarget`: the one ``--target`` (before or
after the command), ``--state-dir``, ``MMEDEPLOY_TARGET`` or ``target use`` names, else the running
local stack (:func:`mmedeploy.target.resolve_target`), or the one given to :func:`main` (tests,
other programs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from rich.console import Console

from mmedeploy import __version__
from mmedeploy.cli import admin, completion, decisions, doctor, local_stack, options, pipeline, serving, targets
from mmedeploy.cli.context import Context, plain
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, Exit, exit_for, internal_error
from mmedeploy.cli.options import Parser

if TYPE_CHECKING:
    from mmedeploy.target import DeploymentTarget

__all__ = ["EXIT_INVALID", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_USAGE", "Exit", "build_parser", "main"]

GROUPS = (pipeline, local_stack, decisions, admin, serving, targets, doctor, completion)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mmedeploy", description="Deploy Triton models to SageMaker multi-model endpoints.")
    parser.add_argument("--version", action="version", version=f"mmedeploy {__version__}")
    parser.add_argument("--target", metavar="NAME", help=options.TARGET_HELP)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log each HTTP request (method, URL, status; never headers or tokens) to stderr, and show "
        "the traceback of an unexpected error (also MMEDEPLOY_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(commands)
    # the usage line names the commands listed in the help, not the hidden deprecated names
    listed = [choice.dest for choice in commands._choices_actions]
    commands.metavar = "{" + ",".join(listed) + "}"
    return parser


def main(
    argv: list[str] | None = None,
    *,
    target: DeploymentTarget | None = None,
    out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Run one command; its exit code. ``target`` is where the commands act (default: the local
    stack ``--state-dir`` names); ``out`` and ``err`` are the consoles they print to."""
    out = out or Console()
    err = err or Console(stderr=True)
    args = argparse.Namespace()
    prog = "mmedeploy"
    try:
        args = build_parser().parse_args(argv)
        prog = f"mmedeploy {args.command}"
        if args.debug or os.environ.get("MMEDEPLOY_DEBUG"):
            _log_requests()
        return int(args.handler(args, Context(out, err, prog, target, getattr(args, "target", None))))
    except SystemExit as exc:  # argparse: --help, --version, a usage error (already printed)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except BaseException as exc:
        known = exit_for(exc, prog, args)
        if known is not None:
            code, message = known
            plain(err, message)
            return int(code)
        if getattr(args, "debug", False) or os.environ.get("MMEDEPLOY_DEBUG") or not isinstance(exc, Exception):
            raise
        plain(err, internal_error(exc))
        return EXIT_USAGE


def _log_requests() -> None:
    """--debug: urllib3's request lines (boto3's and the API client's: method, URL, status) and
    mmedeploy's own debug logs. Not botocore's: its debug logs carry signed headers and session
    tokens."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for name in ("urllib3.connectionpool", "mmedeploy"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
