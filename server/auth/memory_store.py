"""A TokenStore that lives and dies with the process: for logins that must not be kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .tokenset import TokenSet


class MemoryTokenStore:
    location = "memory (not kept)"

    def __init__(self) -> None:
        self._sets: dict[str, TokenSet] = {}
        self._cursors: dict[str, str] = {}
        self._audit: list[tuple[float, dict[str, Any]]] = []
        self._locks: dict[str, anyio.Lock] = {}

    async def load(self, account: str | None = None) -> TokenSet | None:
        if account is None:
            return max(self._sets.values(), key=lambda t: t.logged_in_at, default=None)
        wanted = account.lstrip("@").lower()
        return next((t for t in self._sets.values() if wanted in (t.user_id, t.username.lower())), None)

    async def save(self, tokens: TokenSet) -> None:
        self._sets[tokens.user_id] = tokens

    async def delete(self, user_id: str) -> bool:
        return self._sets.pop(user_id, None) is not None

    async def list_accounts(self) -> list[TokenSet]:
        return sorted(self._sets.values(), key=lambda t: t.logged_in_at, reverse=True)

    async def load_cursor(self, key: str) -> str | None:
        return self._cursors.get(key)

    async def save_cursor(self, key: str, post_id: str) -> None:
        self._cursors[key] = post_id

    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        self._audit.append((at, dict(record)))

    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        return [(at, dict(record)) for at, record in self._audit if at >= since]

    async def aclose(self) -> None:
        return None  # no connection is kept open between calls

    @asynccontextmanager
    async def refresh_lock(self, user_id: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(user_id, anyio.Lock()):
            yield
