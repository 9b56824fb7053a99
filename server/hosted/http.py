"""The hosted HTTP app: MCP at /mcp behind bearer tokens, xcourier's OAuth server, X's callback.

Transport checks come first, before authentication: a request whose Host is not this
server's (DNS rebinding) or whose Origin is a foreign web page is refused outright. Then what
anyone may call without signing in is bounded: registration (body size, per source and per
instance per hour) and the token endpoint (a resource other than ours is refused, RFC 8707);
and no one user, or source before authentication, can hold every MCP session. A session ends
with the grant it was opened under (revoked at /revoke, or its X login refused).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.routes import build_metadata, cors_middleware
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xcourier.tools.fetch import RemoteFetcher

from ..auth import oauth
from ..auth.store import StoreUnavailableError, TokenStore
from ..runtime import Runtime
from ..settings import Settings, SettingsError, is_loopback_host
from .bridge import CALLBACK_PATH, CONSENT_PATH, XBridge
from .callers import Grant, Grants, grant_of
from .clients import ClientRegistry
from .pages import SignInPages

logger = logging.getLogger("xcourier.hosted")

MCP_PATH = "/mcp"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

# Dynamic client registration is open to anyone (RFC 7591 with no initial access token, as MCP clients
# expect), so what it can cost is bounded: a registration's body, registrations per source and per
# instance per hour. With the clients' own caps and their one-day life until first used (clients.py),
# what registrations can hold in the store is bounded too: at most 24 x REGISTRATIONS_PER_HOUR records
# of at most clients.MAX_CLIENT_RECORD_BYTES, per instance.
MAX_REGISTRATION_BYTES = 16 * 1024
REGISTRATIONS_PER_SOURCE_PER_HOUR = 20
REGISTRATIONS_PER_HOUR = 240
MAX_TOKEN_REQUEST_BYTES = 16 * 1024
# An MCP client keeps one session, a few with several windows; thousands from one user are an attack
# on everyone else's share of the SDK's session table (10,000).
MAX_SESSIONS_PER_USER = 32
MAX_SESSIONS_PER_SOURCE = 64  # without sign-in (a server without --auth): per client address


def auth_settings(public_url: str) -> AuthSettings:
    return AuthSettings(
        issuer_url=public_url,  # type: ignore[arg-type]  # validated as a string: an empty path stays empty
        resource_server_url=public_url + MCP_PATH,  # type: ignore[arg-type]
        validate_token_resource=True,
        client_registration_options=ClientRegistrationOptions(enabled=True),
        revocation_options=RevocationOptions(enabled=True),
    )


def make_bridge(runtime: Runtime, settings: Settings, public_url: str, *, fetch_client: Any = None) -> XBridge:
    if runtime.store is None or not settings.x_client_id:
        raise SettingsError("hosted mode needs a store and the X app's client id")
    # A short timeout: a sign-in waits on this fetch, and slow hosts mustn't hold the fetch slots.
    fetcher = RemoteFetcher(allowed_hosts=settings.client_metadata_allowed_hosts, http=fetch_client, timeout=5.0)
    x_app = oauth.OAuthApp(
        client_id=settings.x_client_id, client_secret=settings.x_client_secret, api_base_url=settings.api_base_url
    )
    return XBridge(
        runtime.store,
        ClientRegistry(runtime.store, fetcher),
        x_app=x_app,
        issuer_url=public_url,
        resource_url=public_url + MCP_PATH,
        grants=runtime.tenants.grants if runtime.tenants is not None else None,
    )


def hosted_app(server: MCPServer, bridge: XBridge, store: TokenStore, public_url: str) -> ASGIApp:
    hosts, origins = _allowed(public_url)
    app: Starlette = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins),
    )
    metadata = build_metadata(
        auth_settings(public_url).issuer_url,  # its URL keeps an empty path: issuers compare as strings
        None,
        ClientRegistrationOptions(enabled=True),
        RevocationOptions(enabled=True),
    )
    metadata.client_id_metadata_document_supported = True  # the SDK's routes don't say so; ClientRegistry does it
    # Public clients (CIMD ones, and most that register) authenticate with PKCE alone.
    metadata.token_endpoint_auth_methods_supported = ["none", "client_secret_post", "client_secret_basic"]
    app.router.routes.insert(
        0,
        Route(
            "/.well-known/oauth-authorization-server",
            endpoint=cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
    )
    app.router.routes.insert(
        0,
        Route(
            "/revoke",
            endpoint=cors_middleware(Revocation(bridge).handle, ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
    )
    pages = SignInPages(bridge, store)
    app.router.routes.append(Route(CONSENT_PATH, pages.consent_page, methods=["GET"]))
    app.router.routes.append(Route(CONSENT_PATH, pages.consent_answer, methods=["POST"]))
    app.router.routes.append(Route(CALLBACK_PATH, pages.x_callback, methods=["GET"]))
    limit_sessions(app, server, grants=bridge.grants)
    return StoreOutage(TransportGuard(OAuthEndpointGuard(app, resource_url=bridge.resource_url), hosts, origins))


def limit_sessions(app: Starlette, server: MCPServer, *, grants: Grants | None = None) -> None:
    """Put SessionQuota in front of the MCP endpoint, behind authentication (so it sees the caller); with
    `grants`, a session ends when the grant it was opened under does."""
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == MCP_PATH:
            quota = SessionQuota(route.app, lambda: open_session_ids(server))
            route.app = quota
            if grants is not None:
                grants.on_end.append(quota.end_sessions_of)
            return
    raise RuntimeError(f"the SDK's app has no {MCP_PATH} route to limit sessions on")


def open_session_ids(server: MCPServer) -> Any:
    """The sessions the SDK holds open: id -> transport. The one private attribute read here: the SDK has no
    public way to learn that a session ended by idling out, nor to end one whose grant was revoked
    (tests/hosted/test_under_attack.py fails loudly if it goes away)."""
    return server.session_manager._server_instances


def _allowed(public_url: str) -> tuple[list[str], list[str]]:
    public = urlsplit(public_url)
    hosts = [public.netloc] + [f"{host}:*" for host in _LOOPBACK_HOSTS]
    if public.port is None:
        hosts.append(f"{public.netloc}:{443 if public.scheme == 'https' else 80}")
    origins = [f"{public.scheme}://{public.netloc}"]
    if is_loopback_host(public.hostname or ""):
        origins += [f"http://{host}:*" for host in _LOOPBACK_HOSTS]
    return hosts, origins


class Revocation:
    """RFC 7009 token revocation that public clients can use.

    The SDK's /revoke handler requires a client_secret field even from clients that have none
    (its request model gives the field no default), so a public client's standard request
    (token and client_id) would get a 400. Clients are authenticated exactly as at /token.
    """

    def __init__(self, bridge: XBridge) -> None:
        self._bridge = bridge
        self._clients = ClientAuthenticator(bridge)

    async def handle(self, request: Request) -> Response:
        try:
            client = await self._clients.authenticate_request(request)
        except AuthenticationError as exc:
            return JSONResponse({"error": "unauthorized_client", "error_description": exc.message}, status_code=401)
        form = await request.form()
        token = form.get("token")
        if not isinstance(token, str) or not token:
            return JSONResponse({"error": "invalid_request", "error_description": "token is required"}, status_code=400)
        # Unknown tokens and other clients' tokens get the same 200 (RFC 7009 2.2): nothing to learn.
        await self._bridge.revoke_value(client.client_id or "", token)
        return Response(status_code=200, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class StoreOutage:
    """A request that needs the store while it can't be reached (Redis away) gets a 503 with Retry-After
    (RFC 9110 15.6.4) and one log line: not a 500 and a traceback per request. The server stays up; the
    next request after Redis is back works."""

    RETRY_AFTER = 5

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracking)
        except Exception as exc:
            outage = _store_outage(exc)
            if outage is None:
                raise
            logger.warning("%s %s: %s", scope.get("method"), scope.get("path"), outage)
            logger.debug("store outage", exc_info=exc)
            if not started:
                await _refuse_json(
                    send,
                    503,
                    "temporarily_unavailable",
                    "The server can't reach its store right now; try again shortly.",
                    retry_after=self.RETRY_AFTER,
                )


def _store_outage(exc: BaseException) -> StoreUnavailableError | None:
    """`exc` if it is a StoreUnavailableError, or the first of them when a group holds nothing else."""
    if isinstance(exc, StoreUnavailableError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found = [_store_outage(inner) for inner in exc.exceptions]
        return found[0] if found and all(found) else None
    return None


class TransportGuard:
    """Host on every path, Origin on the MCP endpoint (browsers reach the OAuth endpoints cross-origin)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], origins: Iterable[str]) -> None:
        self._app = app
        self._hosts = list(hosts)
        self._origins = list(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not _matches(headers.get("host", ""), self._hosts):
            await _refuse(send, 421, "This server does not answer for that Host.")
            return
        origin = headers.get("origin")
        if scope.get("path", "").startswith(MCP_PATH) and origin and not _matches(origin, self._origins):
            await _refuse(send, 403, "Requests from this Origin are not allowed.")
            return
        await self._app(scope, receive, send)


def _matches(value: str, allowed: list[str]) -> bool:
    value = value.lower()
    for pattern in allowed:
        pattern = pattern.lower()
        if value == pattern or (
            pattern.endswith(":*") and value.startswith(pattern[:-1]) and value[len(pattern) - 1 :].isdigit()
        ):
            return True
    return False


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": "forbidden", "error_description": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- what anyone may call without signing in ---------------------------------------------------------------


def source_of(scope: Scope) -> str:
    """Who sent a request, as far as limits go: the client address (uvicorn applies X-Forwarded-For from
    trusted proxies), an IPv6 one by its /64, which one subscriber typically holds whole."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class Window:
    """Events in the last `period` seconds, per key and in all; bounded in keys kept."""

    def __init__(
        self, per_key: int, in_all: int, period: float, *, clock: Callable[[], float], max_keys: int = 10_000
    ) -> None:
        self._per_key, self._in_all, self._period, self._clock = per_key, in_all, period, clock
        self._max_keys = max_keys
        self._keys: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()

    def admit(self, key: str) -> str | None:
        """Count one event for `key`, or say which limit refuses it (and count nothing)."""
        now = self._clock()
        horizon = now - self._period
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        events = self._keys.get(key) or deque()
        while events and events[0] <= horizon:
            events.popleft()
        if len(events) >= self._per_key:
            return "source"
        if len(self._all) >= self._in_all:
            return "all"
        events.append(now)
        self._all.append(now)
        self._keys[key] = events
        self._keys.move_to_end(key)
        while len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)  # the least recent source; it had at most per_key events
        return None


class OAuthEndpointGuard:
    """Bounds on /register and /token, which anyone may call: body size, registration rate, resource."""

    def __init__(self, app: ASGIApp, *, resource_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._resource = resource_url.rstrip("/")
        self._registrations = Window(REGISTRATIONS_PER_SOURCE_PER_HOUR, REGISTRATIONS_PER_HOUR, 3600.0, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or path not in ("/register", "/token"):
            await self._app(scope, receive, send)
            return
        limit = MAX_REGISTRATION_BYTES if path == "/register" else MAX_TOKEN_REQUEST_BYTES
        body = await _read_body(receive, limit)
        if body is None:
            error = "invalid_client_metadata" if path == "/register" else "invalid_request"
            await _refuse_json(send, 413, error, f"The request body is over {limit} bytes.")
            return
        if path == "/register":
            refused = self._registrations.admit(source_of(scope))
            if refused is not None:
                who = "from your address" if refused == "source" else "on this server"
                logger.warning("refused a client registration: too many %s in the last hour", who)
                await _refuse_json(
                    send,
                    429,
                    "too_many_requests",
                    f"Too many client registrations {who} in the last hour; an MCP client registers once and "
                    "keeps its client id. Try again later.",
                    retry_after=600,
                )
                return
        else:
            # RFC 8707 section 2: a token request may name the resource it wants a token for; ours are only
            # ever for this server's MCP endpoint, so another one is refused (invalid_target), not ignored.
            form = parse_qs(body.decode("latin-1"))
            resources = form.get("resource", [])
            if any(resource.rstrip("/") != self._resource for resource in resources):
                await _refuse_json(
                    send, 400, "invalid_target", f"This server issues tokens only for the resource {self._resource}."
                )
                return
        await self._app(scope, _replay(body), send)


class SessionQuota:
    """At most MAX_SESSIONS_PER_USER open MCP sessions per signed-in user (per client address without
    sign-in), so one tenant can't take every slot of the SDK's session table; over it, a 429 saying so.

    Sessions are counted from the id in the response that opened them until the SDK lets them go
    (closed, idled out, crashed); requests in flight count too, so a burst can't overshoot.
    """

    def __init__(
        self,
        app: ASGIApp,
        open_ids: Callable[[], Any],
        *,
        per_user: int = MAX_SESSIONS_PER_USER,
        per_source: int = MAX_SESSIONS_PER_SOURCE,
    ) -> None:
        self._app = app
        self._open_ids = open_ids
        self._per_user = per_user
        self._per_source = per_source
        self._owners: dict[str, str] = {}  # session id -> owner
        self._grants: dict[str, Grant] = {}  # session id -> the grant it was opened under (hosted)
        self._opening: dict[str, int] = {}  # owner -> opening requests in flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not _may_open_session(scope):
            await self._app(scope, receive, send)
            return
        owner, limit = self._owner(scope)
        if self._count(owner) >= limit:
            who = "your X account" if owner.startswith("user:") else "your address"
            logger.warning("refused an MCP session: %s already has %d open", owner.split(":", 1)[0], limit)
            message = (
                f"Too many open MCP sessions for {who} ({limit}). Close sessions you no longer use (an HTTP "
                "DELETE of /mcp with their Mcp-Session-Id) or wait until they idle out."
            )
            # A JSON-RPC error body, as the SDK's own refusals on this endpoint have.
            await _send_json(
                send, 429, {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}, 60
            )
            return
        self._opening[owner] = self._opening.get(owner, 0) + 1
        grant = self._grant(scope)

        async def noting_the_session(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status", 500) < 400:
                for name, value in message.get("headers", []):
                    if name.lower() == b"mcp-session-id":
                        session_id = value.decode("latin-1")
                        self._owners[session_id] = owner
                        if grant is not None:
                            self._grants[session_id] = grant
            await send(message)

        try:
            await self._app(scope, receive, noting_the_session)
        finally:
            self._opening[owner] -= 1
            if not self._opening[owner]:
                del self._opening[owner]

    def _owner(self, scope: Scope) -> tuple[str, int]:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

        user = scope.get("user")
        if isinstance(user, AuthenticatedUser) and user.access_token.subject:
            return f"user:{user.access_token.subject}", self._per_user
        return f"source:{source_of(scope)}", self._per_source

    @staticmethod
    def _grant(scope: Scope) -> Grant | None:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

        user = scope.get("user")
        return grant_of(user.access_token) if isinstance(user, AuthenticatedUser) else None

    def _count(self, owner: str) -> int:
        self._forget_closed()
        return sum(1 for held in self._owners.values() if held == owner) + self._opening.get(owner, 0)

    def _forget_closed(self) -> None:
        live = self._open_ids()
        for session_id in [sid for sid in self._owners if sid not in live]:
            del self._owners[session_id]
            self._grants.pop(session_id, None)

    async def end_sessions_of(self, grant: Grant) -> None:
        """The grant is over: its sessions end now (their stream closes; their id answers 404 from here on),
        rather than stay open until they idle out."""
        self._forget_closed()
        live = self._open_ids()
        for session_id in [sid for sid, held in self._grants.items() if held == grant]:
            del self._grants[session_id]
            transport = live.get(session_id)
            if transport is not None:
                logger.info("ended an MCP session: the grant it was opened under is over")
                await transport.terminate()


def _may_open_session(scope: Scope) -> bool:
    """A request without a session id, in the protocol generation that has sessions (2025-11-25 and before)."""
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    headers = dict(scope.get("headers", []))
    if b"mcp-session-id" in headers:
        return False
    version = headers.get(b"mcp-protocol-version")
    return version is None or version.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is over `limit` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _refuse_json(
    send: Send, status: int, error: str, description: str, *, retry_after: int | None = None
) -> None:
    await _send_json(send, status, {"error": error, "error_description": description}, retry_after)


async def _send_json(send: Send, status: int, content: dict[str, Any], retry_after: int | None) -> None:
    body = json.dumps(content).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
