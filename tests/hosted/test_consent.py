"""The consent page: it names the client, only our own page can approve it, and a sign-in
approved in one browser can't be finished in another (so a link can't hand over an account)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from .conftest import Instance
from .signin import REDIRECT_URI, Browser
from .test_sign_in import consent_as

pytestmark = pytest.mark.anyio


async def start_authorization(http: httpx.AsyncClient, server: Instance, client_name: str) -> str:
    """Register a client and ask /authorize, as an MCP client would: the consent page's URL."""
    registered = await http.post(
        f"{server.origin}/register",
        json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": client_name},
    )
    assert registered.status_code == 201, registered.text
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {
        "response_type": "code",
        "client_id": registered.json()["client_id"],
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "client-state",
        "resource": server.url,
    }
    answer = await http.get(f"{server.origin}/authorize?{urlencode(query)}")
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"].startswith(f"{server.origin}/x/consent?")
    return answer.headers["location"]


async def test_the_consent_page_names_the_client_and_a_denial_goes_back_as_access_denied(launcher):
    server = launcher.start()
    async with httpx.AsyncClient() as http:
        consent_url = await start_authorization(http, server, "Evil <b>Corp</b>")
        page = await http.get(consent_url)
    assert page.status_code == 200
    assert "Evil &lt;b&gt;Corp&lt;/b&gt;" in page.text and "http://127.0.0.1" in page.text  # escaped; the redirect host
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    browser = Browser(approve=False)
    answer = await browser.answer_consent(consent_url, page.text)
    await browser.aclose()
    assert answer.status_code == 302
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.headers["location"].startswith(REDIRECT_URI)
    assert (back["error"], back["state"]) == (["access_denied"], ["client-state"])


async def test_an_approval_from_another_site_is_refused(launcher):
    server = launcher.start()
    async with httpx.AsyncClient() as http:
        consent_url = await start_authorization(http, server, "some client")
        request_id = parse_qs(urlsplit(consent_url).query)["request"][0]
        form = {"request": request_id, "answer": "approve"}
        forged = await http.post(f"{server.origin}/x/consent", data=form, headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403
        unmarked = await http.post(f"{server.origin}/x/consent", data=form)  # neither Origin nor Referer
        assert unmarked.status_code == 403
        # Refusals used nothing up: the user's own approval still goes through, on to X.
        own = await http.post(f"{server.origin}/x/consent", data=form, headers={"Origin": server.origin})
    assert own.status_code == 302 and "/i/oauth2/authorize" in own.headers["location"]


async def test_a_sign_in_approved_in_one_browser_cannot_be_finished_in_another(launcher, admin, sandbox):
    server = launcher.start()
    attacker = Browser()
    consent_url = await start_authorization(attacker.http, server, "innocent-looking client")
    page = await attacker.http.get(consent_url)
    approved = await attacker.answer_consent(consent_url, page.text)
    x_page = approved.headers["location"]
    assert "/i/oauth2/authorize" in x_page

    # The victim opens the X link they were sent, and approves the app on X, signed in as themselves.
    consent_as(admin, "carol")
    async with httpx.AsyncClient(follow_redirects=False) as victim:
        at_x = await victim.get(x_page)
        assert at_x.status_code == 302 and "/x/callback" in at_x.headers["location"]
        back = await victim.get(at_x.headers["location"])
    assert back.status_code == 400
    assert "started somewhere else" in back.text
    assert "location" not in back.headers  # no code goes anywhere
    # Nor can the victim be asked for that link: the attempt used the sign-in up.
    retried = await attacker.http.get(at_x.headers["location"])
    await attacker.aclose()
    assert retried.status_code == 400 and "expired or was already used" in retried.text
    # X's code was never exchanged, so nothing of carol's was stored.
    assert admin.http.get("/oauth/grants").raise_for_status().json()["grants"]["authorization_code"] == 0
