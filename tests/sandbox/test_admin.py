from __future__ import annotations

import time

import httpx
import pytest

from .helpers import ALICE_ID, DEMO_ID


def test_admin_creates_posts_as_any_user(admin: httpx.Client, x: httpx.Client) -> None:
    response = admin.post("/_sandbox/posts", json={"username": "Alice", "text": "from the admin"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data == {"id": data["id"], "text": "from the admin", "edit_history_tweet_ids": [data["id"]]}
    assert x.get(f"/2/users/{ALICE_ID}/tweets").json()["data"][0]["id"] == data["id"]


def test_admin_post_keeps_the_duplicate_check(admin: httpx.Client) -> None:
    admin.post("/_sandbox/posts", json={"username": "bob", "text": "twice"})
    assert admin.post("/_sandbox/posts", json={"username": "bob", "text": "twice"}).status_code == 403


def test_admin_post_for_unknown_user_is_404(admin: httpx.Client) -> None:
    assert admin.post("/_sandbox/posts", json={"username": "nobody", "text": "x"}).status_code == 404


def test_admin_state_shows_the_seed(admin: httpx.Client) -> None:
    state = admin.get("/_sandbox/state").json()
    assert [u["username"] for u in state["users"]] == ["xcourier_demo", "alice", "bob", "carol"]
    assert [u["accepts_dms"] for u in state["users"]] == [True, True, True, False]
    assert len(state["posts"]) == 6
    assert all(not p["deleted"] and p["created_at"].endswith("Z") for p in state["posts"])
    assert state["likes"] == state["retweets"] == state["dms"] == state["media"] == []


def test_calls_count_every_x_request_including_rejected_ones(admin: httpx.Client, x: httpx.Client, client_for) -> None:
    admin.post("/_sandbox/rate-limits", json={"endpoint": "POST /2/tweets", "limit": 1})
    x.post("/2/tweets", json={"text": "one"})
    x.post("/2/tweets", json={"text": "two"})  # 429
    client_for(token="bogus").post("/2/tweets", json={"text": "three"})  # 401
    x.get("/2/users/me")
    assert admin.get("/_sandbox/calls").json() == {"calls": {"POST /2/tweets": 3, "GET /2/users/me": 1}}


def test_reset_restores_the_seed_and_clears_counters(admin: httpx.Client, x: httpx.Client) -> None:
    x.post("/2/tweets", json={"text": "temporary"})
    admin.post("/_sandbox/faults", json={"endpoint": "GET /2/users/me", "kind": "status", "status": 500})
    admin.post("/_sandbox/reset").raise_for_status()
    assert admin.get("/_sandbox/calls").json() == {"calls": {}}
    assert len(admin.get("/_sandbox/state").json()["posts"]) == 6
    assert x.get("/2/users/me").status_code == 200


def test_status_fault_returns_the_status_without_acting(admin: httpx.Client, x: httpx.Client) -> None:
    response = admin.post(
        "/_sandbox/faults", json={"endpoint": "POST /2/tweets", "kind": "status", "status": 503, "times": 2}
    )
    assert response.status_code == 201
    for _ in range(2):
        failed = x.post("/2/tweets", json={"text": "during the outage"})
        assert failed.status_code == 503
        assert failed.json()["title"] == "Service Unavailable"
    assert x.post("/2/tweets", json={"text": "during the outage"}).status_code == 201
    texts = [p["text"] for p in admin.get("/_sandbox/state").json()["posts"]]
    assert texts.count("during the outage") == 1


def test_dropped_response_still_creates_the_post(admin: httpx.Client, x: httpx.Client) -> None:
    admin.post("/_sandbox/faults", json={"endpoint": "POST /2/tweets", "kind": "drop"}).raise_for_status()
    with pytest.raises(httpx.TransportError):
        x.post("/2/tweets", json={"text": "did it post?"})
    posts = admin.get("/_sandbox/state").json()["posts"]
    assert [p["author_id"] for p in posts if p["text"] == "did it post?"] == [DEMO_ID]
    # The retry the client would make is then a duplicate, as on X.
    assert x.post("/2/tweets", json={"text": "did it post?"}).status_code == 403


def test_cleared_faults_no_longer_fire(admin: httpx.Client, x: httpx.Client) -> None:
    admin.post("/_sandbox/faults", json={"endpoint": "GET /2/users/me", "kind": "status", "status": 500})
    admin.delete("/_sandbox/faults").raise_for_status()
    assert x.get("/2/users/me").status_code == 200


@pytest.mark.anyio
async def test_latency_fault_delays_only_the_faulted_request(sandbox_server, sandbox) -> None:
    token, _ = sandbox.mint_token()
    async with httpx.AsyncClient(base_url=sandbox_server.base_url, headers={"authorization": f"Bearer {token}"}) as c:
        await c.post("/_sandbox/faults", json={"endpoint": "GET /2/users/me", "kind": "latency", "latency_ms": 300})
        started = time.monotonic()
        slow = await c.get("/2/users/me")
        slow_elapsed = time.monotonic() - started
        started = time.monotonic()
        fast = await c.get("/2/users/me")
        fast_elapsed = time.monotonic() - started
    assert slow.status_code == fast.status_code == 200
    assert slow_elapsed >= 0.3
    assert fast_elapsed < 0.3


def test_bad_fault_requests_are_400(admin: httpx.Client) -> None:
    assert admin.post("/_sandbox/faults", json={"endpoint": "POST /2/nope", "kind": "drop"}).status_code == 400
    assert admin.post("/_sandbox/faults", json={"endpoint": "POST /2/tweets", "kind": "explode"}).status_code == 400


def test_admin_tokens_mint_and_expire(admin: httpx.Client, client_for) -> None:
    minted = admin.post("/_sandbox/tokens", json={"username": "bob", "ttl": 100}).json()
    assert minted["username"] == "bob" and minted["user_id"] == "1700000000000000003"
    assert minted["expires_in"] == 100
    bob = client_for(token=minted["access_token"])
    assert bob.get("/2/users/me").json()["data"]["username"] == "bob"
    admin.post("/_sandbox/tokens/expire", json={"access_token": minted["access_token"]}).raise_for_status()
    assert bob.get("/2/users/me").status_code == 401


def test_expire_without_token_expires_all(admin: httpx.Client, client_for) -> None:
    alice, bob = client_for("alice"), client_for("bob")
    admin.post("/_sandbox/tokens/expire", json={}).raise_for_status()
    assert alice.get("/2/users/me").status_code == bob.get("/2/users/me").status_code == 401


def test_clock_advance_expires_tokens(admin: httpx.Client, x: httpx.Client, sandbox) -> None:
    before = sandbox.now()
    now = admin.post("/_sandbox/clock", json={"advance": 7201}).json()["now"]
    assert now - before >= 7201
    assert x.get("/2/users/me").status_code == 401


def test_unknown_user_token_is_404(admin: httpx.Client) -> None:
    assert admin.post("/_sandbox/tokens", json={"username": "nobody"}).status_code == 404


def test_admin_adds_users_who_can_post_and_be_looked_up(admin: httpx.Client, x: httpx.Client) -> None:
    created = admin.post("/_sandbox/users", json={"username": "dave_01"})
    assert created.status_code == 201
    user = created.json()["data"]
    assert x.get("/2/users/by/username/dave_01").json()["data"] == user
    assert admin.post("/_sandbox/posts", json={"username": "dave_01", "text": "hi"}).status_code == 201
    assert admin.post("/_sandbox/users", json={"username": "dave_01"}).status_code == 400
    assert admin.post("/_sandbox/users", json={"username": "not valid!"}).status_code == 400
    admin.post("/_sandbox/reset")
    assert "errors" in x.get("/2/users/by/username/dave_01").json()
