from __future__ import annotations

import httpx

from xcourier.server.sandbox import Sandbox, SandboxConfig


def test_rate_limit_spent_returns_429_with_reset_header(x: httpx.Client, admin: httpx.Client, sandbox) -> None:
    admin.post("/_sandbox/rate-limits", json={"endpoint": "GET /2/users/me", "limit": 2}).raise_for_status()
    first = x.get("/2/users/me")
    assert first.headers["x-rate-limit-remaining"] == "1"
    assert x.get("/2/users/me").headers["x-rate-limit-remaining"] == "0"
    spent = x.get("/2/users/me")
    assert spent.status_code == 429
    assert spent.json() == {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    assert spent.headers["x-rate-limit-limit"] == "2"
    assert spent.headers["x-rate-limit-remaining"] == "0"
    reset = int(spent.headers["x-rate-limit-reset"])
    assert reset == int(first.headers["x-rate-limit-reset"])
    assert 0 < reset - sandbox.now() <= 901


def test_window_reopens_after_the_reset_time(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/rate-limits", json={"endpoint": "GET /2/users/me", "limit": 1}).raise_for_status()
    x.get("/2/users/me")
    assert x.get("/2/users/me").status_code == 429
    admin.post("/_sandbox/clock", json={"advance": 901}).raise_for_status()
    assert x.get("/2/users/me").status_code == 200


def test_limits_are_per_user(client_for, admin: httpx.Client) -> None:
    admin.post("/_sandbox/rate-limits", json={"endpoint": "GET /2/users/me", "limit": 1}).raise_for_status()
    alice, bob = client_for("alice"), client_for("bob")
    assert alice.get("/2/users/me").status_code == 200
    assert alice.get("/2/users/me").status_code == 429
    assert bob.get("/2/users/me").status_code == 200


def test_limits_are_per_endpoint(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/rate-limits", json={"endpoint": "GET /2/users/me", "limit": 0}).raise_for_status()
    assert x.get("/2/users/me").status_code == 429
    assert x.get("/2/users/by/username/alice").status_code == 200


def test_default_limits_are_x_published_values(x: httpx.Client) -> None:
    assert x.post("/2/tweets", json={"text": "limit check"}).headers["x-rate-limit-limit"] == "100"
    assert (
        x.post("/2/dm_conversations/with/1700000000000000002/messages", json={"text": "hi"}).headers[
            "x-rate-limit-limit"
        ]
        == "15"
    )


def test_config_overrides_limits_and_window() -> None:
    sandbox = Sandbox(SandboxConfig(rate_limits={"GET /2/users/me": 3}, rate_limit_window=60, clock=lambda: 1_000.0))
    state = sandbox.hit_rate_limit("1", "GET /2/users/me")
    assert (state.limit, state.remaining, state.reset) == (3, 2, 1_060.0)
    sandbox.set_rate_limit("GET /2/users/me", 5)
    sandbox.reset()
    assert sandbox.hit_rate_limit("1", "GET /2/users/me").limit == 3
