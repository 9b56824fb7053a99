"""Several xcourier instances sharing one store: one poller per watched user, news for all.

Each watched user has a lease in the store; only its holder polls X for that user, renews
the lease every third of its TTL, and gives it up when nobody on that instance watches the
user any more. If the holder dies its lease runs out and another instance with subscribers
takes over from the cursor in the store, which the holder committed before telling anyone.
New posts reach the other instances over the feed (Redis pub/sub), carrying the posts, so
each instance can update its subscribers in both MCP generations and serve the resource.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio

from xcourier.tools.timeline import Post

from .auth.store import TokenStore

logger = logging.getLogger("xcourier.fleet")

DEFAULT_LEASE_TTL = 15.0

Receiver = Callable[[str, list[Post]], Awaitable[None]]


class UpdateFeed(Protocol):
    async def publish(self, key: str, posts: Sequence[Post]) -> None: ...

    async def run(self, receive: Receiver, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Hand every other instance's news to `receive` until cancelled; started once subscribed."""
        ...

    async def aclose(self) -> None: ...


class Fleet:
    def __init__(
        self,
        store: TokenStore,
        *,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        feed: UpdateFeed | None = None,
        instance: str | None = None,
    ) -> None:
        self._store = store
        self.lease_ttl = lease_ttl
        self.feed = feed
        self.instance = instance or uuid.uuid4().hex

    async def hold(self, key: str) -> bool:
        return await self._store.hold_lease(f"watch|{key}", self.instance, self.lease_ttl)

    async def release(self, key: str) -> None:
        await self._store.release_lease(f"watch|{key}", self.instance)

    async def publish(self, key: str, posts: Sequence[Post]) -> None:
        if self.feed is not None:
            await self.feed.publish(key, posts)


class RedisFeed:
    """Pub/sub on the store's Redis. At most once, like pub/sub: an instance that was
    disconnected for a moment misses that news, and its subscribers catch up on the next."""

    def __init__(self, url: str, *, instance: str, channel: str = "xcourier:new-posts") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)
        self._instance = instance
        self._channel = channel

    async def publish(self, key: str, posts: Sequence[Post]) -> None:
        message = {"from": self._instance, "key": key, "posts": [p.model_dump(mode="json") for p in posts]}
        await self._redis.publish(self._channel, json.dumps(message))

    async def run(self, receive: Receiver, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel)
        task_status.started()
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    news = json.loads(message["data"])
                    if news.get("from") == self._instance:
                        continue
                    await receive(str(news["key"]), [Post.model_validate(p) for p in news["posts"]])
                except Exception:
                    logger.exception("fleet: could not apply news from another instance")
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()

    async def aclose(self) -> None:
        await self._redis.aclose()
