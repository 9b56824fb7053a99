"""Whose X login the newPost watcher polls with when every user brings their own.

Polls are shared (one per watched user across the fleet) and what they read is public, so
they run on the login of a current subscriber on this instance, the most recent one first.
"""

from __future__ import annotations

from collections.abc import Hashable

from xcourier.tools.client import TokenProvider
from xcourier.tools.errors import UnauthorizedError


class SubscriberTokens:
    def __init__(self) -> None:
        self._providers: dict[Hashable, TokenProvider] = {}

    def add(self, subscriber: Hashable, tokens: TokenProvider) -> None:
        self._providers.pop(subscriber, None)
        self._providers[subscriber] = tokens

    def discard(self, subscriber: Hashable) -> None:
        self._providers.pop(subscriber, None)

    def _current(self) -> TokenProvider:
        if not self._providers:
            raise UnauthorizedError("No signed-in subscriber on this instance to poll X with.")
        return next(reversed(self._providers.values()))

    async def access_token(self) -> str:
        return await self._current().access_token()

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        return await self._current().refresh_after_unauthorized(rejected)
