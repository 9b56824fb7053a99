"""Hosted mode refusing what it must: no token, a bad one, a revoked one, one for another resource,
an expired one, requests from a foreign Origin or for a foreign Host, and a code redeemed without
its PKCE verifier or twice."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlencode

import anyio
import httpx
import pytest
import uvicorn
from mcp.shared.auth import OAuthClientInformationFull

from xcourier.server.app import build_server
from xcourier.server.auth import oauth
from xcourier.server.hosted.bridge import ACCESS_TTL, XBridge
from xcourier.server.hosted.clients import ClientRegistry
from xcourier.server.hosted.http import hosted_app, make_bridge
from xcourier.server.hosted.runtime import open_hosted
from xcourier.server.runtime import Runtime
from xcourier.server.sandbox import PUBLIC_CLIENT_ID
from xcourier.server.settings import Settings
from xcourier.tools.fetch import RemoteFetcher

from .conftest import STORE_KEY
from .signin import (
    REDIRECT_URI,
    Browser,
    assert_invalid_token,
    credentials,
    post_mcp,
    refresh,
    revoke,
    sign_in,
)
from .test_sign_in import consent_as

pytestmark = pytest.mark.anyio

# -- helpers ---------------------------------------------------------------------------------------


@dataclass
class InProcess:
    url: str  # the MCP endpoint
    runtime: Runtime
    bridge: XBridge
    settings: Settings

    @property
    def origin(self) -> str:
        return self.url.removesuffix("/mcp")


def hosted_settings(sandbox_url: str, store: str, **extra: object) -> Settings:
    return Settings(
        transport="http",
        auth="x",
        x_client_id=PUBLIC_CLIENT_ID,
        api_base_url=sandbox_url,
        store=store,
        poll_interval=0.2,
        watch_search=False,
        **extra,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def hosted_in_process(
    settings: Settings, *, fetch_client: httpx.AsyncClient | None = None
) -> AsyncIterator[InProcess]:
    """What `xcourier serve --auth x` runs, in this event loop on a loopback socket of its own.

    The socket listens before uvicorn starts, so requests wait in its backlog until the app is up
    (lifespan included): no polling for readiness. Needs XCOURIER_STORE_KEY in the environment.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    public_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with open_hosted(settings) as runtime:
            bridge = make_bridge(runtime, settings, public_url, fetch_client=fetch_client)
            app = hosted_app(
                build_server(runtime, hosted=bridge, public_url=public_url), bridge, runtime.store, public_url
            )
            config = uvicorn.Config(
                app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=10
            )
            server = uvicorn.Server(config)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(partial(server.serve, sockets=[sock]))
                try:
                    yield InProcess(public_url + "/mcp", runtime, bridge, settings)
                finally:
                    server.should_exit = True
    finally:
        sock.close()


# -- 1. no token: the challenge, and the metadata it points to ------------------------------------


async def test_no_token_is_challenged_towards_the_metadata(launcher):
    server = launcher.start()
    origin = server.origin

    response = await post_mcp(server.url)
    assert_invalid_token(response, origin)

    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        resource = (await http.get(f"{origin}/.well-known/oauth-protected-resource/mcp")).raise_for_status().json()
        authorization = (await http.get(f"{origin}/.well-known/oauth-authorization-server")).raise_for_status().json()
    assert resource["resource"] == f"{origin}/mcp"
    assert resource["authorization_servers"] == [origin]

    assert authorization["issuer"] == origin  # no trailing slash: issuers compare as strings
    assert authorization["registration_endpoint"] == f"{origin}/register"
    assert authorization["revocation_endpoint"] == f"{origin}/revoke"
    assert authorization["authorization_endpoint"] == f"{origin}/authorize"
    assert authorization["token_endpoint"] == f"{origin}/token"
    assert authorization["code_challenge_methods_supported"] == ["S256"]
    assert authorization["client_id_metadata_document_supported"] is True


# -- 2. a token nobody issued ---------------------------------------------------------------------


async def test_an_unknown_token_is_refused(launcher):
    server = launcher.start()
    for token in ("not-a-token", "A" * 43, "Bearer"):
        assert_invalid_token(await post_mcp(server.url, token), server.origin)


# -- 3. revoked tokens -----------------------------------------------------------------------------


