"""Full hosted sign-in through the sandbox, and each user acting only as themselves."""

from __future__ import annotations

import json

import httpx
import pytest
import redis

from xcourier.server.sandbox import PUBLIC_CLIENT_ID

from ..conftest import Admin
from .signin import post_mcp, refresh, session, sign_in

pytestmark = pytest.mark.anyio


def consent_as(admin: Admin, username: str) -> None:
    admin.http.post("/oauth/consent", json={"approve": True, "username": username}).raise_for_status()


def author_of(sandbox, post_id: str) -> str:
    post = next(p for p in sandbox.sandbox.snapshot()["posts"] if p["id"] == post_id)
    user = sandbox.sandbox.users[post["author_id"]]
    return user.username


def raw_redis_text(url: str) -> str:
    connection = redis.Redis.from_url(url)
    try:
        return "\n".join(f"{key!r} {connection.dump(key)!r}" for key in connection.scan_iter(count=1000))
    finally:
        connection.close()


async def test_a_client_signs_in_through_x_and_acts_as_that_user(launcher, admin, sandbox, hosted_store):
    server = launcher.start()
    consent_as(admin, "alice")
    signed = await sign_in(server.url)
    tokens, browser = signed.tokens, signed.browser
    # xcourier's /authorize sent the browser to X's (the sandbox's) page, which came back to xcourier.
    assert any("/i/oauth2/authorize" in url for url in browser.visited)
    assert any("/x/callback" in url for url in browser.visited)
    async with session(server.url, tokens.access_token, mode="legacy") as client:
        result = await client.call_tool("createPost", {"text": "hello from hosted mode"})
    assert not result.is_error, result
    post_id = result.structured_content["data"]["id"]
    assert author_of(sandbox, post_id) == "alice"
    # What is at rest: no X token, and none of ours, in the clear.
    at_rest = raw_redis_text(hosted_store)
    for secret in (*sandbox.sandbox.issued_secrets(), tokens.access_token, tokens.refresh_token or ""):
        assert secret and secret not in at_rest


async def test_two_users_on_one_instance_and_across_instances_each_act_only_as_themselves(
    launcher, admin, sandbox, enterprise
):
    first = launcher.start()
    second = launcher.start(public_url=first.origin)
    consent_as(admin, "alice")
    alice = (await sign_in(first.url)).tokens
    consent_as(admin, "carol")
    carol = (await sign_in(first.url)).tokens  # the public URL; behind a balancer it reaches any instance
    seeded = next(p for p in sandbox.sandbox.snapshot()["posts"] if not p["deleted"])["id"]

    posted: dict[str, str] = {}
    for server in (first, second):
        for name, tokens in (("alice", alice), ("carol", carol)):
            async with session(server.url, tokens.access_token, mode="legacy") as client:
                created = await client.call_tool("createPost", {"text": f"{name} on {server.origin}"})
                assert not created.is_error, created
                posted[created.structured_content["data"]["id"]] = name
                liked = await client.call_tool("likePost", {"tweet_id": seeded})
                assert not liked.is_error, liked
                trail = json.loads((await client.read_resource("x://audit")).contents[0].text)
            # Each user's audit trail holds their own writes only.
            assert {entry["account"] for entry in trail["entries"]} == {name}
    assert {post_id: author_of(sandbox, post_id) for post_id in posted} == posted
    assert sandbox.sandbox.likes == {(sandbox.sandbox.user_by_username(name).id, seeded) for name in ("alice", "carol")}

    # One user's token can't delete the other's post: it acts as its own user, whom X refuses.
    alices_post = next(post_id for post_id, name in posted.items() if name == "alice")
    async with session(first.url, carol.access_token, mode="legacy") as client:
        refused = await client.call_tool("deletePost", {"id": alices_post})
    assert refused.is_error
    assert author_of(sandbox, alices_post) == "alice"
    assert not next(p for p in sandbox.sandbox.snapshot()["posts"] if p["id"] == alices_post)["deleted"]


async def test_when_x_refuses_the_login_the_client_is_sent_back_to_sign_in(launcher, admin, sandbox):
    server = launcher.start()
    consent_as(admin, "alice")
    earlier = sandbox.sandbox.oauth.issued_refresh_tokens()
    signed = await sign_in(server.url)
    tokens = signed.tokens
    # The user revokes the app on X's side: its access and refresh tokens die together.
    (x_refresh_token,) = sandbox.sandbox.oauth.issued_refresh_tokens() - earlier
    httpx.post(
        f"{sandbox.base_url}/2/oauth2/revoke", data={"token": x_refresh_token, "client_id": PUBLIC_CLIENT_ID}
    ).raise_for_status()
    async with session(server.url, tokens.access_token, mode="legacy") as client:
        refused = await client.call_tool("createPost", {"text": "after the app was revoked"})
    assert refused.is_error and "Sign in again" in refused.content[0].text
    # Our tokens stood for that X login: now a 401, which sends an MCP client through sign-in again...
    answer = await post_mcp(server.url, tokens.access_token)
    assert answer.status_code == 401
    renewed = await refresh(server.origin, signed.client, tokens.refresh_token or "")
    assert (renewed.status_code, renewed.json()["error"]) == (400, "invalid_grant")
    # ... which works, and acts again.
    again = (await sign_in(server.url)).tokens
    async with session(server.url, again.access_token, mode="legacy") as client:
        created = await client.call_tool("createPost", {"text": "signed in again"})
    assert not created.is_error, created
    assert author_of(sandbox, created.structured_content["data"]["id"]) == "alice"
    # The tokens of the refused login stay dead: a new login is not theirs.
    stale = await refresh(server.origin, signed.client, tokens.refresh_token or "")
    assert (stale.status_code, stale.json()["error"]) == (400, "invalid_grant")
    old = await post_mcp(server.url, tokens.access_token)
    assert old.status_code == 401


async def test_signing_in_on_a_second_device_keeps_the_first_one_signed_in(launcher, admin, sandbox):
    server = launcher.start()
    consent_as(admin, "alice")
    laptop = (await sign_in(server.url)).tokens
    phone = (await sign_in(server.url)).tokens
    for name, device in (("laptop", laptop), ("phone", phone)):
        async with session(server.url, device.access_token, mode="legacy") as client:
            created = await client.call_tool("createPost", {"text": f"from the {name}"})
        assert not created.is_error, created
        assert author_of(sandbox, created.structured_content["data"]["id"]) == "alice"


async def test_revoking_on_x_and_signing_in_again_at_once_ends_the_old_grants(launcher, admin, sandbox):
    server = launcher.start()
    consent_as(admin, "alice")
    earlier = sandbox.sandbox.oauth.issued_refresh_tokens()
    old = (await sign_in(server.url)).tokens
    (x_refresh_token,) = sandbox.sandbox.oauth.issued_refresh_tokens() - earlier
    # Revoked on X, and straight back in: no call in between told xcourier the old login died.
    httpx.post(
        f"{sandbox.base_url}/2/oauth2/revoke", data={"token": x_refresh_token, "client_id": PUBLIC_CLIENT_ID}
    ).raise_for_status()
    new = (await sign_in(server.url)).tokens
    stale = await post_mcp(server.url, old.access_token)
    assert stale.status_code == 401  # whoever held the old grant lost it
    async with session(server.url, new.access_token, mode="legacy") as client:
        created = await client.call_tool("createPost", {"text": "after a fresh start"})
    assert not created.is_error, created
