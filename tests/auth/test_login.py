"""`xcourier auth login` against the sandbox over real HTTP, the test following the authorize URL."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
import pytest

from xcourier.server.auth import oauth
from xcourier.server.auth.login import LoginError, login

from .conftest import log_in

pytestmark = pytest.mark.anyio


async def test_public_client_login_stores_the_account(public_app, store, grants):
    tokens = await log_in(public_app, store)
    assert (tokens.username, tokens.user_id) == ("xcourier_demo", "1700000000000000001")
    assert set(oauth.DEFAULT_SCOPES) <= tokens.scopes
    assert tokens.refresh_token and tokens.client_secret is None
    assert await store.load() == tokens
    assert grants()["authorization_code"] == 1


async def test_confidential_client_login_authenticates_with_basic(confidential_app, store):
    tokens = await log_in(confidential_app, store)
    assert tokens.username == "xcourier_demo"
    assert (await store.load()).client_secret == confidential_app.client_secret


async def test_login_without_offline_access_has_no_refresh_token(public_app, store):
    tokens = await log_in(public_app, store, scopes=("tweet.read", "users.read"))
    assert tokens.refresh_token is None
    assert tokens.scopes == frozenset({"tweet.read", "users.read"})


async def test_a_callback_with_the_wrong_state_is_refused_and_the_login_goes_on(public_app, store):
    async def forged_then_real(url: str) -> None:
        async with httpx.AsyncClient() as http:
            callback = (await http.get(url)).headers["location"]
            forged = await http.get(callback.replace("state=", "state=forged"))
            assert forged.status_code == 400
            assert await store.list_accounts() == []
            await http.get(callback)

    tokens = await log_in(public_app, store, browser=forged_then_real)
    assert tokens.username == "xcourier_demo"


async def test_a_forged_callback_alone_never_completes_a_login(public_app, store):
    async def only_forged(url: str) -> None:
        async with httpx.AsyncClient() as http:
            callback = (await http.get(url)).headers["location"]
            await http.get(callback.replace("state=", "state=forged"))

    with pytest.raises(LoginError, match="timed out"):
        await log_in(public_app, store, browser=only_forged, timeout=0.5)
    assert await store.list_accounts() == []


async def test_denied_consent_is_a_clear_error_and_nothing_stored(public_app, store, admin):
    admin.http.post("/oauth/consent", json={"approve": False}).raise_for_status()
    with pytest.raises(LoginError, match="did not grant access"):
        await log_in(public_app, store)
    assert await store.list_accounts() == []


async def test_an_expired_code_is_refused_and_nothing_stored(public_app, store, admin):
    async def slow_browser(url: str) -> None:
        async with httpx.AsyncClient() as http:
            callback = (await http.get(url)).headers["location"]
            admin.http.post("/clock", json={"advance": 31}).raise_for_status()  # codes live 30 s
            await http.get(callback)

    with pytest.raises(LoginError, match="Codes live 30 seconds"):
        await log_in(public_app, store, browser=slow_browser)
    assert await store.list_accounts() == []


async def test_a_code_from_another_pkce_challenge_is_refused(public_app, store):
    """An attacker's code (their own challenge) injected into our callback fails PKCE."""

    async def inject_foreign_code(url: str) -> None:
        ours = parse_qs(urlsplit(url).query)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        theirs = {k: v[0] for k, v in ours.items()} | {"code_challenge": challenge}
        async with httpx.AsyncClient() as http:
            redirect = (await http.get(url.split("?")[0] + "?" + urlencode(theirs))).headers["location"]
            await http.get(redirect)  # carries our state and their code

    with pytest.raises(LoginError, match="refused the authorization code"):
        await log_in(public_app, store, browser=inject_foreign_code)
    assert await store.list_accounts() == []


async def test_an_authorization_code_works_once(public_app):
    redirect_uri = "http://127.0.0.1:1/callback"
    authorization = oauth.start_authorization(public_app, redirect_uri, oauth.DEFAULT_SCOPES)
    async with httpx.AsyncClient() as http:
        location = (await http.get(authorization.url)).headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    assert "access_token" in await oauth.exchange_code(public_app, authorization, code)
    with pytest.raises(oauth.GrantRejected):
        await oauth.exchange_code(public_app, authorization, code)


async def test_the_callback_refuses_other_hosts(public_app, store):
    async def rebinding_then_real(url: str) -> None:
        async with httpx.AsyncClient() as http:
            callback = (await http.get(url)).headers["location"]
            refused = await http.get(callback, headers={"Host": "attacker.example"})
            assert refused.status_code == 403
            await http.get(callback)

    tokens = await log_in(public_app, store, browser=rebinding_then_real)
    assert tokens.username == "xcourier_demo"


async def test_login_times_out_when_no_browser_answers(public_app, store):
    async def absent_browser(url: str) -> None:
        await anyio.sleep_forever()

    with pytest.raises(LoginError, match="timed out"):
        await log_in(public_app, store, browser=absent_browser, timeout=0.2)
    assert await store.list_accounts() == []


async def test_unknown_scope_is_refused_before_anything_happens(public_app, store):
    with pytest.raises(LoginError, match="Unknown X OAuth scope"):
        await login(public_app, ("tweet.read", "tweet.everything"), store, port=0, show_url=print)


async def test_authorize_url_carries_pkce_s256_and_state(public_app):
    authorization = oauth.start_authorization(public_app, "http://127.0.0.1:1/callback", oauth.DEFAULT_SCOPES)
    query = parse_qs(urlsplit(authorization.url).query)
    assert query["code_challenge_method"] == ["S256"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(authorization.code_verifier.encode()).digest())
    assert query["code_challenge"] == [expected.rstrip(b"=").decode()]
    assert query["state"] == [authorization.state] and len(authorization.state) >= 20
    assert authorization.url.startswith(public_app.api_base_url + "/i/oauth2/authorize?")


def test_real_x_uses_x_com_for_the_authorize_page():
    assert oauth.OAuthApp(client_id="c").authorize_url == "https://x.com/i/oauth2/authorize"
    assert oauth.OAuthApp(client_id="c", api_base_url="http://127.0.0.1:9").authorize_url == (
        "http://127.0.0.1:9/i/oauth2/authorize"
    )
    assert oauth.OAuthApp(client_id="c").token_url == "https://api.x.com/2/oauth2/token"
