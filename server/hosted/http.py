"""The hosted HTTP app: MCP at /mcp behind bearer tokens, xcourier's OAuth server, X's callback.

Transport checks come first, before authentication: a request whose Host is not this
server's (DNS rebinding) or whose Origin is a foreign web page is refused outright.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

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
from starlette.types import ASGIApp, Receive, Scope, Send

from xcourier.tools.fetch import RemoteFetcher

from ..auth import oauth
from ..auth.store import TokenStore
from ..runtime import Runtime
from ..settings import Settings, SettingsError, is_loopback_host
from .bridge import CALLBACK_PATH, CONSENT_PATH, XBridge
from .clients import ClientRegistry
from .pages import SignInPages

MCP_PATH = "/mcp"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


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
    return TransportGuard(app, hosts, origins)


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
