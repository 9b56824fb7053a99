"""newPost subscriptions in both MCP generations, feeding the watcher and fanning its updates out.

2025-11-25 clients send `resources/subscribe` and get `notifications/resources/updated` on
their session; 2026-07-28 clients open `subscriptions/listen` streams, which the SDK serves
from the SubscriptionBus we publish to. A middleware sees which URIs a listen stream asks for
(and when it ends), so the watcher polls exactly the users someone is listening to.

A subscription the watcher drops because the grant it was made under ended (hosted mode: the
token was revoked, X refused the login) gets nothing more: a 2025-era session is no longer told,
and a listen stream is ended, before the news that prompted the check goes out.

MCPServer has no public hook for `resources/subscribe` or for a connection's end, so this is
the one module that reaches into the SDK's private attributes (`_lowlevel_server`, the
session's `_connection`); tests/mcp/test_subscriptions.py fails loudly if an upgrade moves them.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    EmptyResult,
    SetLevelRequestParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from xcourier.tools.errors import XError

from .watcher import Watcher, username_of

logger = logging.getLogger("xcourier.subscriptions")

_CLEANUP_REGISTERED = "xcourier.subscriptions.cleanup"
# How long ending a listen stream may take before the news goes out regardless: a bound, not a wait for
# time to pass (the stream's handler unwinds at its next await).
_STREAM_END_BOUND = 10.0


@dataclass(eq=False)
class _Listen:
    """One subscriptions/listen stream, as the watcher's subscriber: ended from outside by its cancel scope."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)


class Subscriptions:
    def __init__(self, watcher: Watcher, bus: SubscriptionBus) -> None:
        self._watcher = watcher
        self._bus = bus
        # uri -> {connection key: session}: 2025-era subscribers, told on their own session.
        self._legacy: dict[str, dict[int, Any]] = {}
        watcher.publishers.append(self.publish)
        watcher.dropped.append(self._dropped)

    def install(self, server: MCPServer) -> None:
        lowlevel = server._lowlevel_server  # private: MCPServer has no public resources/subscribe hook
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self._on_subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._on_unsubscribe)
        server.middleware.append(self._listen_middleware)
        # Accepted so clients (and the conformance suite) can set it; xcourier sends no log
        # notifications, so there is nothing to filter.
        lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, _accept_log_level)

    async def publish(self, uri: str) -> None:
        await self._bus.publish(ResourceUpdated(uri=uri))
        for session in list(self._legacy.get(uri, {}).values()):
            await session.send_resource_updated(uri)

    # -- 2025-11-25: resources/subscribe ---------------------------------------------------------

    async def _on_subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        uri = str(params.uri)
        if not uri.startswith("x://"):
            # Not one of ours: accepted and never fires, as subscriptions/listen treats unknown URIs.
            return EmptyResult()
        if username_of(uri) is None:
            raise MCPError(
                INVALID_PARAMS, f"Can't subscribe to {uri}: only x://users/{{username}}/posts is subscribable."
            )
        connection = ctx.session._connection  # private: its exit_stack is the only end-of-session hook
        key = id(connection)
        try:
            await self._watcher.subscribe(uri, (key, uri))
        except XError as exc:
            raise MCPError(INVALID_PARAMS, f"Can't watch {uri}: {exc.message}") from None
        self._legacy.setdefault(uri, {})[key] = ctx.session
        if not connection.state.get(_CLEANUP_REGISTERED):
            connection.state[_CLEANUP_REGISTERED] = True
            connection.exit_stack.push_async_callback(self._connection_closed, key)
        return EmptyResult()

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        uri = str(params.uri)
        key = id(ctx.session._connection)
        self._legacy.get(uri, {}).pop(key, None)
        await self._watcher.unsubscribe((key, uri), uri)
        return EmptyResult()

    async def _dropped(self, subscriber: Hashable) -> None:
        """The watcher dropped a subscription whose grant ended: nothing more reaches its session or stream."""
        if isinstance(subscriber, _Listen):
            subscriber.scope.cancel()
            # The stream leaves the bus as its handler unwinds; the news that prompted this goes out after.
            with anyio.move_on_after(_STREAM_END_BOUND):
                await subscriber.done.wait()
        elif isinstance(subscriber, tuple) and len(subscriber) == 2:
            key, uri = subscriber
            self._legacy.get(uri, {}).pop(key, None)

    async def _connection_closed(self, key: int) -> None:
        for uri, sessions in list(self._legacy.items()):
            if sessions.pop(key, None) is not None:
                await self._watcher.unsubscribe((key, uri), uri)

    # -- 2026-07-28: subscriptions/listen ------------------------------------------------------

    async def _listen_middleware(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method != "subscriptions/listen":
            return await call_next(ctx)
        stream = _Listen()
        refused: list[str] = []
        try:
            for uri in _listened_uris(ctx.params):
                try:
                    await self._watcher.subscribe(uri, stream)
                except XError as exc:
                    logger.warning("not watching %s: %s", uri, exc.message)
                    refused.append(uri)
            if refused:
                # A user this caller may not see (or who doesn't exist) is not listened to at all,
                # even if someone else's subscription has it polled.
                ctx = replace(ctx, params=_without(ctx.params, refused))
            with stream.scope:
                return await call_next(ctx)  # returns when the listen stream ends
            raise MCPError(
                INVALID_REQUEST,
                "This stream has ended: the sign-in it was opened with was revoked, or X no longer accepts that "
                "X login. Sign in again and listen anew.",
            )
        finally:
            # A client leaving cancels this request; the cleanup must still run.
            with anyio.CancelScope(shield=True):
                await self._watcher.unsubscribe(stream)
            stream.done.set()


async def _accept_log_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
    return EmptyResult()


def _without(params: Mapping[str, Any] | None, refused: list[str]) -> dict[str, Any]:
    notifications = dict((params or {}).get("notifications") or {})
    notifications["resourceSubscriptions"] = [
        uri for uri in notifications.get("resourceSubscriptions") or [] if uri not in refused
    ]
    return {**(params or {}), "notifications": notifications}


def _listened_uris(params: Mapping[str, Any] | None) -> list[str]:
    notifications = (params or {}).get("notifications")
    uris = notifications.get("resourceSubscriptions") if isinstance(notifications, Mapping) else None
    if not isinstance(uris, list):
        return []
    return [uri for uri in uris if isinstance(uri, str) and username_of(uri) is not None]
