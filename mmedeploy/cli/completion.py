"""``mmedeploy completion SHELL``: the shell completion script, generated from the parser itself
(shtab), so it names every command and option this version has."""

from __future__ import annotations

import argparse
from typing import Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context

SHELLS = ("bash", "zsh", "tcsh")
INTRO = """\
Load it in your shell's start-up file:

  eval "$(mmedeploy completion bash)"                                   # ~/.bashrc
  mmedeploy completion zsh > "${fpath[1]}/_mmedeploy"                    # zsh, once
"""


def register(commands: Any) -> None:
    parser = options.add_command(commands, "completion", "print the shell completion script", INTRO)
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(handler=cmd_completion)


def cmd_completion(args: argparse.Namespace, ctx: Context) -> int:
    import shtab

    from mmedeploy.cli import build_parser

    # printed as is: rich would read the script's brackets as markup
    ctx.out.file.write(shtab.complete(build_parser(), shell=args.shell))
    return 0
