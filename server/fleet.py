"""Several xcourier instances sharing one store: one poller per watched user, news for all.

Each watched user has a lease in the store; only its holder polls X for that user, renews
the lease every third of its TTL, and gives it up when nobody on that instance watches the
user any more. If the holder dies its lease runs out and another instance with subscribers
takes over from the cursor in the store, which the holder committed before telling anyone.
New posts reach the other instances over the feed (Redis pub/sub), carrying the posts, so
each instance can update its subscribers in both MCP generations and serve the resource.

X's activity stream (server/push.py) uses the feed for two more kinds of news: posts X says were
deleted (every instance drops them from its resource), and a catch-up request after the stream was
away longer than X's backfill keeps. A catch-up is read from each user's timeline by the instance
holding that user's lease, on its subscribers' logins, as its polls are; the request is also kept
in the store (its generation: when the stream holder asked), so an instance that missed the message,
or takes a lease over from one that died before catching up, still does it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio

from xcourier.tools.timeline import Post

from .auth.store import TokenStore, fernet_for

logger = logging.getLogger("xcourier.fleet")

DEFAULT_LEASE_TTL = 15.0
# The fleet's last catch-up request, and per user the last one its lease holder carried out.
CATCH_UP_RECORD = "xaa-catch-up"
CAUGHT_UP_RECORD = "watch-caught-up"
_CATCH_UP_KEY = "fleet"
# Long enough to outlive any gap it is about: a day, as the ids X bills once per day.
_CATCH_UP_KEEP_SECONDS = 24 * 3600.0


class Receiver(Protocol):
    """Takes another instance's news: `pushed` when the posts came from X's activity stream (in any
    order, not yet committed) rather than from a poll; `deleted`, ids X said the user deleted."""

    def __call__(
        self, key: str, posts: list[Post], *, pushed: bool = False, deleted: Sequence[str] = ()
    ) -> Awaitable[None]: ...


CatchUpReceiver = Callable[[float], Awaitable[None]]


class UpdateFeed(Protocol):
    async def publish(
        self, key: str, posts: Sequence[Post], *, pushed: bool = False, deleted: Sequence[str] = ()
    ) -> None: ...

    async def publish_catch_up(self, generation: float) -> None: ...

    async def run(
        self,
        receive: Receiver,
        *,
        on_catch_up: CatchUpReceiver | None = None,
        task_status: Any = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hand every other instance's news to `receive` (catch-up requests to `on_catch_up`) until
        cancelled; started once subscribed."""
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

    async def publish(
        self, key: str, posts: Sequence[Post], *, pushed: bool = False, deleted: Sequence[str] = ()
    ) -> None:
        if self.feed is not None:
            await self.feed.publish(key, posts, pushed=pushed, deleted=deleted)

    async def request_catch_up(self, generation: float) -> None:
        """The stream was away longer than X's backfill: every lease holder is to read its pushed users'
        timelines since their cursors. Stored first (the message may be missed), then announced."""
        await self._store.put_record(CATCH_UP_RECORD, _CATCH_UP_KEY, {"generation": generation}, _CATCH_UP_KEEP_SECONDS)
        if self.feed is not None:
            await self.feed.publish_catch_up(generation)

    async def catch_up_generation(self) -> float:
        """The fleet's last catch-up request (0.0: none in the last day)."""
        return _generation(await self._store.get_record(CATCH_UP_RECORD, _CATCH_UP_KEY))

    async def caught_up(self, key: str) -> float:
        """The last catch-up request carried out for the user, by whichever instance held its lease."""
        return _generation(await self._store.get_record(CAUGHT_UP_RECORD, key))

    async def mark_caught_up(self, key: str, generation: float) -> None:
        await self._store.put_record(CAUGHT_UP_RECORD, key, {"generation": generation}, _CATCH_UP_KEEP_SECONDS)


def _generation(record: dict[str, Any] | None) -> float:
    value = record.get("generation") if record else None
    return float(value) if isinstance(value, int | float) else 0.0


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

    async def publish(
        self, key: str, posts: Sequence[Post], *, pushed: bool = False, deleted: Sequence[str] = ()
    ) -> None:
        news: dict[str, Any] = {"from": self._instance, "key": key, "posts": [p.model_dump(mode="json") for p in posts]}
        if pushed:
            news["pushed"] = True
        if deleted:
            news["deleted"] = list(deleted)
        await self._send(news)

    async def publish_catch_up(self, generation: float) -> None:
        await self._send({"from": self._instance, "catch_up": generation})

    async def _send(self, news: dict[str, Any]) -> None:
        message = json.dumps(news)
        if self._fernet is not None:
            message = self._fernet.encrypt(message.encode()).decode()
        await self._redis.publish(self._channel, message)

    async def run(
        self,
        receive: Receiver,
        *,
        on_catch_up: CatchUpReceiver | None = None,
        task_status: Any = anyio.TASK_STATUS_IGNORED,
    ) -> None:
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
                        await self._apply(str(message["data"]), receive, on_catch_up)
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

    async def _apply(self, data: str, receive: Receiver, on_catch_up: CatchUpReceiver | None) -> None:
        try:
            if self._fernet is not None:
                data = self._fernet.decrypt(data.encode()).decode()
            news = json.loads(data)
            if news.get("from") == self._instance:
                return
            if "catch_up" in news:
                if on_catch_up is not None:
                    await on_catch_up(float(news["catch_up"]))
                return
            posts = [Post.model_validate(p) for p in news["posts"]]
            deleted = [str(i) for i in news.get("deleted") or []]
            if deleted:
                await receive(str(news["key"]), posts, pushed=news.get("pushed") is True, deleted=deleted)
            elif news.get("pushed") is True:
                await receive(str(news["key"]), posts, pushed=True)
            else:
                await receive(str(news["key"]), posts)
        except Exception:
            logger.warning("fleet: ignored a news message that is not from this fleet (bad seal or shape)")

    async def aclose(self) -> None:
        await self._redis.aclose()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
