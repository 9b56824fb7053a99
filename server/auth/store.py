"""Where logins live. One interface; SQLite is the embedded default (Redis comes with hosted mode)."""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from .tokenset import TokenSet

ENV_STORE = "XCOURIER_STORE"
ENV_STORE_KEY = "XCOURIER_STORE_KEY"


class StoreError(Exception):
    """The store can't be used as configured; the message says what to do."""


class StaleLockError(StoreError):
    """A refresh-lock holder lost its lock to a later one; its write was refused."""


class TokenStore(Protocol):
    location: str

    async def load(self, account: str | None = None) -> TokenSet | None:
        """The login for `account` (user id or username, any case), or the default one.

        The default is the only login, or else the one logged in last.
        """
        ...

    async def save(self, tokens: TokenSet) -> None:
        """Write atomically and durably: after it returns, a crash can't lose the set."""
        ...

    async def delete(self, user_id: str) -> bool: ...

    async def list_accounts(self) -> list[TokenSet]: ...

    def refresh_lock(self, user_id: str) -> AbstractAsyncContextManager[None]:
        """Exclusive across every process sharing the store; released if the holder dies."""
        ...

    async def load_cursor(self, key: str) -> str | None:
        """The newPost watcher's last delivered post id for `key`."""
        ...

    async def save_cursor(self, key: str, post_id: str) -> None: ...

    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        """Append one audit record (JSON-serialisable); records are never rewritten."""
        ...

    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        """Audit records at or after `since`, oldest first."""
        ...

    async def aclose(self) -> None:
        """Release connections; the data stays."""
        ...


def default_store_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("xcourier", appauthor=False)) / "xcourier.db"


def open_store(location: str | None = None, *, environ: dict[str, str] | None = None) -> TokenStore:
    """The store named by --store / XCOURIER_STORE, else SQLite in the user data directory."""
    env = os.environ if environ is None else environ
    target = location or env.get(ENV_STORE) or str(default_store_path())
    key = env.get(ENV_STORE_KEY) or None
    if target.startswith(("redis://", "rediss://", "unix://")):
        from .redis_store import RedisTokenStore

        return RedisTokenStore(target, key=key)
    if "://" in target and not target.startswith("sqlite://"):
        raise StoreError(f"--store {target}: unsupported store; give a file path (SQLite) or a redis:// URL.")
    from .sqlite_store import SQLiteTokenStore

    return SQLiteTokenStore(Path(target.removeprefix("sqlite://")).expanduser(), key=key)


def fernet_for(key: str) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise StoreError(
            "XCOURIER_STORE_KEY is not a Fernet key (32 url-safe base64-encoded bytes). Make one with: "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None
