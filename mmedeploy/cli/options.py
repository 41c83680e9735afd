"""Options more than one command takes, declared once (argparse parent parsers), the argument
types, and the parser class that turns usage errors into exit code 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from chalicelib.inference.api_contract import MAX_PAGE
from mmedeploy.cli.errors import EXIT_USAGE, epilog
from mmedeploy.local import DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from chalicelib.domain.validation.triton_release import TritonVersion


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"mmedeploy: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def add_command(
    commands: Any, name: str, help: str, intro: str = "", parents: tuple[argparse.ArgumentParser, ...] = ()
) -> argparse.ArgumentParser:
    """A subcommand whose help ends with its exit codes (from the exit-code table)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        epilog=epilog(name, intro),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    return parser


# -- the shared options: parent parsers -------------------------------------------------------------
TARGET_HELP = (
    "the target to act on (mmedeploy target list); default: $MMEDEPLOY_TARGET, else the one "
    "'mmedeploy target use' chose, else the running local stack"
)


def state_dir(targeted: bool = True) -> argparse.ArgumentParser:
    """``--state-dir DIR``: which local stack (every command that talks to one); with ``targeted``,
    ``--target NAME`` too: which target (also accepted before the command, ``mmedeploy --target NAME``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"the local stack's state directory: stack.json, state, logs ({DEFAULT_STATE_DIR}, "
        "else the one running stack, found from any folder)",
    )
    if targeted:
        # SUPPRESS: unset here must not hide `mmedeploy --target NAME` given before the command
        parent.add_argument("--target", metavar="NAME", default=argparse.SUPPRESS, help=TARGET_HELP)
    return parent


def following(interval: float, timeout: float, watch: bool) -> argparse.ArgumentParser:
    """``--interval S --timeout S``: how a command follows a version (``status --watch``, and
    ``promote``/``rollback`` unless ``--no-wait``)."""
    parent = argparse.ArgumentParser(add_help=False)
    reads = "seconds between reads with --watch" if watch else "seconds between reads"
    parent.add_argument(
        "--interval", type=positive_seconds, default=interval, metavar="S", help=f"{reads} ({interval:g})"
    )
    parent.add_argument(
        "--timeout",
        type=positive_seconds,
        default=timeout,
        metavar="S",
        help=f"give up {'watching' if watch else 'waiting'} after this many seconds, exit 1 ({timeout:g})",
    )
    return parent


# -- argument types --------------------------------------------------------------------------------
def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def weight(text: str) -> float:
    """A canary's share of the traffic: a fraction (0.1) or a percentage (10%), strictly between 0 and 1."""
    stripped = text.strip()
    try:
        value = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a weight: give a fraction (0.1) or a percentage (10%)"
        ) from None
    if not 0 < value < 1:
        hint = f" (did you mean {stripped}%?)" if not stripped.endswith("%") and 1 < value < 100 else ""
        raise argparse.ArgumentTypeError(
            f"{text} is not a share of the traffic: the weight must be more than 0 and less than 1 "
            f"(0% to 100%, both excluded){hint}"
        )
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> int:
    """A rollout's duration: whole seconds (``600``), or with a unit: ``30s``, ``10m``, ``1h``, ``1.5m``."""
    stripped = text.strip().lower()
    unit = _DURATION_UNITS.get(stripped[-1:], 0)
    try:
        value = float(stripped[:-1] if unit else stripped) * (unit or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a duration: give seconds (600) or a number with s, m or h (30s, 10m, 1h)"
        ) from None
    if not (value > 0 and value.is_integer()):  # nan and inf are neither
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of seconds above 0")
    return int(value)


def percent_steps(text: str) -> tuple[float, ...]:
    """A rollout's steps: canary weights in percent, comma-separated, each with or without ``%``
    (``5,25,50,100`` or ``5%,25%,50%,100%``). Whether they rise to 100 is the policy's check."""
    steps: list[float] = []
    for part in text.split(","):
        number = part.strip().removesuffix("%").strip()
        try:
            steps.append(float(number))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{part.strip()}' in '{text}' is not a percentage: give the weights in percent, "
                "comma-separated, e.g. 5,25,50,100"
            ) from None
    return tuple(steps)


def page_size(text: str) -> int:
    size = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= size <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"'{text}' is not a page size from 1 to {MAX_PAGE}")
    return size


def since(text: str) -> int:
    from mmedeploy.function_logs import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def triton_version(text: str) -> TritonVersion:
    """``--triton-version``: 2.N[.P], or the container release YY.MM of the endpoints' image."""
    from chalicelib.domain.validation.triton_release import TritonVersion  # only when given

    try:
        return TritonVersion.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_triton_version(parser: argparse.ArgumentParser) -> None:
    """``--triton-version`` of the commands that validate (validate, package)."""
    parser.add_argument(
        "--triton-version",
        type=triton_version,
        metavar="X",
        help="the Triton version the endpoints run (2.N, or the image's container release YY.MM): config fields "
        "newer than it are errors (default: the template's image, 24.09: Triton 2.50)",
    )
