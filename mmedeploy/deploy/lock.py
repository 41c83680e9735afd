"""``python -m mmedeploy.deploy.lock [--upgrade | --check]`` (``make lock``): one lock, and the
requirement files generated from it.

Every version the project installs is chosen once, in ``requirements/lock.txt``: ``uv pip
compile`` resolves what ``pyproject.toml`` declares (the base, ``[local]`` and ``[dev]``) together
with the three Lambda sets in ``requirements/*.in`` (names only) for the one platform everything
runs on (CPython 3.12, Linux x86-64), and pins everything they pull in. ``make`` installs the
development virtualenv from that file, and this module writes, from the lock alone, the files
that install the deployed code:

- ``requirements.txt``: the Chalice app's Lambdas (``deployment.zip``; Chalice reads it there);
- ``functions/requirements.txt``: the stage Lambdas (``functions.zip``);
- ``mmedeploy/local/lambdas/runtime-requirements.txt``: what Lambda's managed runtime holds, for
  the local stack's Lambda service.

Each is the closure of its ``.in`` names over the lock's dependency graph (its ``# via``
annotations), at the lock's versions, so a transitive package is pinned there too. An edge is
never missed; where another package asks for one of these with an extra, that extra's
dependencies would come along as well (none does: the test says which).

Without ``--upgrade`` the versions already in the lock are kept where they still satisfy the
declarations (uv prefers them); ``--upgrade`` takes the newest of each. ``--check`` changes
nothing and exits 1 if a generated file differs from what the lock gives, or the lock was made
from other declarations than today's (``tests/unit/test_lock.py`` runs the same check).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from mmedeploy.project_files import CLONE, is_clone

LOCK = Path("requirements/lock.txt")
PYPROJECT = Path("pyproject.toml")
# the one platform: the Lambda runtime's Python, and Linux x86-64 (the local Triton's wheels
# need glibc 2.35; the Lambda zips are installed for Lambda's 2.34 by mmedeploy.deploy.lambda_zip)
PYTHON_VERSION = "3.12"
PYTHON_PLATFORM = "x86_64-manylinux_2_35"
INPUTS_LINE = "# inputs sha256: "
COMPILE_COMMAND = "make lock"


@dataclasses.dataclass(frozen=True)
class Generated:
    """A requirements file written from the lock: the closure of ``source``'s names."""

    path: Path
    source: Path  # a requirements/*.in: names only
    what: str


GENERATED = (
    Generated(Path("requirements.txt"), Path("requirements/app.in"), "the Chalice app's Lambdas (deployment.zip)"),
    Generated(Path("functions/requirements.txt"), Path("requirements/stages.in"), "the stage Lambdas (functions.zip)"),
    Generated(
        Path("mmedeploy/local/lambdas/runtime-requirements.txt"),
        Path("requirements/runtime.in"),
        "Lambda's managed runtime (/var/runtime) for the local stack's Lambda service",
    ),
)


class LockError(Exception):
    """The lock cannot be made or read; the message says why, on one line."""


def normalize(name: str) -> str:
    """PEP 503's form of a distribution name: ``Slack_SDK`` -> ``slack-sdk``."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- the lock -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Lock:
    pins: dict[str, str]  # normalized name -> version
    parents: dict[str, frozenset[str]]  # normalized name -> what requires it (names, or "-r FILE", "mmedeploy")
    inputs: str  # the digest of the declarations it was made from ("" if the line is missing)
    spelled: dict[str, str]  # normalized name -> the name as the lock writes it

    def closure(self, names: Iterable[str]) -> list[str]:
        """``names`` and everything they require, transitively, sorted."""
        children: dict[str, set[str]] = {}
        for child, parents in self.parents.items():
            for parent in parents:
                children.setdefault(parent, set()).add(child)
        wanted = [normalize(name) for name in names]
        missing = [name for name in wanted if name not in self.pins]
        if missing:
            raise LockError(f"{LOCK} has no {', '.join(missing)}: run make lock")
        seen: set[str] = set()
        while wanted:
            name = wanted.pop()
            if name not in seen:
                seen.add(name)
                wanted.extend(children.get(name, ()))
        return sorted(seen)


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)")
_VIA = re.compile(r"^\s+#\s+(?:via\s+)?(.+?)\s*$")


def parse_lock(text: str) -> Lock:
    """The pins of a ``uv pip compile`` output and its ``# via`` annotations."""
    pins: dict[str, str] = {}
    spelled: dict[str, str] = {}
    parents: dict[str, set[str]] = {}
    inputs = ""
    current = ""
    for line in text.splitlines():
        if line.startswith(INPUTS_LINE):
            inputs = line.removeprefix(INPUTS_LINE).strip()
            continue
        pin = _PIN.match(line)
        if pin:
            current = normalize(pin[1])
            pins[current], spelled[current] = pin[3], pin[1]
            parents.setdefault(current, set())
            continue
        via = _VIA.match(line)
        if via and current and line.lstrip().startswith("#") and via[1] != "via":
            parent = via[1]
            if not parent.startswith("-r "):
                parent = normalize(parent.split(" (")[0].split("[")[0])
            parents[current].add(parent)
        elif not line.startswith((" ", "#")):
            current = ""
    return Lock(pins, {name: frozenset(found) for name, found in parents.items()}, inputs, spelled)


