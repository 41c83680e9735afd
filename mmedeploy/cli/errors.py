"""Exit codes, in one place: what each code means for each command (the help epilogs are
rendered from :data:`EXIT_CODES`) and which exception ends a command with which code
(:data:`EXCEPTIONS`, applied by :func:`mmedeploy.cli.main` through :func:`exit_for`).

No command prints a traceback: expected failures print what to do; anything unexpected prints one
line asking for a bug report (with ``MMEDEPLOY_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class Exit(IntEnum):
    OK = 0  # done, valid, found
    INVALID = 1  # invalid, refused, not done, failed, timed out
    USAGE = 2  # usage, I/O or connection error
    NOT_FOUND = 3  # no such model or version
    INTERRUPTED = 130  # Ctrl-C


EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_NOT_FOUND = Exit.OK, Exit.INVALID, Exit.USAGE, Exit.NOT_FOUND


class CommandError(Exception):
    """An expected failure: main prints the message (one line, as it is) and exits with ``exit``."""

    def __init__(self, message: str, exit: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.exit = exit


# -- what each code means, per command: the epilogs and the CLI reference ---------------------------
_NO_STACK = "no local stack"
_DECIDED = {
    Exit.OK: "decided: the version is approved / declined",
    Exit.INVALID: "not decided: no approval was requested, already decided, expired, not awaiting approval, "
    "signature refused (401), the user may not decide (403), malformed (400), or a deployed stack (Slack "
    "decides there; an admin approves with 'mmedeploy promote')",
    Exit.USAGE: f"usage or connection error ({_NO_STACK}, the API does not answer)",
    Exit.NOT_FOUND: "no such model or version",
}


def _admin(done: str) -> dict[Exit, str]:
    return {
        Exit.OK: done,
        Exit.INVALID: "refused by the API (401/403: the admin token was refused), FAILED, RETIRED again, or --timeout",
        Exit.USAGE: f"usage or connection error ({_NO_STACK}, the API does not answer, registry unreadable)",
        Exit.NOT_FOUND: "no such model or version",
        Exit.INTERRUPTED: "Ctrl-C while following: the request goes on",
    }


EXIT_CODES: dict[str, dict[Exit, str]] = {
    "completion": {Exit.OK: "printed", Exit.USAGE: "usage error (a shell it does not know)"},
    "validate": {
        Exit.OK: "valid (with --load: and Triton loaded it and every case passed; with --changed: every folder)",
        Exit.INVALID: "invalid; with --load also: Triton did not load it, a case failed, or --timeout was reached; "
        "with --changed also: a folder not named as a model or a bad model_version.txt",
        Exit.USAGE: "usage or I/O error (unreadable tarball); with --load: it cannot run here (no Triton: install "
        "mmedeploy[local]; a backend the local Triton lacks, such as TensorRT)",
        Exit.INTERRUPTED: "Ctrl-C (or SIGTERM) during --load: Triton and its Python stubs are stopped",
    },
    "package": {
        Exit.OK: "written (valid)",
        Exit.INVALID: "invalid: the findings are shown and nothing is written",
        Exit.USAGE: "usage or I/O error (bad name or version, symbolic link, unreadable source)",
    },
    "push": {
        Exit.OK: "uploaded",
        Exit.INVALID: "invalid: the validation report is shown and nothing is uploaded (--no-validate skips it)",
        Exit.USAGE: f"usage or I/O error (missing or misnamed file, {_NO_STACK}, upload failed)",
        Exit.INTERRUPTED: "Ctrl-C: the upload is aborted",
    },
    "status": {
        Exit.OK: "found (with --watch: settled in AWAITING_APPROVAL, APPROVED, PRODUCTION or RETIRED)",
        Exit.INVALID: "with --watch: settled in REJECTED, FAILED, EXPIRED, DECLINED or ROLLED_BACK, or --timeout "
        "reached",
        Exit.USAGE: f"usage or I/O error ({_NO_STACK}, the API refused or failed the registry read)",
        Exit.NOT_FOUND: "no such model or version (--watch waits for a version not registered yet instead)",
        Exit.INTERRUPTED: "Ctrl-C with --watch: watching stops, the deployment goes on",
    },
    "redeploy": {
        Exit.OK: "started (with --watch: settled in AWAITING_APPROVAL, APPROVED, PRODUCTION or RETIRED)",
        Exit.INVALID: "refused by the API (401/403: the admin token was refused; 409: the version is not FAILED "
        "or EXPIRED, or failed on its own account), or with --watch: settled in REJECTED, FAILED, EXPIRED or "
        "DECLINED, or --timeout reached",
        Exit.USAGE: f"usage or connection error ({_NO_STACK}, the API does not answer)",
        Exit.NOT_FOUND: "no such model or version",
        Exit.INTERRUPTED: "Ctrl-C with --watch: watching stops, the deployment goes on",
    },
    "approve": _DECIDED,
    "decline": _DECIDED,
    "promote": _admin("accepted (--no-wait), or the version is PRODUCTION"),
    "rollback": _admin("accepted (--no-wait), or the previous version is PRODUCTION"),
    "canary": {
        Exit.OK: "started, changed or ended",
        Exit.INVALID: "refused by the API (401/403: the admin token was refused; 404: no such model, version, "
        "production version or canary; 409: the version cannot take traffic)",
        Exit.USAGE: f"usage or connection error (bad weight, {_NO_STACK}, the API does not answer)",
    },
    "rollout": {
        Exit.OK: "accepted (--no-wait), or the version is PRODUCTION; pause, resume, abort: done (or already so)",
        Exit.INVALID: "refused by the API (401/403: the admin token was refused; 400: a policy that does not hold "
        "together; 404: no rollout in progress to pause, resume or abort; 409: it cannot run, the message says "
        "why), ROLLED_BACK (a gate failed, or aborted) or FAILED, or --timeout",
        Exit.USAGE: f"usage or connection error (a bad option or value, {_NO_STACK}, the API does not answer)",
        Exit.NOT_FOUND: "no such model or version",
        Exit.INTERRUPTED: "Ctrl-C while following: the rollout goes on",
    },
    "invoke": {
        Exit.OK: "answered (HTTP 200)",
        Exit.INVALID: "refused or failed by the API (the status and the API's error are printed)",
        Exit.USAGE: "usage or I/O error (FILE unreadable or not a JSON object, no local stack, "
        "the API does not answer)",
    },
    "models": {
        Exit.OK: "listed",
        Exit.INVALID: "refused by the API",
        Exit.USAGE: "usage or connection error",
    },
    "demo": {
        Exit.OK: "every step did what it should",
        Exit.INVALID: "a step did not (it is named)",
        Exit.USAGE: "usage error",
        Exit.INTERRUPTED: "interrupted",
    },
    "target": {
        Exit.OK: "done",
        Exit.USAGE: "usage error: an unknown or invalid target name, or the stack's outputs could not be read "
        "(no such stack, no credentials or region, an output missing), or no token was given to login",
    },
    "doctor": {
        Exit.OK: "every check passed (or could not be checked with your credentials: 'skipped')",
        Exit.INVALID: "a check failed: its line says what to fix",
        Exit.USAGE: "usage error, or no target to check (no local stack runs, an unknown target, the stack's "
        "outputs could not be read)",
    },
    "logs": {
        Exit.OK: "printed (also when there are no events yet)",
        Exit.INVALID: "no such function, or several match (their names are printed), or reading the logs failed",
        Exit.USAGE: "usage error, or no local stack runs",
        Exit.INTERRUPTED: "Ctrl-C with --follow",
    },
}

EPILOG_WIDTH = 100


def exit_codes_epilog(command: str) -> str:
    """The ``exit codes:`` part of ``command``'s help, from :data:`EXIT_CODES`."""
    lines = ["exit codes:"]
    for code, meaning in EXIT_CODES[command].items():
        head = f"  {int(code)}  "
        lines.append(textwrap.fill(meaning, EPILOG_WIDTH, initial_indent=head, subsequent_indent=" " * len(head)))
    return "\n".join(lines) + "\n"


