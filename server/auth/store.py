"""Where logins live. One interface; SQLite is the embedded default (Redis comes with hosted mode)."""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from .tokenset import TokenSet

ENV_STORE = "XCOURIER_STORE"
ENV_STORE_KEY = "XCOURIER_STORE_KEY"

logger = logging.getLogger("xcourier.auth")


class StoreError(Exception):
    """The store can't be used as configured; the message says what to do."""


class StaleLockError(StoreError):
    """A refresh-lock holder lost its lock to a later one; its write was refused."""


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


def fernet_for(key: str) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise StoreError(
            "XCOURIER_STORE_KEY is not a Fernet key (32 url-safe base64-encoded bytes). Make one with: "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None


def check_lease_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"a lease's ttl must be a positive number of seconds, not {ttl!r}")


def seal_record(fernet: Any, value: dict[str, Any]) -> str:
    """A record as stored: JSON, or a Fernet token of it when the store has a key."""
    text = json.dumps(value, ensure_ascii=False)
    return fernet.encrypt(text.encode()).decode() if fernet is not None else text


def open_record(fernet: Any, sealed: str, location: str, kind: str, warned: set[str]) -> dict[str, Any] | None:
    """The record back from what `seal_record` made, or None for a plain record in a store that has a key.

    A JSON object starts with "{" and a Fernet token never does, so the stored text says which it is. With a
    key, only sealed records count: anyone who can write to the store but lacks the key could otherwise forge
    one (an issued token's hash standing for someone else's login). Such a record is logged once per kind in
    `warned` (the store's own set), never with its content: the content is untrusted and may be a secret.
    Without a key, records are plain JSON and a sealed one means the key is missing.
    """
    if sealed.startswith("{"):
        if fernet is None:
            return json.loads(sealed)
        if kind not in warned:
            warned.add(kind)
            logger.warning(
                "ignored an unencrypted %r record in %s: with XCOURIER_STORE_KEY set, only records sealed with "
                "the key are used (a plain one was kept before the key was set, or was written by someone "
                "without it); further ones of this kind are ignored silently",
                kind,
                location,
            )
        return None
    if fernet is None:
        raise StoreError(
            f"The records in {location} are encrypted; set XCOURIER_STORE_KEY to the key they were saved with."
        )
    from cryptography.fernet import InvalidToken

    try:
        return json.loads(fernet.decrypt(sealed.encode()))
    except InvalidToken:
        raise StoreError(
            f"XCOURIER_STORE_KEY does not decrypt the records in {location}; use the key they were saved with."
        ) from None
