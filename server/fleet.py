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
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

import anyio

from xcourier.tools.timeline import Post

from .auth.store import TokenStore, fernet_for

logger = logging.getLogger("xcourier.fleet")

DEFAULT_LEASE_TTL = 15.0


class Receiver(Protocol):
    """Takes another instance's news: `pushed` when the posts came from X's activity stream (in any
    order, not yet committed) rather than from a poll."""

    def __call__(self, key: str, posts: list[Post], *, pushed: bool = False) -> Awaitable[None]: ...


class UpdateFeed(Protocol):
    async def publish(self, key: str, posts: Sequence[Post], *, pushed: bool = False) -> None: ...

    async def run(self, receive: Receiver, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Hand every other instance's news to `receive` until cancelled; started once subscribed."""
        ...

    async def aclose(self) -> None: ...


class Fleet:
    def __init__(
        self,
        store: TokenStore,
        *,
        instance: str,  # this process's name in leases and news, unique across the fleet
        lease_ttl: float = DEFAULT_LEASE_TTL,
        feed: UpdateFeed | None = None,
    ) -> None:
        self._store = store
        self.instance = instance
        self.lease_ttl = lease_ttl
        self.feed = feed

    async def hold(self, key: str) -> bool:
        return await self._store.hold_lease(f"watch|{key}", self.instance, self.lease_ttl)

    async def release(self, key: str) -> None:
        await self._store.release_lease(f"watch|{key}", self.instance)

    async def vacant(self, key: str) -> bool:
        """Nobody in the fleet holds the user's lease, so nobody watches them (a brief probe hold)."""
        probe = f"{self.instance}-probe"
        if not await self._store.hold_lease(f"watch|{key}", probe, 1.0):
            return False
        await self._store.release_lease(f"watch|{key}", probe)
        return True

    async def publish(self, key: str, posts: Sequence[Post], *, pushed: bool = False) -> None:
        if self.feed is not None:
            await self.feed.publish(key, posts, pushed=pushed)


class RedisFeed:
    """Pub/sub on the store's Redis. At most once, like pub/sub: an instance that was
    disconnected for a moment misses that news, and its subscribers catch up on the next.

    With the store's key, messages are sealed (Fernet): a client that can publish on Redis but
    lacks the key can't inject posts or push a cursor past real ones, nor read what is sent."""

    def __init__(self, url: str, *, instance: str, key: str | None = None, channel: str = "xcourier:new-posts") -> None:
        from .auth.redis_store import import_redis

        self._redis = import_redis(url).from_url(url, decode_responses=True)
        self._instance = instance
        self._fernet = fernet_for(key) if key else None
        self._channel = channel

    async def publish(self, key: str, posts: Sequence[Post], *, pushed: bool = False) -> None:
        news: dict[str, Any] = {"from": self._instance, "key": key, "posts": [p.model_dump(mode="json") for p in posts]}
        if pushed:
            news["pushed"] = True
        message = json.dumps(news)
        if self._fernet is not None:
            message = self._fernet.encrypt(message.encode()).decode()
        await self._redis.publish(self._channel, message)

    async def run(self, receive: Receiver, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        backoff = 1.0
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if task_status is not anyio.TASK_STATUS_IGNORED:
                    task_status.started()
                    task_status = anyio.TASK_STATUS_IGNORED
                backoff = 1.0
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._apply(str(message["data"]), receive)
            except Exception as exc:
                # Redis away for a moment: news in between is missed (see above), the server stays up.
                # One line per attempt (a traceback each would bury the log); the traceback only with DEBUG.
                logger.warning("fleet: the news feed is down (%s); reconnecting in %.0f s", _one_line(exc), backoff)
                logger.debug("fleet: news feed error", exc_info=True)
            finally:
                with anyio.CancelScope(shield=True):
                    await pubsub.aclose()
            await anyio.sleep(backoff)  # a reconnection delay, not a synchronisation
            backoff = min(backoff * 2, 30.0)

    async def _apply(self, data: str, receive: Receiver) -> None:
        try:
            if self._fernet is not None:
                data = self._fernet.decrypt(data.encode()).decode()
            news = json.loads(data)
            if news.get("from") == self._instance:
                return
            posts = [Post.model_validate(p) for p in news["posts"]]
            if news.get("pushed") is True:
                await receive(str(news["key"]), posts, pushed=True)
            else:
                await receive(str(news["key"]), posts)
        except Exception:
            logger.warning("fleet: ignored a news message that is not from this fleet (bad seal or shape)")

    async def aclose(self) -> None:
        await self._redis.aclose()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