def epilog(command: str, intro: str = "") -> str:
    """A command's help epilog: what it does (``intro``), then its exit codes."""
    return f"{intro}\n{exit_codes_epilog(command)}" if intro else exit_codes_epilog(command)


# -- which exception ends a command with which code ------------------------------------------------
def state_dir_option(state_dir: Path | None) -> str:
    """``--state-dir DIR`` for a command shown to the user, where DIR is not the default."""
    from mmedeploy.local import DEFAULT_STATE_DIR

    return "" if state_dir is None or state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"


def target_option(args: argparse.Namespace) -> str:
    """How a command shown to the user names the target this one acted on: ``--target NAME`` when
    one was given, else ``--state-dir DIR`` where DIR is not the default."""
    target = getattr(args, "target", None)
    return f" --target {target}" if target else state_dir_option(getattr(args, "state_dir", None))


Message = Callable[[BaseException, str, argparse.Namespace], str]  # (exception, prog, args) -> the line


def _as_is(exc: BaseException, prog: str, args: argparse.Namespace) -> str:
    return str(exc)


def _prefixed(exc: BaseException, prog: str, args: argparse.Namespace) -> str:
    return f"{prog}: {exc}"


def _unreachable(exc: BaseException, prog: str, args: argparse.Namespace) -> str:
    return (
        f"{prog}: {exc}; the local stack may not be running or may have stopped: check with "
        f"'mmedeploy status', or (re)start it with: mmedeploy up --detach"
        f"{target_option(args)}"
    )


def _interrupted(exc: BaseException, prog: str, args: argparse.Namespace) -> str:
    return "mmedeploy: interrupted"


@dataclass(frozen=True)
class Rule:
    module: str  # where the exception class lives: looked up only once that module was imported
    name: str
    exit: Exit
    message: Message


# First match wins. A class is found by name in its module only if the module was imported: an
# exception from a module the command never imported cannot have been raised (the CLI starts
# without importing boto3).
EXCEPTIONS: tuple[Rule, ...] = (
    Rule(__name__, "CommandError", Exit.USAGE, _as_is),  # its own exit code
    Rule("mmedeploy.target", "TargetUnavailable", Exit.USAGE, _prefixed),
    Rule("mmedeploy.admin_api", "ApiNotConfigured", Exit.USAGE, _prefixed),
    Rule("mmedeploy.admin_api", "ApiUnreachable", Exit.USAGE, _unreachable),
    Rule("mmedeploy.registry_client", "RegistryReadFailed", Exit.USAGE, _prefixed),
    Rule("builtins", "KeyboardInterrupt", Exit.INTERRUPTED, _interrupted),
)


def exit_for(exc: BaseException, prog: str, args: argparse.Namespace) -> tuple[Exit, str] | None:
    """The exit code and the line to print for ``exc``, or None where no rule knows it."""
    for rule in EXCEPTIONS:
        kind = getattr(sys.modules.get(rule.module), rule.name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            code = exc.exit if isinstance(exc, CommandError) else rule.exit
            return code, rule.message(exc, prog, args)
    return None


def internal_error(exc: BaseException) -> str:
    return (
        f"mmedeploy: internal error ({type(exc).__name__}: {exc}); please report it with "
        "MMEDEPLOY_DEBUG=1 set to include the traceback"
    )
