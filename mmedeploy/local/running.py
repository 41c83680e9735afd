"""Which local stacks run on this machine, wherever they were started from: ``mmedeploy up``
records its state directory in the user's state directory (``platformdirs``, e.g.
``~/.local/state/mmedeploy/stacks/``; ``MMEDEPLOY_USER_STATE_DIR`` overrides it) and ``down``
removes the record, so a command run from any folder finds the stack (``--state-dir`` still names
one of several).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

USER_STATE_DIR_VARIABLE = "MMEDEPLOY_USER_STATE_DIR"


def user_state_dir() -> Path:
    configured = os.environ.get(USER_STATE_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("mmedeploy", appauthor=False))


def _record(state_dir: Path) -> Path:
    absolute = str(state_dir.resolve())
    return user_state_dir() / "stacks" / f"{hashlib.sha256(absolute.encode()).hexdigest()[:16]}.json"


def record(state_dir: Path, pid: int) -> None:
    """The stack of ``state_dir`` runs in process ``pid``."""
    path = _record(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"state_dir": str(state_dir.resolve()), "pid": pid}))
    partial.replace(path)


def forget(state_dir: Path) -> None:
    _record(state_dir).unlink(missing_ok=True)


def running_state_dirs() -> list[Path]:
    """The state directories of the local stacks that run now (stale records are removed)."""
    from mmedeploy.local.stack import read_stack

    found: list[Path] = []
    folder = user_state_dir() / "stacks"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            state_dir = Path(json.loads(path.read_text())["state_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if read_stack(state_dir) is None:
            path.unlink(missing_ok=True)
        else:
            found.append(state_dir)
    return found
