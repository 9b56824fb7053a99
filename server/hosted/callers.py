"""Every MCP request that reaches X runs as its caller: the X user behind the bearer token.

The SDK authenticates the HTTP request (our bearer token, audience-checked) and hands the
request to the handler's context; this middleware turns the token's subject (an X user id)
into that user's Account for the length of the request. Without a subject nothing acts.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, CallToolResult, TextContent

from ..auth.tokens import LoginRequiredError
from ..runtime import acting
from .tenants import Tenants

# The requests whose handlers read or act on X (everything else needs no account).
_ACTS_ON_X = frozenset({"tools/call", "resources/read", "resources/subscribe", "subscriptions/listen"})


def caller_id(ctx: ServerRequestContext[Any, Any]) -> str | None:
    request = ctx.request
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    return user.access_token.subject if isinstance(user, AuthenticatedUser) else None


class CallerBinding:
    def __init__(self, tenants: Tenants) -> None:
        self._tenants = tenants

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method not in _ACTS_ON_X:
            return await call_next(ctx)
        user_id = caller_id(ctx)
        if user_id is None:
            raise MCPError(INVALID_REQUEST, "This request carries no signed-in X user; sign in through OAuth first.")
        try:
            async with self._tenants.using(user_id) as account:
                token = acting.set(account)
                try:
                    return await call_next(ctx)
                finally:
                    acting.reset(token)
        except LoginRequiredError as exc:
            if ctx.method == "tools/call":
                return CallToolResult(content=[TextContent(type="text", text=exc.message)], is_error=True)
            raise MCPError(INVALID_REQUEST, exc.message) from None
