from __future__ import annotations

import httpx

from .helpers import ALICE_ID, DEMO_ID


def test_users_me_returns_the_token_user(x: httpx.Client) -> None:
    response = x.get("/2/users/me")
    assert response.status_code == 200
    assert response.json() == {"data": {"id": DEMO_ID, "name": "xcourier demo", "username": "xcourier_demo"}}


def test_every_x_response_carries_rate_limit_headers(x: httpx.Client) -> None:
    response = x.get("/2/users/me")
    assert response.headers["x-rate-limit-limit"] == "75"
    assert response.headers["x-rate-limit-remaining"] == "74"
    assert int(response.headers["x-rate-limit-reset"]) > 0


def test_username_lookup_is_case_insensitive(x: httpx.Client) -> None:
    response = x.get("/2/users/by/username/ALICE")
    assert response.json()["data"] == {"id": ALICE_ID, "name": "Alice", "username": "alice"}


def test_unknown_username_is_200_with_not_found_error_and_no_data(x: httpx.Client) -> None:
    response = x.get("/2/users/by/username/nobody_here")
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    assert body["errors"] == [
        {
            "value": "nobody_here",
            "detail": "Could not find user with username: [nobody_here].",
            "title": "Not Found Error",
            "resource_type": "user",
            "parameter": "username",
            "resource_id": "nobody_here",
            "type": "https://api.x.com/2/problems/resource-not-found",
        }
    ]


def test_malformed_username_is_400_invalid_request(x: httpx.Client) -> None:
    response = x.get("/2/users/by/username/not-valid-name")
    assert response.status_code == 400
    assert response.json()["type"] == "https://api.x.com/2/problems/invalid-request"


def test_missing_token_is_401_problem(client_for) -> None:
    client = client_for(token="unused")
    del client.headers["authorization"]
    response = client.get("/2/users/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


def test_unknown_token_is_401(client_for) -> None:
    assert client_for(token="made-up").get("/2/users/me").status_code == 401


def test_expired_token_is_401(client_for, sandbox) -> None:
    token, _ = sandbox.mint_token("alice", ttl=60)
    client = client_for(token=token)
    assert client.get("/2/users/me").status_code == 200
    sandbox.advance_clock(61)
    assert client.get("/2/users/me").status_code == 401


def test_tokens_live_two_hours_by_default(sandbox) -> None:
    _, expires_at = sandbox.mint_token()
    assert abs(expires_at - sandbox.now() - 7200) < 1
