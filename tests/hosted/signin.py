"""An MCP client signing a user in to a hosted xcourier, the way a desktop client does it:
discover the metadata, register (or present a Client ID Metadata Document), send the user's
browser to the authorize URL, and exchange the code that comes back to the redirect URI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# Nobody listens here: the "browser" stops at the redirect to it and hands the code to the client.
REDIRECT_URI = "http://127.0.0.1:9/callback"


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Follows redirects from xcourier's /authorize through its consent page (answering it as told),
    X's (the sandbox's) page and back, keeping cookies as a browser does."""

    def __init__(self, verify: object = True, *, approve: bool = True) -> None:
        self.result: AuthorizationCodeResult | None = None
        self.visited: list[str] = []
        self.approve = approve
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=20, verify=verify)  # type: ignore[arg-type]

    async def open(self, url: str) -> None:
        for _ in range(12):
            self.visited.append(url)
            if url.startswith(REDIRECT_URI):
                query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                assert "code" in query, f"sign-in failed: {query}"
                self.result = AuthorizationCodeResult(
                    code=query["code"], state=query.get("state"), iss=query.get("iss")
                )
                return
            response = await self.http.get(url)
            if response.status_code == 200 and "<form" in response.text:
                response = await self.answer_consent(url, response.text)
            assert response.status_code in (302, 303, 307), f"{url} answered {response.status_code}: {response.text}"
            url = response.headers["location"]
        raise AssertionError(f"too many redirects: {self.visited}")

    async def answer_consent(self, page_url: str, page: str) -> httpx.Response:
        """Press Approve (or Deny) on xcourier's consent page: a same-origin form post."""
        action = re.search(r"<form method=post action='([^']+)'>", page)
        assert action is not None, page
        fields = dict(re.findall(r"<input type=hidden name=(\w+) value='([^']*)'>", page))
        parts = urlsplit(page_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        target = origin + action.group(1)
        self.visited.append(target)
        answer = {**fields, "answer": "approve" if self.approve else "deny"}
        return await self.http.post(target, data=answer, headers={"Origin": origin})

    async def code(self) -> AuthorizationCodeResult:
        assert self.result is not None, "the browser never came back with a code"
        return self.result

    async def aclose(self) -> None:
        await self.http.aclose()


def client_metadata() -> OAuthClientMetadata:
    return OAuthClientMetadata(
        redirect_uris=[REDIRECT_URI],
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        client_name="xcourier tests",
    )


@dataclass
class SignedIn:
    tokens: OAuthToken
    client: OAuthClientInformationFull  # as the MCP client registered it (DCR) or named itself (CIMD)
    browser: Browser


async def sign_in(mcp_url: str, *, client_metadata_url: str | None = None, browser: Browser | None = None) -> SignedIn:
    """The whole OAuth flow, triggered as a real client triggers it: by a 401 from /mcp."""
    storage = MemoryTokens()
    own_browser = browser is None
    browser = browser or Browser()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=client_metadata(),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.code,
        client_metadata_url=client_metadata_url,
    )
    try:
        async with (
            httpx2.AsyncClient(auth=provider, timeout=30) as http,
            Client(streamable_http_client(mcp_url, http_client=http), mode="legacy") as client,
        ):
            await client.list_tools()
    finally:
        if own_browser:
            await browser.aclose()
    assert storage.tokens is not None and storage.client is not None
    return SignedIn(storage.tokens, storage.client, browser)


@asynccontextmanager
async def session(mcp_url: str, access_token: str, **options: object) -> AsyncIterator[Client]:
    """An MCP session carrying a bearer token (what a signed-in client sends on every request)."""
    headers = {"Authorization": f"Bearer {access_token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http), **options) as client,  # type: ignore[arg-type]
    ):
        yield client


# -- the HTTP a client sends around the session: plain requests whose answers tests check ------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tests", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a Bearer WWW-Authenticate challenge."""
    header = response.headers.get("www-authenticate", "")
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer", header
    return dict(re.findall(r'([\w-]+)="([^"]*)"', params))


async def post_mcp(
    url: str, token: str | None = None, *, origin: str | None = None, host: str | None = None
) -> httpx.Response:
    """An MCP initialize request, as a client's first request: only the token and headers vary."""
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["Origin"] = origin
    if host is not None:
        headers["Host"] = host
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        return await http.post(url, json=INITIALIZE, headers=headers)


def assert_invalid_token(response: httpx.Response, origin: str) -> None:
    assert response.status_code == 401, response.text
    params = challenge(response)
    assert params["error"] == "invalid_token"
    assert params["resource_metadata"] == f"{origin}/.well-known/oauth-protected-resource/mcp"


def credentials(client: OAuthClientInformationFull) -> dict[str, str]:
    form = {"client_id": client.client_id or ""}
    if client.client_secret:
        form["client_secret"] = client.client_secret
    return form


async def revoke(origin: str, client: OAuthClientInformationFull, token: str) -> None:
    form = {"token": token, **credentials(client)}
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        response = await http.post(f"{origin}/revoke", data=form)
    assert response.status_code == 200, response.text


async def refresh(origin: str, client: OAuthClientInformationFull, refresh_token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        return await http.post(
            f"{origin}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, **credentials(client)},
        )
