"""The news feed between instances: sealed with the store's key, so Redis access alone can't inject posts."""

from __future__ import annotations

import json

import anyio
import pytest
import redis.asyncio as redis
from cryptography.fernet import Fernet

from xcourier.server.fleet import RedisFeed
from xcourier.tools.timeline import Post

pytestmark = pytest.mark.anyio

KEY = Fernet.generate_key().decode()
POST = Post(
    id="2126705490485313536", text="news for the fleet", edit_history_tweet_ids=["2126705490485313536"], author_id="42"
)


async def test_news_travels_sealed_and_forgeries_are_ignored(redis_url):
    channel = "test-feed"
    sender = RedisFeed(redis_url, instance="a", key=KEY, channel=channel)
    listener = RedisFeed(redis_url, instance="b", key=KEY, channel=channel)
    raw = redis.from_url(redis_url, decode_responses=True)
    received: list[tuple[str, list[Post]]] = []
    arrived = anyio.Event()

    async def receive(key: str, posts: list[Post]) -> None:
        received.append((key, posts))
        arrived.set()

    spy = raw.pubsub()
    await spy.subscribe(channel)
    async with anyio.create_task_group() as tasks:
        await tasks.start(listener.run, receive)
        # A forgery first (what anyone able to PUBLISH could send), then the real thing.
        fake = POST.model_copy(update={"id": "9126705490485313536", "text": "forged"})
        forged = {"from": "x", "key": "base|bob", "posts": [fake.model_dump(mode="json")]}
        await raw.publish(channel, json.dumps(forged))
        await sender.publish("base|bob", [POST])
        with anyio.fail_after(10):
            await arrived.wait()
        tasks.cancel_scope.cancel()
    assert received == [("base|bob", [POST])]  # the forgery, published first, never got through
    seen = [m async for m in _messages(spy, 2)]
    # On the wire the real post's text is sealed (a text with spaces can't occur in Fernet's base64 by chance).
    assert "forged" in seen[0] and "news for the fleet" not in seen[1]
    for closing in (spy, sender, listener, raw):
        await closing.aclose()


async def _messages(pubsub, count: int):
    with anyio.fail_after(10):
        while count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is not None:
                count -= 1
                yield str(message["data"])