async def test_a_revoked_access_token_and_its_refresh_token_stop_working(launcher, admin):
    server = launcher.start()
    consent_as(admin, "alice")
    signed = await sign_in(server.url)  # its list_tools went through with the token
    assert signed.tokens.refresh_token

    await revoke(server.origin, signed.client, signed.tokens.access_token)

    assert_invalid_token(await post_mcp(server.url, signed.tokens.access_token), server.origin)
    response = await refresh(server.origin, signed.client, signed.tokens.refresh_token)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


async def test_a_revoked_refresh_token_takes_its_access_token_along(launcher, admin):
    server = launcher.start()
    consent_as(admin, "bob")
    signed = await sign_in(server.url)
    assert signed.tokens.refresh_token

    # Another client can't revoke it: the endpoint answers 200 (RFC 7009) and nothing changes.
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        registered = await http.post(
            f"{server.origin}/register",
            json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "stranger"},
        )
    assert registered.status_code == 201, registered.text
    stranger = OAuthClientInformationFull.model_validate(registered.json())
    assert stranger.client_id != signed.client.client_id
    await revoke(server.origin, stranger, signed.tokens.refresh_token)
    await revoke(server.origin, stranger, signed.tokens.access_token)
    assert (await post_mcp(server.url, signed.tokens.access_token)).status_code == 200

    await revoke(server.origin, signed.client, signed.tokens.refresh_token)

    assert_invalid_token(await post_mcp(server.url, signed.tokens.access_token), server.origin)
    response = await refresh(server.origin, signed.client, signed.tokens.refresh_token)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


async def test_a_public_client_revokes_with_its_client_id_alone(launcher, admin):
    server = launcher.start()
    consent_as(admin, "alice")
    signed = await sign_in(server.url)
    assert not signed.client.client_secret
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        response = await http.post(
            f"{server.origin}/revoke",
            data={"token": signed.tokens.access_token, "client_id": signed.client.client_id or ""},
        )
    assert response.status_code == 200, response.text
    assert_invalid_token(await post_mcp(server.url, signed.tokens.access_token), server.origin)


# -- 4. a token for another resource ---------------------------------------------------------------


async def test_a_token_is_good_only_at_the_resource_it_was_issued_for(launcher, admin):
    first = launcher.start()
    # Another replica of the same deployment (same public URL, same store): the same resource.
    replica = launcher.start(public_url=first.origin)
    # Another deployment on the same store: its resource is http://localhost:<port>/mcp, not
    # http://127.0.0.1:<port>/mcp, so the token records it can read name another audience.
    port = first.origin.rsplit(":", 1)[1]
    other = launcher.start(public_url=f"http://localhost:{port}")
    consent_as(admin, "alice")
    signed = await sign_in(first.url)
    token = signed.tokens.access_token

    assert (await post_mcp(replica.url, token)).status_code == 200
    assert_invalid_token(await post_mcp(other.url, token), f"http://localhost:{port}")
    assert (await post_mcp(first.url, token)).status_code == 200  # refused there, still good here


# -- 5. an expired token ---------------------------------------------------------------------------


async def test_an_expired_token_is_refused(sandbox, admin, hosted_store, monkeypatch):
    monkeypatch.setenv("XCOURIER_STORE_KEY", STORE_KEY)
    settings = hosted_settings(sandbox.base_url, hosted_store)
    async with hosted_in_process(settings) as server:
        consent_as(admin, "carol")
        signed = await sign_in(server.url)
        assert signed.tokens.refresh_token

        # The same server two hours ago: its refresh issues a token whose hour is long over.
        past = XBridge(
            server.runtime.store,  # type: ignore[arg-type]
            ClientRegistry(server.runtime.store, RemoteFetcher()),  # type: ignore[arg-type]
            x_app=oauth.OAuthApp(client_id=PUBLIC_CLIENT_ID, client_secret=None, api_base_url=sandbox.base_url),
            issuer_url=server.origin,
            resource_url=server.url,
            clock=lambda: time.time() - 2 * 3600,
        )
        client = await past.get_client(signed.client.client_id or "")
        assert client is not None
        old = await past.load_refresh_token(client, signed.tokens.refresh_token)
        assert old is not None
        stale = await past.exchange_refresh_token(client, old, old.scopes)

        # The record is there, for this resource; only its deadline has passed.
        record = await server.bridge.load_access_token(stale.access_token)
        assert record is not None and record.resource == server.url
        assert record.expires_at is not None and record.expires_at <= time.time() - 2 * 3600 + ACCESS_TTL + 1

        assert_invalid_token(await post_mcp(server.url, stale.access_token), server.origin)
        # The refresh spent the signed-in pair: its access token is gone as well.
        assert_invalid_token(await post_mcp(server.url, signed.tokens.access_token), server.origin)


