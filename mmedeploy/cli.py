"""The ``mmedeploy`` command line. Exit codes: 0 ok/valid, 1 invalid, 2 usage or I/O error.

No command prints a traceback: expected failures print what to do; anything unexpected prints
one line asking for a bug report (with ``MMEDEPLOY_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from chalicelib.naming import InvalidArtifactName
from chalicelib.validation.findings import Code
from chalicelib.validation.validator import validate_tarball
from mmedeploy import __version__
from mmedeploy.local import DEFAULT_MME_LOAD_WAIT_S, DEFAULT_MME_MEMORY_MB, DEFAULT_PORT_BASE
from mmedeploy.packaging import InvalidPackage, PackagingError, package
from mmedeploy.report_view import render_report

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"mmedeploy: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmedeploy", description="Deploy Triton models to SageMaker multi-model endpoints.")
    parser.add_argument("--version", action="version", version=f"mmedeploy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="validate a model tarball without extracting it")
    validate.add_argument("tarball", type=Path)
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(handler=cmd_validate)

    pkg = commands.add_parser("package", help="package a Triton model repository as NAME_VERSION.tar.gz")
    pkg.add_argument("source", type=Path, metavar="SRC_DIR")
    pkg.add_argument("--name", required=True)
    pkg.add_argument("--version", required=True)
    pkg.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR")
    pkg.add_argument("--json", action="store_true", help="print the validation report as JSON")
    pkg.set_defaults(handler=cmd_package)

    up = commands.add_parser("up", help="start the local stack (AWS emulator, API, Slack sink)")
    up.add_argument("--detach", action="store_true", help="run in the background and return when ready")
    up.add_argument("--fresh", action="store_true", help="wipe the state kept from earlier runs")
    up.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, help="first of 4 consecutive ports")
    up.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"), help="where stack.json and state live")
    up.add_argument(
        "--mme-memory-mb",
        type=int,
        default=DEFAULT_MME_MEMORY_MB,
        metavar="MB",
        help="memory each local endpoint may fill with models before it unloads the least recently used",
    )
    up.add_argument(
        "--mme-load-wait",
        type=float,
        default=DEFAULT_MME_LOAD_WAIT_S,
        metavar="SECONDS",
        help="how long an invocation waits for a loading model before ModelNotReadyException",
    )
    up.set_defaults(handler=cmd_up)

    down = commands.add_parser("down", help="stop the local stack")
    down.add_argument("--state-dir", type=Path, default=Path(".mmedeploy"))
    down.set_defaults(handler=cmd_down)
    return parser


def cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    path: Path = args.tarball
    if path.is_dir():
        err.print(f"mmedeploy: {path} is a directory; to check a source folder run 'mmedeploy package' on it")
        return EXIT_USAGE
    try:
        with open(path, "rb") as handle:
            report = validate_tarball(handle, path.name)
    except OSError as exc:  # opening failed: missing file, permissions
        err.print(f"mmedeploy: cannot read {path}: {exc.strerror or exc}")
        return EXIT_USAGE
    if any(f.code is Code.ARCHIVE_READ_ERROR for f in report.findings):
        err.print(f"mmedeploy: reading {path} failed: {report.errors[0].message}")
        return EXIT_USAGE
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        render_report(report, path.name, out)
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_package(args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        result = package(args.source, args.name, args.version, args.output_dir)
    except InvalidPackage as exc:
        if args.json:
            print(exc.report.model_dump_json(indent=2))
        else:
            render_report(exc.report, f"{args.name}_{args.version}.tar.gz", out)
        err.print(f"mmedeploy: not written: {exc}")
        return EXIT_INVALID
    except (PackagingError, InvalidArtifactName) as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_USAGE
    if args.json:
        print(result.report.model_dump_json(indent=2))
    else:
        render_report(result.report, result.path.name, out)
        out.print(f"wrote {result.path}")
    return EXIT_OK


def _say(line: str) -> None:
    # plain, unwrapped lines: URLs and paths must stay copyable
    print(line, flush=True)


def cmd_up(args: argparse.Namespace, out: Console, err: Console) -> int:
    from pydantic import ValidationError

    from mmedeploy.local import control
    from mmedeploy.local.stack import StackConfig

    try:
        config = StackConfig(
            port_base=args.port_base,
            state_dir=args.state_dir,
            fresh=args.fresh,
            mme_memory_mb=args.mme_memory_mb,
            mme_load_wait_s=args.mme_load_wait,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err.print(f"mmedeploy up: {problems}")
        return EXIT_USAGE
    try:
        if args.detach:
            return control.up_detached(config, _say)
        return control.up_foreground(config, _say)
    except control.StackError as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_INVALID


def cmd_down(args: argparse.Namespace, out: Console, err: Console) -> int:
    from mmedeploy.local import control

    try:
        return control.down(args.state_dir, _say)
    except control.StackError as exc:
        err.print(f"mmedeploy: {exc}")
        return EXIT_INVALID


def main(argv: list[str] | None = None) -> int:
    out, err = Console(), Console(stderr=True)
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args, out, err))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        err.print("mmedeploy: interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("MMEDEPLOY_DEBUG"):
            raise
        err.print(
            f"mmedeploy: internal error ({type(exc).__name__}: {exc}); please report it with "
            "MMEDEPLOY_DEBUG=1 set to include the traceback"
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
