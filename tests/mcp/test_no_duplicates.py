"""No duplicate posts from a lost answer, and retries only where repeating is harmless."""

from __future__ import annotations

import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.tools.client import RetryPolicy

pytestmark = pytest.mark.anyio


async def _no_wait(_seconds: float) -> None:
    return None


@pytest.fixture
async def client(runtime):
    runtime.client.retry = RetryPolicy(sleep=_no_wait)  # backoff delays are not what these tests measure
    async with Client(build_server(runtime)) as connected:
        yield connected


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content)


async def test_a_lost_answer_to_create_finds_the_post_instead_of_posting_twice(client, admin):
    admin.fault("POST /2/tweets", "drop")
    result = await client.call_tool("createPost", {"text": "did this land?"})
    assert result.is_error is False, text_of(result)
    assert "answer was lost" in text_of(result) and "exists once" in text_of(result)
    made = [p for p in admin.state()["posts"] if p["text"] == "did this land?"]
    assert len(made) == 1 and result.structured_content["data"]["id"] == made[0]["id"]
    assert admin.calls()["POST /2/tweets"] == 1  # looked, never re-sent


PNG_URI = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def test_a_lost_answer_to_a_post_with_an_image_finds_it_by_its_media(client, admin):
    # The sandbox, as X does, appends a t.co link for the image to the stored text.
    earlier = await client.call_tool("createPost", {"text": "first picture", "media": [{"url": PNG_URI}]})
    assert earlier.is_error is False
    admin.fault("POST /2/tweets", "drop")
    result = await client.call_tool("createPost", {"text": "second picture", "media": [{"url": PNG_URI}]})
    assert result.is_error is False, text_of(result)
    made = next(p for p in admin.state()["posts"] if p["text"].startswith("second picture https://t.co/"))
    assert result.structured_content["data"]["id"] == made["id"] != earlier.structured_content["data"]["id"]
    assert admin.calls()["POST /2/tweets"] == 2


async def test_a_lost_answer_to_a_dm_says_the_outcome_is_unknown(client, admin):
    admin.fault("POST /2/dm_conversations/with/{participant_id}/messages", "drop")
    result = await client.call_tool("sendDirectMessage", {"username": "alice", "text": "hello?"})
    assert result.is_error is True
    assert "may or may not have arrived" in text_of(result) and "Check the conversation" in text_of(result)
    assert admin.calls()["POST /2/dm_conversations/with/{participant_id}/messages"] == 1
    assert len(admin.state()["dms"]) == 1


async def test_a_5xx_on_like_is_retried_and_succeeds(client, admin):
    admin.http.post("/plan", json={"plan": "enterprise"}).raise_for_status()  # likes need Enterprise since 2026
    post = admin.post_as("bob", "like me despite the glitch")["data"]["id"]
    admin.fault("POST /2/users/{id}/likes", "status", status=503)
    result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.structured_content == {"data": {"liked": True}}
    assert admin.calls()["POST /2/users/{id}/likes"] == 2


async def test_a_5xx_on_create_is_not_retried(client, admin):
    admin.fault("POST /2/tweets", "status", status=503)
    result = await client.call_tool("createPost", {"text": "only once"})
    assert result.is_error is True and "server error (503)" in text_of(result)
    assert admin.calls()["POST /2/tweets"] == 1


async def test_a_429_is_never_retried(client, admin):
    post = admin.post_as("bob", "rate limited like")["data"]["id"]
    admin.fault("POST /2/users/{id}/likes", "status", status=429)
    result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is True and "rate limit" in text_of(result)
    assert admin.calls()["POST /2/users/{id}/likes"] == 1


async def test_retries_stop_after_the_bounded_attempts(client, admin):
    post = admin.post_as("bob", "always failing")["data"]["id"]
    admin.fault("POST /2/users/{id}/retweets", "status", status=502, times=10)
    result = await client.call_tool("repostPost", {"tweet_id": post})
    assert result.is_error is True
    assert admin.calls()["POST /2/users/{id}/retweets"] == 3
