"""Full hosted sign-in through the sandbox, and each user acting only as themselves."""

from __future__ import annotations

import pytest
import redis

from ..conftest import Admin
from .signin import session, sign_in

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
        return "\n".join(
            f"{key!r} {connection.dump(key)!r}" for key in connection.scan_iter(count=1000)
        )
    finally:
        connection.close()


async def test_a_client_signs_in_through_x_and_acts_as_that_user(launcher, admin, sandbox, hosted_store):
    server = launcher.start()
    consent_as(admin, "alice")
    tokens, browser = await sign_in(server.url)
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
