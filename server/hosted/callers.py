"""Every MCP request that reaches X runs as its caller: the X user behind the bearer token.

The SDK authenticates the HTTP request (our bearer token, audience-checked) and hands the
request to the handler's context; this middleware turns the token's subject (an X user id)
into that user's Account for the length of the request. Without a subject nothing acts.

What a request starts can outlive its token: a subscription is served for as long as its
session or stream lasts. So it carries the grant it was made under (one sign-in of one MCP
client: a family of our tokens, and the X login behind it), and Grants says, whenever a poll
or news runs on a subscriber's behalf, whether that grant still stands: not revoked, its X
login neither refused by X nor replaced. When one ends, those told (the watcher, the session
table) end what it started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, CallToolResult, TextContent

from ..auth.store import TokenStore
from ..auth.tokens import LoginRequiredError
from ..runtime import acting
from .tenants import Tenants

logger = logging.getLogger("xcourier.hosted")

# The requests whose handlers read or act on X (everything else needs no account).
_ACTS_ON_X = frozenset({"tools/call", "resources/read", "resources/subscribe", "subscriptions/listen"})

# Where our access tokens carry their grant (XBridge.load_access_token puts them there).
GRANT_CLAIM = "xcourier_grant"
LOGIN_CLAIM = "xcourier_login"


@dataclass(frozen=True)
class Grant:
    """One sign-in of one MCP client: the family of tokens descending from it (its identity), the X user
    and the sign-in time of the X login it was made with."""

    family: str
    user_id: str = field(compare=False)
    login: object = field(compare=False, default=None)


# The grant of the MCP request being handled (set per request by CallerBinding).
acting_grant: ContextVar[Grant | None] = ContextVar("xcourier_acting_grant", default=None)


def grant_of(token: AccessToken) -> Grant | None:
    claims = token.claims or {}
    family = claims.get(GRANT_CLAIM)
    if not isinstance(family, str) or not token.subject:
        return None
    return Grant(family, token.subject, claims.get(LOGIN_CLAIM))


class Grants:
    """Whether a grant still stands, and who is told when one ends (the watcher, the session table)."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store
        self.on_end: list[Callable[[Grant], Awaitable[None]]] = []

    def current(self) -> Hashable | None:
        return acting_grant.get()

    async def allows(self, grant: Hashable) -> bool:
        """The grant's family is not ended (revoked, reused, replayed) and its X login is the one X still
        honours for that user (a refused login is removed; a new sign-in has a new time)."""
        if not isinstance(grant, Grant):
            return True
        if await self._store.get_record("family", grant.family) is None:
            return False
        login = await self._store.load_user(grant.user_id)
        return login is not None and login.logged_in_at == grant.login

    async def ended(self, grant: Hashable) -> None:
        if not isinstance(grant, Grant):
            return
        for hook in list(self.on_end):
            try:
                await hook(grant)
            except Exception:
                # The grant is dead in the store whatever happens here: each listener re-checks on its own.
                logger.exception("could not end everything a revoked grant had started")


def caller_id(ctx: ServerRequestContext[Any, Any]) -> str | None:
    user = _user(ctx)
    return user.access_token.subject if user is not None else None


def _user(ctx: ServerRequestContext[Any, Any]) -> AuthenticatedUser | None:
    request = ctx.request
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    return user if isinstance(user, AuthenticatedUser) else None


class CallerBinding:
    def __init__(self, tenants: Tenants) -> None:
        self._tenants = tenants

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method not in _ACTS_ON_X:
            return await call_next(ctx)
        user_id = caller_id(ctx)
        if user_id is None:
            raise MCPError(INVALID_REQUEST, "This request carries no signed-in X user; sign in through OAuth first.")
        user = _user(ctx)
        try:
            async with self._tenants.using(user_id) as account:
                token = acting.set(account)
                grant = acting_grant.set(grant_of(user.access_token) if user is not None else None)
                try:
                    return await call_next(ctx)
                finally:
                    acting_grant.reset(grant)
                    acting.reset(token)
        except LoginRequiredError as exc:
            if ctx.method == "tools/call":
                return CallToolResult(content=[TextContent(type="text", text=exc.message)], is_error=True)
            raise MCPError(INVALID_REQUEST, exc.message) from None
