"""The user's targets: ``targets.json`` in the platform's user config directory (``platformdirs``,
e.g. ``~/.config/mmedeploy``; ``MMEDEPLOY_CONFIG_DIR`` overrides it).

A target names a CloudFormation stack, with the region and AWS profile to reach it, nothing else:
what the commands need is read from the stack's outputs when a command runs
(:func:`mmedeploy.target.resolve_target`), and credentials come from boto3's standard chain.
Tokens are never written here (:mod:`mmedeploy.tokens`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

DISTRIBUTION = "mmedeploy"
CONFIG_DIR_VARIABLE = "MMEDEPLOY_CONFIG_DIR"
# The running local stack: always a target, never in targets.json.
LOCAL = "local"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class TargetConfigError(ValueError):
    """A target name that is invalid, unknown or taken; the message says what to do."""


def config_dir() -> Path:
    configured = os.environ.get(CONFIG_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(DISTRIBUTION, appauthor=False))


@dataclass(frozen=True)
class TargetEntry:
    name: str
    stack: str  # the CloudFormation stack's name
    region: str | None = None  # None: the profile's or the environment's
    profile: str | None = None  # None: boto3's default chain

    def where(self) -> str:
        region = self.region or "the default region"
        profile = f", profile {self.profile}" if self.profile else ""
        return f"stack {self.stack} in {region}{profile}"


@dataclass
class TargetConfig:
    """``targets.json``: the targets by name and the one ``target use`` chose."""

    path: Path
    targets: dict[str, TargetEntry]
    current: str | None = None

    @classmethod
    def load(cls, directory: Path | None = None) -> TargetConfig:
        path = (directory or config_dir()) / "targets.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, {})
        except (OSError, ValueError) as exc:
            raise TargetConfigError(f"cannot read {path}: {exc} (fix or remove it)") from exc
        targets = {
            name: TargetEntry(name=name, **{k: v for k, v in entry.items() if k in ("stack", "region", "profile")})
            for name, entry in document.get("targets", {}).items()
        }
        return cls(path, targets, document.get("current"))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {
            "current": self.current,
            "targets": {
                name: {k: v for k, v in asdict(entry).items() if k != "name" and v is not None}
                for name, entry in sorted(self.targets.items())
            },
        }
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.path)

    def get(self, name: str) -> TargetEntry:
        if name in self.targets:
            return self.targets[name]
        known = ", ".join(sorted(self.targets)) or "none yet"
        raise TargetConfigError(
            f"no target named {name} (known: {known}; '{LOCAL}' is the running local stack); "
            f"add it with: mmedeploy target add {name} --stack STACK_NAME"
        )

    def add(self, entry: TargetEntry, replace: bool = False) -> None:
        check_name(entry.name)
        if entry.name in self.targets and not replace:
            raise TargetConfigError(f"a target named {entry.name} exists: remove it first, or add it with --replace")
        self.targets[entry.name] = entry

    def remove(self, name: str) -> TargetEntry:
        entry = self.get(name)
        del self.targets[name]
        if self.current == name:
            self.current = None
        return entry

    def use(self, name: str) -> None:
        if name == LOCAL:
            self.current = None
            return
        self.current = self.get(name).name


def check_name(name: str) -> None:
    if name == LOCAL:
        raise TargetConfigError(f"'{LOCAL}' is the running local stack's name: choose another")
    if not NAME.match(name):
        raise TargetConfigError(
            f"'{name}' is not a target name: letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
