"""One Account per signed-in X user: their own token manager, X client, audit trail and limits.

Accounts are built on first use from the X token set the sign-in stored under the user's
id, and kept: an X client holds a connection pool and the user's rate limits, which must not
be rebuilt per call. The least recently used idle ones are closed past `max_accounts`, so a
large team doesn't keep a connection pool open for everyone who ever signed in.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from xcourier.tools.client import XClient
from xcourier.tools.users import UserDirectory

from ..audit import AuditLog, Guards
from ..auth import oauth
from ..auth.store import TokenStore
from ..auth.tokens import LoginRequiredError, TokenManager
from ..runtime import Account

if TYPE_CHECKING:
    from .callers import Grants

SIGN_IN_AGAIN = "Sign in again: reconnect xcourier in your MCP client, which opens X's sign-in page"
DEFAULT_MAX_ACCOUNTS = 1000


class Tenants:
    def __init__(
        self,
        store: TokenStore,
        x_app: oauth.OAuthApp,
        *,
        max_writes_per_hour: int | None,
        daily_budget: float | None,
        max_accounts: int = DEFAULT_MAX_ACCOUNTS,
        grants: Grants | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.grants = grants  # whether the grants behind requests still stand (hosted/callers.py)
        self._x_app = x_app
        self._max_writes_per_hour = max_writes_per_hour
        self._daily_budget = daily_budget
        self._clock = clock
        self._max = max_accounts
        self._accounts: OrderedDict[str, Account] = OrderedDict()
        self._in_use: dict[str, int] = {}
        self._lock = anyio.Lock()

    @asynccontextmanager
    async def using(self, user_id: str) -> AsyncIterator[Account]:
        """The user's account for the length of a request; not closed while a request holds it."""
        # Marked busy before the first await, so a concurrent request's clean-up can't close it.
        self._in_use[user_id] = self._in_use.get(user_id, 0) + 1
        try:
            yield await self.account(user_id)
        finally:
            self._in_use[user_id] -= 1
            if not self._in_use[user_id]:
                del self._in_use[user_id]

    async def account(self, user_id: str) -> Account:
        account = self._accounts.get(user_id)
        if account is None:
            async with self._lock:  # two first calls of one user must not build two token managers
                account = self._accounts.get(user_id)
                if account is None:
                    account = self._accounts[user_id] = await self._open(user_id)
        self._accounts.move_to_end(user_id)
        await self._close_idle_beyond_limit(keep=user_id)
        return account

    async def _close_idle_beyond_limit(self, keep: str) -> None:
        excess = len(self._accounts) - self._max
        if excess <= 0:
            return
        idle = [user_id for user_id in self._accounts if user_id not in self._in_use and user_id != keep]
        # All out of the table before the first await: a request arriving meanwhile builds a new one.
        closing = [self._accounts.pop(user_id) for user_id in idle[:excess]]
        for account in closing:
            await account.client.aclose()

    async def _open(self, user_id: str) -> Account:
        tokens = await self._store.load_user(user_id)
        if tokens is None:
            raise LoginRequiredError(f"This server has no X sign-in for your account any more. {SIGN_IN_AGAIN}.")
        manager = TokenManager(
            self._store, tokens, relogin_hint=SIGN_IN_AGAIN, forget_refused=True, app=self._x_app, clock=self._clock
        )
        client = XClient(manager, base_url=self._x_app.api_base_url)
        audit = AuditLog(self._store, tokens.username, account_id=tokens.user_id, clock=self._clock)
        return Account(
            name=tokens.username,
            user_id=tokens.user_id,
            client=client,
            users=UserDirectory(client),
            tokens=manager,
            audit=audit,
            guards=Guards(
                audit,
                max_writes_per_hour=self._max_writes_per_hour,
                daily_budget=self._daily_budget,
                store=self._store,
            ),
        )

    async def aclose(self) -> None:
        for account in self._accounts.values():
            await account.client.aclose()
        self._accounts.clear()
