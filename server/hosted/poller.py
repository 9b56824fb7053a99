"""Whose X login the newPost watcher polls with when every user brings their own.

Polls are shared (one per watched user across the fleet) and what they read is public, but a
poll runs on the login of someone who subscribed to that very user on this instance (the
watcher says whom a poll is for), the most recent first. A login X refuses is skipped and
forgotten, so one user's dead login doesn't stop the news for everyone else.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from xcourier.tools.client import TokenProvider
from xcourier.tools.errors import UnauthorizedError

from ..watcher import polling_for

logger = logging.getLogger("xcourier.hosted")


class SubscriberTokens:
    def __init__(self) -> None:
        self._providers: dict[Hashable, TokenProvider] = {}

    def add(self, subscriber: Hashable, tokens: TokenProvider) -> None:
        self._providers.pop(subscriber, None)
        self._providers[subscriber] = tokens

    def discard(self, subscriber: Hashable) -> None:
        self._providers.pop(subscriber, None)

    def _candidates(self) -> list[TokenProvider]:
        wanted = polling_for.get() or frozenset()  # outside a poll nobody's login is offered
        newest_first = [p for s, p in reversed(self._providers.items()) if s in wanted]
        return list(dict.fromkeys(newest_first))  # one subscriber's several subscriptions share a login

    def _forget(self, provider: TokenProvider) -> None:
        for subscriber in [s for s, p in self._providers.items() if p is provider]:
            del self._providers[subscriber]

    async def access_token(self) -> str:
        for provider in self._candidates():
            try:
                return await provider.access_token()
            except UnauthorizedError as exc:
                logger.warning("newPost watcher: a subscriber's X login can't be used (%s); trying another", exc)
                self._forget(provider)
        raise UnauthorizedError("No subscriber of this user has a working X login on this instance.")

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        for provider in self._candidates():
            try:
                fresh = await provider.refresh_after_unauthorized(rejected)
            except UnauthorizedError:
                self._forget(provider)
                continue
            if fresh is not None and fresh != rejected:
                return fresh
            self._forget(provider)
        return None
