"""What a command runs with: its consoles, its name for messages, and the target it acts on
(injected by the caller of :func:`mmedeploy.cli.main`, else resolved from ``--target``,
``--state-dir`` and the environment by :func:`mmedeploy.target.resolve_target`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from mmedeploy.cli.errors import CommandError, Exit, state_dir_option, target_option

if TYPE_CHECKING:
    from mmedeploy.admin_api import ApiAnswer
    from mmedeploy.target import DeploymentTarget


def aws_errors() -> tuple[type[Exception], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (Boto3Error, BotoCoreError, ClientError)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)


def say(line: str) -> None:
    # plain, unwrapped lines: URLs and paths must stay copyable
    print(line, flush=True)


def plain(console: Console, line: str) -> None:
    """A line as it is: no markup (messages quote options like [--state-dir DIR]), no emoji codes
    (an ARN's ``:secret:``), no inserted line breaks."""
    console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)


@dataclass
class Context:
    out: Console
    err: Console
    prog: str  # "mmedeploy status": what messages start with
    injected: DeploymentTarget | None = None
    target_name: str | None = None  # --target NAME

    def target(self, state_dir: Path) -> DeploymentTarget:
        """The injected target, else the one ``--target``, ``--state-dir``, ``MMEDEPLOY_TARGET``
        or ``target use`` names, else the running local stack (TargetUnavailable if none)."""
        if self.injected is not None:
            return self.injected
        from mmedeploy.target import resolve_target

        return resolve_target(state_dir, self.target_name)

    def print(self, line: str) -> None:
        plain(self.out, line)

    def note(self, line: str) -> None:
        """A line on stderr that does not end the command."""
        plain(self.err, line)

    def fail(self, message: str, exit: Exit = Exit.USAGE) -> CommandError:
        """``raise ctx.fail(...)``: end the command with ``exit``, printing ``<prog>: message``."""
        return CommandError(f"{self.prog}: {message}", exit)

    def refused(self, answer: ApiAnswer, target: DeploymentTarget, token: str) -> CommandError:
        """An API refusal: ``error 404: unknown model fraud``, with a hint where one helps; exit 1."""
        code = answer.http_status
        message = f"error {code}: {answer.error}"
        if code in (401, 403):
            message += f" (the API refused the {token} token of {target.description})"
        retry = answer.header("Retry-After")
        if code == 503 and retry:
            message += f"; try again in {retry} s"
        return self.fail(message, Exit.INVALID)


__all__ = ["Context", "aws_errors", "dumps", "plain", "say", "state_dir_option", "target_option"]
