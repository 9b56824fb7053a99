"""The sandbox as X's OAuth 2.0 authorization server, driven over HTTP as a browser and an app would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from xcourier.server.sandbox import (
    CONFIDENTIAL_CLIENT_ID,
    CONFIDENTIAL_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    Sandbox,
    SandboxConfig,
    SandboxServer,
)

from .helpers import ALICE_ID, DEMO_ID

REDIRECT = "http://127.0.0.1:8765/callback"
ALL_NEEDED = "tweet.read tweet.write users.read like.write offline.access"
BAD_CODE = {"error": "invalid_request", "error_description": "Value passed for the authorization code was invalid."}
BAD_TOKEN = {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
NO_CLIENT = {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(admin: httpx.Client, challenge: str, **overrides: str | None) -> httpx.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": PUBLIC_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": ALL_NEEDED,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return admin.get("/i/oauth2/authorize", params={k: v for k, v in params.items() if v is not None})


def redirected(response: httpx.Response, to: str = REDIRECT) -> dict[str, str]:
    """The query X put on the redirect back to the app."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(to + "?") or location.startswith(to + "&"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(admin: httpx.Client, client_id: str, form: dict[str, str], path: str = "/2/oauth2/token"):
    if client_id == CONFIDENTIAL_CLIENT_ID:
        return admin.post(path, data=form, auth=(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET))
    return admin.post(path, data={**form, "client_id": client_id})


def exchange(
    admin: httpx.Client, code: str, verifier: str, client_id: str = PUBLIC_CLIENT_ID, redirect_uri: str = REDIRECT
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return token_request(admin, client_id, form)


def refresh(admin: httpx.Client, refresh_token: str, client_id: str = PUBLIC_CLIENT_ID) -> httpx.Response:
    return token_request(admin, client_id, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def assert_token_body(body: dict[str, Any], scopes: str, *, refresh: bool) -> None:
    # X's OpenAPI spec has no schema for the token endpoint, so the shape is checked by hand.
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 7200
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 32
    assert set(body["scope"].split()) == set(scopes.split())
    if refresh:
        assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    else:
        assert "refresh_token" not in body
    assert set(body) <= {"token_type", "expires_in", "access_token", "scope", "refresh_token"}


def login(
    admin: httpx.Client, client_id: str = PUBLIC_CLIENT_ID, scope: str = ALL_NEEDED, redirect_uri: str = REDIRECT
) -> dict[str, Any]:
    verifier, challenge = pkce()
    response = authorize(admin, challenge, client_id=client_id, scope=scope, redirect_uri=redirect_uri)
    back = redirected(response, to=redirect_uri)
    response = exchange(admin, back["code"], verifier, client_id, redirect_uri)
    assert response.status_code == 200, response.text
    return response.json()


def me(client_for: Callable[..., httpx.Client], access_token: str) -> httpx.Response:
    return client_for(token=access_token).get("/2/users/me")


# ---- the flow ------------------------------------------------------------------------------


def test_public_client_flow_as_a_browser_would(admin: httpx.Client, client_for) -> None:
    verifier, challenge = pkce()
    back = redirected(authorize(admin, challenge))
    assert back["state"] == "state-123" and set(back) == {"state", "code"}
    response = exchange(admin, back["code"], verifier)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert_token_body(body, ALL_NEEDED, refresh=True)
    assert me(client_for, body["access_token"]).json()["data"]["username"] == "xcourier_demo"


def test_confidential_client_flow_with_basic_auth_and_another_consenting_user(admin: httpx.Client, client_for) -> None:
    assert admin.post("/_sandbox/oauth/consent", json={"approve": True, "username": "alice"}).json() == {
        "approve": True,
        "username": "alice",
    }
    body = login(admin, CONFIDENTIAL_CLIENT_ID)
    assert_token_body(body, ALL_NEEDED, refresh=True)
    assert me(client_for, body["access_token"]).json()["data"]["id"] == ALICE_ID
    renewed = refresh(admin, body["refresh_token"], CONFIDENTIAL_CLIENT_ID)
    assert renewed.status_code == 200
    assert me(client_for, renewed.json()["access_token"]).json()["data"]["id"] == ALICE_ID


def test_plain_pkce_is_accepted_as_x_documents(admin: httpx.Client) -> None:
    back = redirected(authorize(admin, "challenge", code_challenge_method="plain"))
    assert exchange(admin, back["code"], "challenge").status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:1/callback", "http://localhost:9/x/callback", "http://[::1]:8080/callback"],
)
def test_sandbox_apps_take_xcourier_callbacks_on_any_loopback_port(admin: httpx.Client, redirect_uri: str) -> None:
    assert login(admin, redirect_uri=redirect_uri)["access_token"]
    assert login(admin, CONFIDENTIAL_CLIENT_ID, redirect_uri=redirect_uri)["access_token"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/other",
        "http://127.0.0.1:8765/callback/",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8765/callback?next=1",
        "http://127.0.0.1:8765/x/callback/extra",
    ],
)
def test_sandbox_apps_refuse_unregistered_paths(admin: httpx.Client, redirect_uri: str) -> None:
    response = authorize(admin, pkce()[1], redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_a_registered_app_matches_its_callback_exactly_as_x_does(admin: httpx.Client) -> None:
    registered = "http://127.0.0.1:8700/cb?keep=1"
    response = admin.post(
        "/_sandbox/oauth/clients",
        json={"client_id": "exact-app", "redirect_uris": [registered, "https://app.example/cb"]},
    )
    assert response.status_code == 201, response.text
    assert login(admin, "exact-app", redirect_uri=registered)["access_token"]
    location = authorize(admin, pkce()[1], client_id="exact-app", redirect_uri=registered).headers["location"]
    assert location.startswith(registered + "&state=")
    for other in ("http://127.0.0.1:8701/cb?keep=1", "http://127.0.0.1:8700/cb", "https://app.example/cb/"):
        refused = authorize(admin, pkce()[1], client_id="exact-app", redirect_uri=other)
        assert refused.status_code == 400 and "location" not in refused.headers, other


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": "too-many", "redirect_uris": [f"https://app.example/{n}" for n in range(11)]},
        {"client_id": "wild", "redirect_uris": ["http://127.0.0.1:*/cb"]},
        {"client_id": "none", "redirect_uris": []},
        {"client_id": PUBLIC_CLIENT_ID, "redirect_uris": ["https://app.example/cb"]},
        {"client_id": "scheme", "redirect_uris": ["javascript:alert(1)"]},
    ],
)
def test_app_registration_follows_x_rules(admin: httpx.Client, body: dict[str, Any]) -> None:
    assert admin.post("/_sandbox/oauth/clients", json=body).status_code == 400


