"""A TokenStore that lives and dies with the process: for logins that must not be kept."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .store_base import check_cursors, check_lease_ttl, cursor_keys
from .tokenset import TokenSet

_SWEEP_MIN = 64  # records kept before expired ones are first swept out


class MemoryTokenStore:
    location = "memory (not kept)"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._sets: dict[str, TokenSet] = {}
        self._cursors: dict[str, str] = {}
        self._audit: list[tuple[float, dict[str, Any]]] = []
        self._locks: dict[str, anyio.Lock] = {}
        self._clock = clock
        # (kind, key) -> (JSON, expires_at). Kept as JSON so callers get copies, and only what the
        # other stores could keep is accepted.
        self._records: dict[tuple[str, str], tuple[str, float]] = {}
        self._sweep_at = _SWEEP_MIN
        self._leases: dict[str, tuple[str, float]] = {}  # name -> (holder, expires_at)

    async def load(self, account: str | None = None) -> TokenSet | None:
        if account is None:
            return max(self._sets.values(), key=lambda t: t.logged_in_at, default=None)
        # The exact user id first: an all-digit username may equal another login's id.
        exact = self._sets.get(account)
        if exact is not None:
            return exact
        wanted = account.lstrip("@").lower()
        named = (t for t in self._sets.values() if t.username.lower() == wanted)
        return max(named, key=lambda t: t.logged_in_at, default=None)

    async def load_user(self, user_id: str) -> TokenSet | None:
        return self._sets.get(user_id)

    async def save(self, tokens: TokenSet) -> None:
        self._sets[tokens.user_id] = tokens

    async def delete(self, user_id: str) -> bool:
        return self._sets.pop(user_id, None) is not None

    async def list_accounts(self) -> list[TokenSet]:
        return sorted(self._sets.values(), key=lambda t: t.logged_in_at, reverse=True)

    async def load_cursor(self, key: str) -> str | None:
        return (await self.load_cursors([key])).get(key)

    async def save_cursor(self, key: str, post_id: str) -> None:
        await self.save_cursors({key: post_id})

    async def load_cursors(self, keys: Iterable[str]) -> dict[str, str]:
        return {key: self._cursors[key] for key in cursor_keys(keys) if key in self._cursors}

    async def save_cursors(self, cursors: Mapping[str, str]) -> None:
        # Checked whole first, then applied with no await in between: all of the batch or none of it.
        self._cursors.update(check_cursors(cursors))

    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        self._audit.append((at, dict(record)))

    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        return [(at, dict(record)) for at, record in self._audit if at >= since]

    async def put_record(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        text = json.dumps(value, ensure_ascii=False)
        if not ttl > 0:
            self._records.pop((kind, key), None)
            return
        now = self._clock()
        self._records[(kind, key)] = (text, now + ttl)
        # Expired records nobody asks for again are swept once the dict has doubled: O(1) per put.
        if len(self._records) >= self._sweep_at:
            self._records = {k: entry for k, entry in self._records.items() if entry[1] > now}
            self._sweep_at = max(_SWEEP_MIN, 2 * len(self._records))

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        text = self._live_record(kind, key)
        return None if text is None else json.loads(text)

    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        # No await between the look-up and the delete: one task's take can't interleave with another's.
        text = self._live_record(kind, key)
        if text is None:
            return None
        del self._records[(kind, key)]
        return json.loads(text)

    async def delete_record(self, kind: str, key: str) -> None:
        self._records.pop((kind, key), None)

    def _live_record(self, kind: str, key: str) -> str | None:
        entry = self._records.get((kind, key))
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._records[(kind, key)]
            return None
        return entry[0]

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        check_lease_ttl(ttl)
        now = self._clock()
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._leases[name] = (holder, now + ttl)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        current = self._leases.get(name)
        if current is not None and current[0] == holder:
            del self._leases[name]

    async def aclose(self) -> None:
        return None  # no connection is kept open between calls

    @asynccontextmanager
    async def refresh_lock(self, user_id: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(user_id, anyio.Lock()):
            yield
