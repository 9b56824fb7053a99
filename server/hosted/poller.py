"""Whose X login the newPost watcher polls with when every user brings their own.

Polls are shared (one per watched user across the fleet) and what they read is public, but a
poll runs on the login of someone who subscribed to that very user on this instance (the
watcher says whom a poll is for), the most recent first. SubscriberTokens is the poller's
LoginPool: the X client keeps each login's rate limits apart (X counts them per user) and goes
on with the next subscriber's login when one is spent, so one tenant spending their own budget
doesn't pause the news for everyone else. A login X refuses is skipped and forgotten, so one
user's dead login doesn't stop the news either.
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
        # subscriber -> (their X user id, their login), oldest first
        self._subscribers: dict[Hashable, tuple[str, TokenProvider]] = {}

    def add(self, subscriber: Hashable, tokens: TokenProvider, login: str) -> None:
        self._subscribers.pop(subscriber, None)
        self._subscribers[subscriber] = (login, tokens)

    def discard(self, subscriber: Hashable) -> None:
        self._subscribers.pop(subscriber, None)

    def logins(self) -> list[str]:
        wanted = polling_for.get() or frozenset()  # outside a poll nobody's login is offered
        newest_first = [login for s, (login, _) in reversed(self._subscribers.items()) if s in wanted]
        return list(dict.fromkeys(newest_first))  # one user's several subscriptions share a login

    def _provider(self, login: str) -> TokenProvider | None:
        wanted = polling_for.get() or frozenset()
        newest_first = reversed(self._subscribers.items())
        return next((p for s, (user, p) in newest_first if user == login and s in wanted), None)

    def _forget(self, login: str) -> None:
        for subscriber in [s for s, (user, _) in self._subscribers.items() if user == login]:
            del self._subscribers[subscriber]

    async def login_token(self, login: str) -> str:
        provider = self._provider(login)
        if provider is None:
            raise UnauthorizedError("That subscriber's X login is no longer offered for polls.")
        try:
            return await provider.access_token()
        except UnauthorizedError as exc:
            logger.warning("newPost watcher: a subscriber's X login can't be used (%s); trying another", exc)
            self._forget(login)
            raise

    async def refresh_login(self, login: str, rejected: str) -> str | None:
        provider = self._provider(login)
        if provider is None:
            return None
        try:
            fresh = await provider.refresh_after_unauthorized(rejected)
        except UnauthorizedError as exc:
            logger.warning("newPost watcher: X refused a subscriber's login (%s); trying another", exc)
            fresh = None
        if fresh is None or fresh == rejected:
            self._forget(login)
            return None
        return fresh
