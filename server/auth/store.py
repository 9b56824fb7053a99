"""Where logins live. One interface; SQLite is the embedded default (Redis comes with hosted mode).

This is the front: the interface, and `open_store`, which picks an implementation. What the implementations
share (errors, sealing, codecs) is in store_base, which they import instead of this module; its names are
re-exported here, so callers keep importing them from one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from .store_base import (
    EXIT_STORE_UNAVAILABLE,
    SEALED_PREFIX,
    Sealer,
    StaleLockError,
    StoreError,
    StoreUnavailableError,
    check_cursors,
    check_lease_ttl,
    fernet_for,
    open_record,
    open_tokens,
    place,
    seal_record,
    seal_tokens,
    tokens_from_dict,
    tokens_to_dict,
)
from .tokenset import TokenSet

__all__ = [
    "ENV_STORE",
    "ENV_STORE_KEY",
    "EXIT_STORE_UNAVAILABLE",
    "SEALED_PREFIX",
    "Sealer",
    "StaleLockError",
    "StoreError",
    "StoreUnavailableError",
    "TokenStore",
    "check_cursors",
    "check_lease_ttl",
    "default_store_path",
    "fernet_for",
    "open_record",
    "open_store",
    "open_tokens",
    "place",
    "preflight",
    "seal_record",
    "seal_tokens",
    "tokens_from_dict",
    "tokens_to_dict",
]

ENV_STORE = "XCOURIER_STORE"
ENV_STORE_KEY = "XCOURIER_STORE_KEY"


class TokenStore(Protocol):
    location: str

    async def load(self, account: str | None = None) -> TokenSet | None:
        """The login for `account` (user id or username, any case), or the default one; for the CLI's --account.

        A login whose user id is exactly `account` wins over one whose username matches: an all-digit username
        may equal another account's id. A leading "@" marks a username ("@123" never matches user id 123); of
        several logins with that username, the one logged in (SQLite, memory) or saved (Redis) last. The default
        is the only login, or else the one logged in last. Code that holds a user id uses `load_user` instead.
        """
        ...

    async def load_user(self, user_id: str) -> TokenSet | None:
        """The login of exactly this X user id (never a username match)."""
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

    async def load_cursors(self, keys: Iterable[str]) -> dict[str, str]:
        """The cursors of those `keys` that have one, read together: one consistent view, one round trip.

        For the watcher, which reads a cursor for every member of a search batch (or every user at start).
        """
        ...

    async def save_cursors(self, cursors: Mapping[str, str]) -> None:
        """Write every key's cursor (a post id, all digits) or none of them: one transaction, one round trip.

        Bad input (a key that isn't a non-empty string, a post id that isn't digits) raises ValueError before
        anything is written. Cursors are kept as the audit is (SQLite: synchronous=NORMAL in WAL): atomic and
        safe from a process crash; a power cut may lose the newest batch, and the watcher then delivers those
        posts again rather than skipping any.
        """
        ...

    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        """Append one audit record (JSON-serialisable); records are never rewritten."""
        ...

    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        """Audit records at or after `since`, oldest first."""
        ...

    async def put_record(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        """Keep a small JSON record for `ttl` seconds, replacing any record under the same kind and key.

        For what hosted mode's instances must share but never keep: OAuth clients, authorization codes,
        issued tokens (by hash), pending logins. `kind` is a short identifier without ':'; `key` is a hash
        or a random id, never a secret. Sealed like a login's secrets when the store has a key, and then only
        sealed records are read back: a plain one counts as absent (see `open_record`). A `ttl` of 0 or less
        keeps nothing (any record under the key is gone), so a deadline that has passed can be passed on as is.
        """
        ...

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record, or None if there is none, it has expired, or it is unsealed in a store with a key."""
        ...

    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """Get and delete in one atomic step: of concurrent takers (any process), exactly one gets it.

        So a code or a pending login is redeemed once, however many instances race for it. An unsealed record
        in a store with a key is deleted too (the delete is what makes the take atomic), and None is returned.
        """
        ...

    async def delete_record(self, kind: str, key: str) -> None: ...

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease, or renew it if `holder` already has it; False while another holder's lease is live.

        For work exactly one instance may do at a time (one newPost poller per account). A holder that dies
        stops renewing, so its lease is free once `ttl` seconds have passed since its last renewal.
        """
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` has it, so another instance can take over at once; else do nothing."""
        ...

    async def aclose(self) -> None:
        """Release connections; the data stays."""
        ...


async def preflight(store: TokenStore) -> None:
    """Raise StoreError if `store` can't take a login, creating nothing: checked before a browser sign-in,
    so a bad --store is said before the user approves anything, not after."""
    check = getattr(store, "preflight", None)  # the in-memory store has nothing to check
    if check is not None:
        await check()


def default_store_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("xcourier", appauthor=False)) / "xcourier.db"


def open_store(
    location: str | None = None, *, environ: dict[str, str] | None = None, sealed_only: bool = False
) -> TokenStore:
    """The store named by --store / XCOURIER_STORE, else SQLite in the user data directory."""
    env = os.environ if environ is None else environ
    target = location or env.get(ENV_STORE) or str(default_store_path())
    key = env.get(ENV_STORE_KEY) or None
    if target.startswith(("redis://", "rediss://", "unix://")):
        from .redis_store import RedisTokenStore

        return RedisTokenStore(target, key=key, sealed_only=sealed_only)
    if "://" in target and not target.startswith("sqlite://"):
        raise StoreError(f"--store {target}: unsupported store; give a file path (SQLite) or a redis:// URL.")
    from .sqlite_store import SQLiteTokenStore

    return SQLiteTokenStore(Path(target.removeprefix("sqlite://")).expanduser(), key=key, sealed_only=sealed_only)