# ---- client authentication -----------------------------------------------------------------


def test_confidential_client_without_basic_auth_is_401(admin: httpx.Client) -> None:
    verifier, challenge = pkce()
    back = redirected(authorize(admin, challenge, client_id=CONFIDENTIAL_CLIENT_ID))
    form = {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT}
    form["code_verifier"] = verifier
    in_body = admin.post("/2/oauth2/token", data={**form, "client_id": CONFIDENTIAL_CLIENT_ID})
    assert (in_body.status_code, in_body.json()) == (401, NO_CLIENT)
    secret_in_body = admin.post(
        "/2/oauth2/token",
        data={**form, "client_id": CONFIDENTIAL_CLIENT_ID, "client_secret": "x"},
    )
    assert secret_in_body.status_code == 401
    wrong_secret = admin.post("/2/oauth2/token", data=form, auth=(CONFIDENTIAL_CLIENT_ID, "wrong"))
    assert (wrong_secret.status_code, wrong_secret.json()) == (401, NO_CLIENT)
    # The code was not spent by the refused attempts.
    assert exchange(admin, back["code"], verifier, CONFIDENTIAL_CLIENT_ID).status_code == 200


def test_unknown_or_missing_client_at_the_token_endpoint_is_401(admin: httpx.Client) -> None:
    for data in ({"grant_type": "refresh_token", "refresh_token": "x", "client_id": "nobody"}, {"grant_type": "x"}):
        response = admin.post("/2/oauth2/token", data=data)
        assert (response.status_code, response.json()) == (401, NO_CLIENT)
    basic_public = admin.post("/2/oauth2/token", data={"grant_type": "x"}, auth=(PUBLIC_CLIENT_ID, ""))
    assert basic_public.status_code == 401


def test_missing_or_unknown_grant_type_is_400(admin: httpx.Client) -> None:
    missing = admin.post("/2/oauth2/token", data={"client_id": PUBLIC_CLIENT_ID})
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    unknown = admin.post("/2/oauth2/token", data={"client_id": PUBLIC_CLIENT_ID, "grant_type": "password"})
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unsupported_grant_type")