def in_names(text: str) -> list[str]:
    """The requirement names of a ``.in`` file (names only: no versions there)."""
    names = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", line):
                raise LockError(f"{line!r}: a requirements/*.in line is one name, no version (the lock pins it)")
            names.append(line)
    return names


def inputs_digest(root: Path) -> str:
    """SHA-256 of what the lock is resolved from: pyproject's declared dependencies, the ``.in``
    files, and the resolver's target. A change to any of them makes the lock out of date."""
    project = tomllib.loads((root / PYPROJECT).read_text())["project"]
    declared = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python", ""),
        "target": [PYTHON_VERSION, PYTHON_PLATFORM],
    }
    digest = hashlib.sha256(json.dumps(declared, sort_keys=True).encode())
    for generated in GENERATED:
        digest.update(b"\0" + generated.source.as_posix().encode() + b"\0")
        digest.update("\n".join(in_names((root / generated.source).read_text())).encode())
    return digest.hexdigest()


def render(generated: Generated, lock: Lock, root: Path) -> str:
    """The text of ``generated`` as the lock gives it."""
    names = lock.closure(in_names((root / generated.source).read_text()))
    lines = [
        f"# {generated.what}: {generated.source.as_posix()} pinned from {LOCK.as_posix()}.",
        f"# Generated by `{COMPILE_COMMAND}` (mmedeploy/deploy/lock.py): do not edit.",
        *(f"{lock.spelled[name]}=={lock.pins[name]}" for name in names),
    ]
    return "\n".join(lines) + "\n"


def stale(root: Path) -> list[str]:
    """What is out of date, one line each: [] when the lock matches the declarations and every
    generated file matches the lock."""
    try:
        lock = parse_lock((root / LOCK).read_text())
    except OSError as exc:
        return [f"{LOCK}: {exc.strerror or exc}"]
    problems = []
    if lock.inputs != inputs_digest(root):
        problems.append(f"{LOCK} was made from other declarations than pyproject.toml's and requirements/*.in's")
    for generated in GENERATED:
        path = root / generated.path
        try:
            wanted = render(generated, lock, root)
        except LockError as exc:
            problems.append(str(exc))
            continue
        if not path.is_file() or path.read_text() != wanted:
            problems.append(f"{generated.path} differs from what {LOCK} gives")
    return problems


# -- make lock ----------------------------------------------------------------------------------
def compile_lock(root: Path, upgrade: bool = False) -> None:
    """``uv pip compile`` into the lock (keeping its versions unless ``upgrade``), then the line
    that records what it was made from."""
    command = [sys.executable, "-m", "uv", "pip", "compile", "--quiet", PYPROJECT.as_posix(), "--all-extras"]
    command += [generated.source.as_posix() for generated in GENERATED]
    command += ["--python-version", PYTHON_VERSION, "--python-platform", PYTHON_PLATFORM]
    command += ["--custom-compile-command", COMPILE_COMMAND, "-o", LOCK.as_posix()]
    command += ["--upgrade"] if upgrade else []
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        raise LockError(f"uv pip compile failed: {' '.join(lines[-3:]) if lines else f'exit {done.returncode}'}")
    path = root / LOCK
    lines = [line for line in path.read_text().splitlines() if not line.startswith(INPUTS_LINE)]
    header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    lines.insert(header, f"{INPUTS_LINE}{inputs_digest(root)}")
    path.write_text("\n".join(lines) + "\n")


def write_generated(root: Path) -> list[Path]:
    lock = parse_lock((root / LOCK).read_text())
    written = []
    for generated in GENERATED:
        text = render(generated, lock, root)
        path = root / generated.path
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            written.append(generated.path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmedeploy.deploy.lock", description=__doc__.split("\n")[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--upgrade", action="store_true", help="the newest versions the declarations allow")
    choice.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    if not is_clone(CLONE):
        print("lock: a tool of the clone: pyproject.toml and requirements/ are not here", file=sys.stderr)
        return 1
    root = CLONE
    try:
        if args.check:
            problems = stale(root)
            for problem in problems:
                print(f"lock: {problem}: run make lock", file=sys.stderr)
            return 1 if problems else 0
        compile_lock(root, upgrade=args.upgrade)
        written = write_generated(root)
    except (LockError, OSError) as exc:
        print(f"lock: {exc}", file=sys.stderr)
        return 1
    pins = len(parse_lock((root / LOCK).read_text()).pins)
    print(f"lock: {LOCK} pins {pins} packages; wrote {', '.join(map(str, written)) or 'nothing (all up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
