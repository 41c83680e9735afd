"""``python -m mmedeploy.deploy.protos [--check]`` (``make protos``): the validator's protobuf classes.

The ``.proto`` files in ``chalicelib/domain/validation/schemas/`` are the sources; the ``*_pb2.py`` (and
``*_pb2.pyi`` for mypy) beside them are protoc's output, committed so that neither a clean clone
nor a Lambda artifact needs protoc, tritonclient, grpc or onnx: only the ``protobuf`` runtime.
protoc comes from ``grpcio-tools`` (the ``[dev]`` extra), whose protoc matches the pinned runtime
(generated code refuses an older runtime at import). ``--check`` regenerates into a temporary
folder and exits 1, naming them, when the committed files differ (tests/unit/test_protos.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mmedeploy.project_files import CLONE

ROOT = CLONE  # a tool of the clone: it rewrites chalicelib's sources
SCHEMAS = ROOT / "chalicelib" / "domain" / "validation" / "schemas"
PROTOS = ("model_config.proto", "onnx_interface.proto")


class ProtocError(Exception):
    """protoc is missing or refused a schema; the message says why."""


def generated_names(protos: Sequence[str] = PROTOS) -> list[str]:
    return [f"{Path(proto).stem}_pb2{suffix}" for proto in protos for suffix in (".py", ".pyi")]


def generate(out: Path, schemas: Path = SCHEMAS, protos: Sequence[str] = PROTOS) -> dict[str, bytes]:
    """Run protoc on ``protos`` (relative to ``schemas``, so each file's descriptor is named as
    Triton's is) into ``out``; ``{file name: bytes}`` of what it wrote."""
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{schemas}", f"--python_out={out}", f"--pyi_out={out}"]
    done = subprocess.run([*command, *protos], cwd=schemas, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise ProtocError(f"protoc (grpcio-tools) failed: {reason[-1]}")
    return {name: (out / name).read_bytes() for name in generated_names(protos)}


def stale(schemas: Path = SCHEMAS, protos: Sequence[str] = PROTOS) -> list[str]:
    """The generated files in ``schemas`` that differ from what protoc makes of the sources now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp), schemas, protos)
    return [
        name for name, data in fresh.items() if not (schemas / name).is_file() or (schemas / name).read_bytes() != data
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmedeploy.deploy.protos", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed *_pb2 files are stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            outdated = stale()
            if outdated:
                print(f"protos: stale, run 'make protos': {', '.join(outdated)}", file=sys.stderr)
                return 1
            print("protos: up to date")
            return 0
        written = generate(SCHEMAS)
    except ProtocError as exc:
        print(f"protos: {exc}", file=sys.stderr)
        return 1
    print(f"protos: wrote {', '.join(sorted(written))} in {SCHEMAS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
