"""``python -m mmedeploy.deploy.triton_fields --common MIRROR --server MIRROR`` (``make triton-fields``):
which Triton release introduced each part of the ModelConfig schema.

Writes ``chalicelib/domain/validation/schemas/triton_fields.py`` (committed, like protoc's output
beside it): a data module, so that it ships in the Lambda artifacts with the validator's imports
(they hold modules only) and loads with no file I/O. It holds

- ``RELEASES``: each container release ``YY.MM`` (the NGC and SageMaker image tag) -> the Triton
  version it runs, read from ``TRITON_VERSION`` (``VERSION`` before 21.02) on the server's release branch ``rYY.MM``;
- ``INTRODUCED``: each message field (``ModelDynamicBatching.priority_queue_policy``) and enum value
  (``DataType.TYPE_BF16``) of ``model_config.proto`` -> the Triton version of the first release whose
  proto has it, that release's branch, and the first commit on that branch's history of the proto
  where it appears (the source of the entry).

The proto of release ``rYY.MM`` is ``protobuf/model_config.proto`` on that branch of
triton-inference-server/common, or before common had it (r21.04 and earlier) ``src/core/model_config.proto``
on that branch of triton-inference-server/server. Releases before Triton 2.0 are left out: what
Triton 2.0 (20.06) already had is marked as introduced by 2.0.0. The mirrors are git directories
(``git clone --mirror``, or the ``fetch`` tool's ``/work/.mirror/<owner>+<name>/repo``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mmedeploy.project_files import CLONE

OUT = CLONE / "chalicelib" / "domain" / "validation" / "schemas" / "triton_fields.py"
COMMON_PROTO = "protobuf/model_config.proto"
SERVER_PROTO = "src/core/model_config.proto"
VERSION_FILES = ("TRITON_VERSION", "VERSION")  # the server's version file (VERSION before r21.02)
FIRST_MAJOR = 2  # Triton 2.0 (container 20.06) and later
LINE_LENGTH = 120  # the project's (pyproject.toml, ruff): longer entries are split as ruff format splits them
RELEASE_BRANCH = re.compile(r"^(?:refs/heads/|refs/remotes/[^/]+/)?r(\d{2}\.\d{2})$")

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_TOKENS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*|-?\d+|[{}<>;=,\[\]()]")


class GeneratorError(Exception):
    """A mirror lacks what the generator needs; the message says what."""


def parse_proto(text: str) -> set[str]:
    """The names a ``.proto`` defines, without the package: ``Message.field`` for every field of
    every message (nested messages as ``Outer.Inner``; oneof and map fields included) and
    ``Enum.VALUE`` for every enum value (nested enums as ``Outer.Enum.VALUE``)."""
    tokens = _TOKENS.findall(_STRINGS.sub('""', _COMMENTS.sub(" ", text)))
    names: set[str] = set()
    scopes: list[tuple[str, str]] = []  # (kind, name): message, enum, oneof; '' for other blocks
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("message", "enum", "oneof") and i + 2 < len(tokens) and tokens[i + 2] == "{":
            scopes.append((token, tokens[i + 1]))
            i += 3
            continue
        if token in ("{", "}", ";"):
            if token == "{":
                scopes.append(("", ""))
            elif token == "}" and scopes:
                scopes.pop()
            i += 1
            continue
        end = i  # a statement: up to ';' or a block
        while end < len(tokens) and tokens[end] not in (";", "{", "}"):
            end += 1
        statement = tokens[i:end]
        if scopes and scopes[-1][0] and token not in ("option", "reserved", "extensions") and "=" in statement:
            owner = ".".join(name for kind, name in scopes if kind in ("message", "enum"))
            names.add(f"{owner}.{statement[statement.index('=') - 1]}")
        i = end
    return names


@dataclass(frozen=True)
class Release:
    container: str  # YY.MM
    triton: str  # 2.N.P
    repo: str  # triton-inference-server/common or /server: where its proto is
    git_dir: Path
    ref: str  # the release branch
    path: str  # the proto's path there


def _git(git_dir: Path, *args: str) -> str:
    done = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GeneratorError(f"git {' '.join(args)} in {git_dir}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _branches(git_dir: Path) -> dict[str, str]:
    """``{YY.MM: ref}`` of the release branches rYY.MM (local or a remote's)."""
    found: dict[str, str] = {}
    for ref in _git(git_dir, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes").split():
        match = RELEASE_BRANCH.match(ref)
        if match:
            found.setdefault(match.group(1), ref)
    return found


def _has(git_dir: Path, ref: str, path: str) -> bool:
    return bool(_git(git_dir, "ls-tree", "--name-only", ref, "--", path).strip())


def releases(common: Path, server: Path) -> list[Release]:
    """Every Triton 2+ release, oldest first, with where its proto is."""
    common_branches = _branches(common)
    found: list[Release] = []
    for container, ref in sorted(_branches(server).items()):
        names = [name for name in VERSION_FILES if _has(server, ref, name)]
        raw = _git(server, "show", f"{ref}:{names[0]}").strip() if names else ""
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", raw)
        if not match or int(match.group(1)) < FIRST_MAJOR or match.group(0) != raw:
            continue  # before 2.0, or a development version ("2.13.0dev"): not a release
        common_ref = common_branches.get(container)
        if common_ref and _has(common, common_ref, COMMON_PROTO):
            place = ("triton-inference-server/common", common, common_ref, COMMON_PROTO)
        elif _has(server, ref, SERVER_PROTO):
            place = ("triton-inference-server/server", server, ref, SERVER_PROTO)
        else:  # a server branch cut before common's: left out until common has it
            print(f"triton-fields: release {container} left out: common has no {ref} with its proto", file=sys.stderr)
            continue
        found.append(Release(container, match.group(0), *place))
    if not found:
        raise GeneratorError(f"no release branches rYY.MM with a TRITON_VERSION in {server}")
    return found


@cache
def _names_at(git_dir: Path, revision: str, path: str) -> frozenset[str]:
    return frozenset(parse_proto(_git(git_dir, "show", f"{revision}:{path}")))


def _first_commit(release: Release, name: str) -> str:
    """The first commit of the release branch's history of its proto whose file has ``name``."""
    commits = _git(release.git_dir, "log", "--reverse", "--format=%H", release.ref, "--", release.path).split()
    return next((c for c in commits if name in _names_at(release.git_dir, c, release.path)), commits[-1])


@dataclass(frozen=True)
class Entry:
    name: str
    triton: str
    source: str  # common@rYY.MM or server@rYY.MM
    commit: str


def introduced(all_releases: Sequence[Release]) -> list[Entry]:
    """Each name's first release (the earliest one whose proto has it), with its source commit."""
    entries: dict[str, Entry] = {}
    for release in all_releases:
        for name in sorted(_names_at(release.git_dir, release.ref, release.path) - entries.keys()):
            source = f"{release.repo.rsplit('/', 1)[-1]}@{release.ref.rsplit('/', 1)[-1]}"
            entries[name] = Entry(name, release.triton, source, _first_commit(release, name))
    return sorted(entries.values(), key=lambda e: e.name)


def _entry(entry: Entry) -> str:
    """One line, or as ``ruff format`` splits a line over 120 characters."""
    values = (f'"{entry.triton}"', f'"{entry.source}"', f'"{entry.commit}"')
    line = f'    "{entry.name}": ({", ".join(values)}),'
    if len(line) <= LINE_LENGTH:
        return line
    return "\n".join([f'    "{entry.name}": (', *(f"        {v}," for v in values), "    ),"])


def render(all_releases: Iterable[Release], entries: Iterable[Entry]) -> str:
    lines = [
        '"""Which Triton release introduced each field and enum value of ModelConfig (model_config.proto).',
        "",
        "Generated by ``python -m mmedeploy.deploy.triton_fields`` (``make triton-fields``) from git mirrors of",
        "triton-inference-server/server and /common: see that module. Do not edit; regenerate.",
        '"""',
        "",
        "# container release (NGC / SageMaker image tag YY.MM) -> the Triton version it runs (TRITON_VERSION)",
        "RELEASES: dict[str, str] = {",
        *(f'    "{r.container}": "{r.triton}",' for r in all_releases),
        "}",
        "",
        "# Message.field or Enum.VALUE -> (the Triton version that introduced it, the first release branch",
        "# whose proto has it: common@rYY.MM or server@rYY.MM, the first commit of that branch's proto with it)",
        "INTRODUCED: dict[str, tuple[str, str, str]] = {",
        *(_entry(e) for e in entries),
        "}",
        "",
    ]
    return "\n".join(lines)


def generate(common: Path, server: Path) -> str:
    found = releases(common, server)
    return render(found, introduced(found))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmedeploy.deploy.triton_fields", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--common", type=Path, required=True, help="git dir of triton-inference-server/common")
    parser.add_argument("--server", type=Path, required=True, help="git dir of triton-inference-server/server")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT.relative_to(CLONE)}")
    args = parser.parse_args(argv)
    try:
        text = generate(args.common, args.server)
    except GeneratorError as exc:
        print(f"triton-fields: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(text, encoding="utf-8")
    print(f"triton-fields: wrote {args.out} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