# -- 6. Origin and Host ----------------------------------------------------------------------------


async def test_a_foreign_origin_is_refused_before_authentication(launcher, admin):
    server = launcher.start()
    consent_as(admin, "alice")
    signed = await sign_in(server.url)
    token = signed.tokens.access_token

    for credential in (token, None):
        response = await post_mcp(server.url, credential, origin="https://evil.example")
        assert response.status_code == 403, response.text
        assert "www-authenticate" not in response.headers

    response = await post_mcp(server.url, token, origin=server.origin)
    assert response.status_code == 200, response.text
    assert "serverInfo" in response.text


async def test_a_foreign_host_is_refused_on_every_path(launcher, admin):
    server = launcher.start()
    consent_as(admin, "alice")
    signed = await sign_in(server.url)

    for credential in (signed.tokens.access_token, None):
        response = await post_mcp(server.url, credential, host="evil.example")
        assert response.status_code == 421, response.text
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        for path in ("/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp"):
            response = await http.get(server.origin + path, headers={"Host": "evil.example"})
            assert response.status_code == 421, (path, response.text)
            # Under its own Host the same path answers.
            assert (await http.get(server.origin + path)).status_code == 200


# -- 7. authorization codes: PKCE, and one use only ------------------------------------------------


async def test_a_code_needs_its_verifier_and_is_redeemed_once(launcher, admin):
    server = launcher.start()
    origin = server.origin
    consent_as(admin, "alice")
    async with httpx.AsyncClient(timeout=20, trust_env=False) as http:
        registered = await http.post(
            f"{origin}/register",
            json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "by hand"},
        )
        assert registered.status_code == 201, registered.text
        client = OAuthClientInformationFull.model_validate(registered.json())

        verifier = secrets.token_urlsafe(48)
        challenge_ = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge_,
            "code_challenge_method": "S256",
            "state": "by-hand",
            "resource": server.url,
        }
        browser = Browser()
        await browser.open(f"{origin}/authorize?{urlencode(query)}")
        result = await browser.code()
        assert result.state == "by-hand" and result.iss == origin

        def exchange(code_verifier: str) -> dict[str, str]:
            return {
                "grant_type": "authorization_code",
                "code": result.code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": code_verifier,
                "resource": server.url,
                **credentials(client),
            }

        wrong = await http.post(f"{origin}/token", data=exchange(secrets.token_urlsafe(48)))
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["error"] == "invalid_grant"

        # Two racing redemptions of the code: exactly one gets tokens (and the other, a use of a used code,
        # revokes them: RFC 6749 section 4.1.2).
        answers: list[httpx.Response] = []

        async def redeem() -> None:
            answers.append(await http.post(f"{origin}/token", data=exchange(verifier)))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(redeem)
            tasks.start_soon(redeem)
        assert sorted(answer.status_code for answer in answers) == [200, 400], [a.text for a in answers]
        granted = next(answer for answer in answers if answer.status_code == 200).json()
        assert next(answer for answer in answers if answer.status_code == 400).json()["error"] == "invalid_grant"

        replay = await http.post(f"{origin}/token", data=exchange(verifier))
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text

    assert_invalid_token(await post_mcp(server.url, granted["access_token"]), origin)


async def test_a_refresh_token_used_twice_ends_the_whole_grant(launcher, admin):
    server = launcher.start()
    consent_as(admin, "alice")
    signed = await sign_in(server.url)
    rotated = await refresh(server.origin, signed.client, signed.tokens.refresh_token or "")
    assert rotated.status_code == 200, rotated.text
    newer = rotated.json()
    assert (await post_mcp(server.url, newer["access_token"])).status_code == 200
    # The old refresh token again: someone kept a copy. The grant ends, the newer pair included.
    replay = await refresh(server.origin, signed.client, signed.tokens.refresh_token or "")
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert_invalid_token(await post_mcp(server.url, newer["access_token"]), server.origin)
    dead = await refresh(server.origin, signed.client, newer["refresh_token"])
    assert (dead.status_code, dead.json()["error"]) == (400, "invalid_grant")