# ---- refused codes ------------------------------------------------------------------------


def test_wrong_verifier_is_refused(admin: httpx.Client) -> None:
    _, challenge = pkce()
    back = redirected(authorize(admin, challenge))
    response = exchange(admin, back["code"], pkce()[0])
    assert (response.status_code, response.json()) == (400, BAD_CODE)
    assert exchange(admin, back["code"], "").status_code == 400


def test_wrong_redirect_uri_is_refused(admin: httpx.Client) -> None:
    verifier, challenge = pkce()
    back = redirected(authorize(admin, challenge))
    response = exchange(admin, back["code"], verifier, redirect_uri="http://127.0.0.1:8765/other")
    assert (response.status_code, response.json()) == (400, BAD_CODE)


def test_code_expires_after_30_seconds(admin: httpx.Client) -> None:
    verifier, challenge = pkce()
    back = redirected(authorize(admin, challenge))
    admin.post("/_sandbox/clock", json={"advance": 31}).raise_for_status()
    response = exchange(admin, back["code"], verifier)
    assert (response.status_code, response.json()) == (400, BAD_CODE)


def test_reused_code_is_refused_and_revokes_what_it_bought(admin: httpx.Client, client_for) -> None:
    verifier, challenge = pkce()
    back = redirected(authorize(admin, challenge))
    first = exchange(admin, back["code"], verifier).json()
    again = exchange(admin, back["code"], verifier)
    assert (again.status_code, again.json()) == (400, BAD_CODE)
    assert me(client_for, first["access_token"]).status_code == 401
    assert refresh(admin, first["refresh_token"]).json() == BAD_TOKEN


def test_code_issued_to_another_client_is_refused(admin: httpx.Client) -> None:
    verifier, challenge = pkce()
    back = redirected(authorize(admin, challenge, client_id=PUBLIC_CLIENT_ID))
    response = exchange(admin, back["code"], verifier, CONFIDENTIAL_CLIENT_ID)
    assert (response.status_code, response.json()) == (400, BAD_CODE)


def test_unknown_code_is_refused(admin: httpx.Client) -> None:
    assert exchange(admin, "no-such-code", "verifier").json() == BAD_CODE


# ---- authorize errors ------------------------------------------------------------------------


def test_unknown_client_gets_an_error_page_and_no_redirect(admin: httpx.Client) -> None:
    response = authorize(admin, pkce()[1], client_id="nobody")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://127.0.0.1/cb",
        "http://example.com/cb",
        "http://127.0.0.1.evil.example/cb",
        "http://localhost@evil.example/cb",
        "http://user:pw@127.0.0.1/cb",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1/cb#frag",
        "127.0.0.1/cb",
        "",
        None,
    ],
)
def test_non_loopback_redirect_uri_is_400_without_redirect(admin: httpx.Client, redirect_uri: str | None) -> None:
    response = authorize(admin, pkce()[1], redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "S512"}, "invalid_request"),
        ({"scope": None}, "invalid_request"),
        ({"scope": "tweet.read users.read admin.everything"}, "invalid_scope"),
    ],
)
def test_bad_authorize_parameters_redirect_with_an_error(
    admin: httpx.Client, overrides: dict[str, str | None], error: str
) -> None:
    back = redirected(authorize(admin, pkce()[1], **overrides))
    assert back["error"] == error
    assert back["state"] == "state-123"
    assert "code" not in back


def test_missing_state_redirects_with_an_error_and_no_state(admin: httpx.Client) -> None:
    back = redirected(authorize(admin, pkce()[1], state=None))
    assert back["error"] == "invalid_request"
    assert "state" not in back and "code" not in back


def test_denied_consent_redirects_with_access_denied_until_reset(admin: httpx.Client) -> None:
    admin.post("/_sandbox/oauth/consent", json={"approve": False}).raise_for_status()
    back = redirected(authorize(admin, pkce()[1]))
    assert (back["error"], back["state"]) == ("access_denied", "state-123")
    admin.post("/_sandbox/reset").raise_for_status()
    assert "code" in redirected(authorize(admin, pkce()[1]))


def test_consent_admin_validates_its_input(admin: httpx.Client) -> None:
    assert admin.post("/_sandbox/oauth/consent", json={"approve": "yes"}).status_code == 400
    assert admin.post("/_sandbox/oauth/consent", json={"approve": True, "username": "nobody"}).status_code == 404


