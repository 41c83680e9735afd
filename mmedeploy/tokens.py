"""A deployed target's API tokens: the invoke token (inference and reads) and the admin token
(``promote``, ``rollback``, ``canary``, ``redeploy``).

Where they come from, first found wins: ``MMEDEPLOY_API_TOKEN`` / ``MMEDEPLOY_ADMIN_TOKEN`` in the
environment, else what ``mmedeploy target login NAME`` stored: the OS keyring (``keyring``), or
where no keyring backend exists, ``tokens.json`` in the config directory, readable only by the user
(0600). A token is never printed, logged or shown (``target show`` says only whether it is set and
where from). The local stack's tokens come from its ``stack.json``, not from here.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmedeploy.target_config import config_dir

Kind = Literal["api", "admin"]
KINDS: tuple[Kind, ...] = ("api", "admin")
VARIABLES: dict[Kind, str] = {"api": "MMEDEPLOY_API_TOKEN", "admin": "MMEDEPLOY_ADMIN_TOKEN"}
WHAT: dict[Kind, str] = {"api": "invoke token", "admin": "admin token"}
KEYRING_SERVICE = "mmedeploy"
FILE_NAME = "tokens.json"


@dataclass(frozen=True)
class Token:
    value: str | None = field(repr=False)
    source: (
        str  # "environment (MMEDEPLOY_API_TOKEN)", "keyring", "file /home/u/.config/mmedeploy/tokens.json", "not set"
    )


def usable_keyring() -> Any | None:
    """The OS keyring backend, or None where keyring has none (its ``fail`` or ``null`` backend)."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return backend


class TokenStore:
    """Stored tokens by target name: the keyring where one exists, else the 0600 file."""

    def __init__(self, directory: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self.directory = directory or config_dir()
        self.environ = os.environ if environ is None else environ

    @property
    def file(self) -> Path:
        return self.directory / FILE_NAME

    def where(self) -> str:
        """Where :meth:`store` puts tokens now: ``keyring (<backend>)`` or ``file <path> (0600)``."""
        backend = usable_keyring()
        if backend is not None:
            return f"the keyring ({type(backend).__module__}.{type(backend).__name__})"
        return f"{self.file} (readable only by you)"

    def get(self, target: str, kind: Kind) -> Token:
        variable = VARIABLES[kind]
        if self.environ.get(variable):
            return Token(self.environ[variable], f"environment ({variable})")
        backend = usable_keyring()
        if backend is not None:
            value = _keyring_call(backend.get_password, KEYRING_SERVICE, _username(target, kind))
            if value:
                return Token(value, "keyring")
        value = self._read_file().get(target, {}).get(kind)
        if value:
            return Token(value, f"file {self.file}")
        return Token(None, "not set")

    def store(self, target: str, tokens: dict[Kind, str]) -> str:
        """Store the given tokens of ``target`` (others are kept); where they went."""
        backend = usable_keyring()
        if backend is not None:
            for kind, value in tokens.items():
                _keyring_call(backend.set_password, KEYRING_SERVICE, _username(target, kind), value)
            return self.where()
        document = self._read_file()
        document.setdefault(target, {}).update({str(kind): value for kind, value in tokens.items()})
        self._write_file(document)
        return self.where()

    def forget(self, target: str) -> None:
        """Remove ``target``'s stored tokens, wherever they are."""
        backend = usable_keyring()
        if backend is not None:
            import keyring.errors

            for kind in KINDS:
                with contextlib.suppress(keyring.errors.PasswordDeleteError):
                    backend.delete_password(KEYRING_SERVICE, _username(target, kind))
        document = self._read_file()
        if document.pop(target, None) is not None:
            self._write_file(document)

    def _read_file(self) -> dict[str, dict[str, str]]:
        try:
            document: dict[str, dict[str, str]] = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot read the stored tokens in {self.file}: {type(exc).__name__}") from None
        return document

    def _write_file(self, document: dict[str, dict[str, str]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.file.with_name(f"{FILE_NAME}.{os.getpid()}.partial")
        # created 0600 from the start: never readable by others, not even for a moment
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.chmod(partial, 0o600)
        partial.replace(self.file)


def _username(target: str, kind: Kind) -> str:
    return f"{target}/{kind}"


def _keyring_call(method: Any, *args: str) -> Any:
    import keyring.errors

    try:
        return method(*args)
    except keyring.errors.KeyringError as exc:
        # the message names the backend's failure, never the token
        raise OSError(f"the keyring refused: {type(exc).__name__}") from None