# ---- refresh ------------------------------------------------------------------------------------


def test_without_offline_access_there_is_no_refresh_token(admin: httpx.Client) -> None:
    body = login(admin, scope="tweet.read users.read")
    assert_token_body(body, "tweet.read users.read", refresh=False)


def test_refresh_rotates_the_pair_and_spends_the_old_refresh_token(admin: httpx.Client, client_for) -> None:
    first = login(admin)
    response = refresh(admin, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert_token_body(second, ALL_NEEDED, refresh=True)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    # The old access token lives on until its own expiry.
    assert me(client_for, first["access_token"]).status_code == 200
    assert me(client_for, second["access_token"]).status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(admin: httpx.Client, client_for) -> None:
    first = login(admin)
    second = refresh(admin, first["refresh_token"]).json()
    third = refresh(admin, second["refresh_token"]).json()
    replay = refresh(admin, first["refresh_token"])
    assert (replay.status_code, replay.json()) == (400, BAD_TOKEN)
    for body in (first, second, third):
        assert me(client_for, body["access_token"]).status_code == 401
    # The newest refresh token died with its family.
    assert refresh(admin, third["refresh_token"]).json() == BAD_TOKEN
    # Other authorizations of the same user are untouched.
    other = login(admin)
    assert me(client_for, other["access_token"]).status_code == 200
    assert admin.get("/_sandbox/oauth/grants").json()["revoked_families"] == 1


def test_refresh_token_of_another_client_or_unknown_is_refused(admin: httpx.Client, client_for) -> None:
    body = login(admin)
    assert refresh(admin, body["refresh_token"], CONFIDENTIAL_CLIENT_ID).json() == BAD_TOKEN
    assert refresh(admin, "no-such-token").json() == BAD_TOKEN
    # Neither refusal spent or revoked anything.
    assert refresh(admin, body["refresh_token"]).status_code == 200


# ---- access tokens on X endpoints ------------------------------------------------------------


def test_oauth_access_tokens_expire_on_the_sandbox_clock(admin: httpx.Client, client_for) -> None:
    body = login(admin)
    admin.post("/_sandbox/clock", json={"advance": 7199}).raise_for_status()
    assert me(client_for, body["access_token"]).status_code == 200
    admin.post("/_sandbox/clock", json={"advance": 2}).raise_for_status()
    assert me(client_for, body["access_token"]).status_code == 401
    # The refresh token outlives the access token.
    assert refresh(admin, body["refresh_token"]).status_code == 200


def test_access_token_ttl_is_configurable() -> None:
    sandbox = Sandbox(SandboxConfig(access_token_ttl=60))
    with SandboxServer(sandbox) as server, httpx.Client(base_url=server.base_url) as client:
        body = login(client)
        assert body["expires_in"] == 60
        sandbox.advance_clock(61)
        headers = {"authorization": f"Bearer {body['access_token']}"}
        assert client.get("/2/users/me", headers=headers).status_code == 401


def test_admin_expire_reaches_oauth_tokens(admin: httpx.Client, client_for) -> None:
    one, two = login(admin), login(admin)
    admin.post("/_sandbox/tokens/expire", json={"access_token": one["access_token"]}).raise_for_status()
    assert me(client_for, one["access_token"]).status_code == 401
    assert me(client_for, two["access_token"]).status_code == 200
    assert admin.post("/_sandbox/tokens/expire", json={}).json()["expired"] >= 2
    assert me(client_for, two["access_token"]).status_code == 401


def test_tokens_carry_only_their_granted_scopes(admin: httpx.Client, client_for) -> None:
    body = login(admin, scope="tweet.read users.read")
    x = client_for(token=body["access_token"])
    assert x.get("/2/users/me").status_code == 200
    liked = x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": "1"})
    assert liked.status_code == 403
    problem = liked.json()
    assert problem["title"] == "Forbidden" and problem["status"] == 403
    assert "like.write" in problem["detail"]
    posted = x.post("/2/tweets", json={"text": "needs tweet.write"})
    assert posted.status_code == 403 and "tweet.write" in posted.json()["detail"]
    assert admin.get("/_sandbox/state").json()["posts"][-1]["text"] != "needs tweet.write"


def test_minted_tokens_have_every_scope_unless_told_otherwise(admin: httpx.Client, client_for, sandbox) -> None:
    full = client_for()
    post_id = full.post("/2/tweets", json={"text": "all scopes"}).json()["data"]["id"]
    token, _ = sandbox.mint_token("xcourier_demo", scopes=["tweet.read", "users.read", "media.write"])
    narrow = client_for(token=token)
    denied = narrow.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post_id})
    assert denied.status_code == 403 and "like.write" in denied.json()["detail"]
    minted = admin.post("/_sandbox/tokens", json={"username": "bob", "scopes": ["dm.write", "tweet.read"]}).json()
    assert minted["scope"] == "dm.write tweet.read"
    dm = client_for(token=minted["access_token"]).post(
        f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "hi"}
    )
    assert dm.status_code == 403 and dm.json()["detail"].endswith("users.read")
    assert admin.post("/_sandbox/tokens", json={"scopes": ["root"]}).status_code == 400
    assert admin.post("/_sandbox/tokens", json={"scopes": "tweet.read"}).status_code == 400


# ---- revoke -------------------------------------------------------------------------------------


def test_revoking_the_access_token_ends_the_authorization(admin: httpx.Client, client_for) -> None:
    body = login(admin)
    response = token_request(admin, PUBLIC_CLIENT_ID, {"token": body["access_token"]}, "/2/oauth2/revoke")
    assert (response.status_code, response.json()) == (200, {"revoked": True})
    assert me(client_for, body["access_token"]).status_code == 401
    assert refresh(admin, body["refresh_token"]).json() == BAD_TOKEN


def test_revoking_the_refresh_token_kills_its_access_tokens(admin: httpx.Client, client_for) -> None:
    body = login(admin, CONFIDENTIAL_CLIENT_ID)
    form = {"token": body["refresh_token"], "token_type_hint": "refresh_token"}
    assert token_request(admin, CONFIDENTIAL_CLIENT_ID, form, "/2/oauth2/revoke").json() == {"revoked": True}
    assert me(client_for, body["access_token"]).status_code == 401
    assert refresh(admin, body["refresh_token"], CONFIDENTIAL_CLIENT_ID).json() == BAD_TOKEN


def test_revoke_needs_client_auth_and_the_owning_client(admin: httpx.Client, client_for) -> None:
    body = login(admin)
    unauthenticated = admin.post("/2/oauth2/revoke", data={"token": body["access_token"]})
    assert (unauthenticated.status_code, unauthenticated.json()) == (401, NO_CLIENT)
    foreign = token_request(admin, CONFIDENTIAL_CLIENT_ID, {"token": body["access_token"]}, "/2/oauth2/revoke")
    assert (foreign.status_code, foreign.json()) == (400, BAD_TOKEN)
    assert me(client_for, body["access_token"]).status_code == 200
    unknown = token_request(admin, PUBLIC_CLIENT_ID, {"token": "no-such-token"}, "/2/oauth2/revoke")
    assert unknown.json() == {"revoked": True}
    missing = token_request(admin, PUBLIC_CLIENT_ID, {}, "/2/oauth2/revoke")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


# ---- admin counters -----------------------------------------------------------------------------


def test_grants_and_calls_are_counted(admin: httpx.Client) -> None:
    body = login(admin)
    refresh(admin, body["refresh_token"]).raise_for_status()
    refresh(admin, body["refresh_token"])  # spent: fails and revokes the family
    exchange(admin, "no-such-code", "v")
    token_request(admin, PUBLIC_CLIENT_ID, {"token": "x"}, "/2/oauth2/revoke")
    assert admin.get("/_sandbox/oauth/grants").json() == {
        "grants": {"authorization_code": 1, "refresh_token": 1},
        "failed": {"authorization_code": 1, "refresh_token": 1},
        "revoked_families": 1,
    }
    assert admin.get("/_sandbox/calls").json()["calls"] == {
        "GET /i/oauth2/authorize": 1,
        "POST /2/oauth2/token": 4,
        "POST /2/oauth2/revoke": 1,
    }
    admin.post("/_sandbox/reset").raise_for_status()
    assert admin.get("/_sandbox/oauth/grants").json()["grants"] == {"authorization_code": 0, "refresh_token": 0}


def test_oauth_endpoints_are_not_rate_limited(admin: httpx.Client) -> None:
    for _ in range(3):
        response = admin.post("/2/oauth2/token", data={"client_id": PUBLIC_CLIENT_ID, "grant_type": "x"})
        assert response.status_code == 400
        assert "x-rate-limit-limit" not in response.headers
