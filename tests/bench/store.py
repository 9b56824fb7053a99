"""Benchmark 7: the newPost watcher at 1,000 and 10,000 users on the real stores (SQLite, Redis), news every round.

Two parts, each before/after, interleaved, medians and min-max:

A. Store operations per poll round. What the watcher does to its store in one round with news for every
   user: a cursor write per user, grouped in search batches (`timeline.search_queries`, ~30 users per
   `from:a OR from:b ...` query). Measured on the store alone:
     before     the cursor path as it was: SQLite a new connection with synchronous=FULL and a thread hop per
                cursor (`_run`, as save_cursor/load_cursor did), Redis one SET/GET round trip per cursor
     per-key    today's save_cursor/load_cursor (SQLite: the kept connection, on the event loop)
     batched    save_cursors/load_cursors once per search batch (what the watcher calls once wired)
   SQLite's "before" at 10,000 is timed on BEFORE_SAMPLE cursors and scaled (per-cursor time x N), marked
   "scaled"; `--full` times all of them (~35 s per repeat).

B. The real Watcher (server/watcher.py) in this process, X played by an httpx.MockTransport (users, timelines,
   recent search; every search answers one new post per member, so each round has news for everyone):
   subscribing N users (user lookup + newest posts + the cursor read and write, per user), then one forced
   poll round, on each store. Whatever the watcher calls on its store is what is timed: today, the per-key
   methods (the batch wiring is in the watcher, owned elsewhere).

Redis: a redis-server on a unix socket in a temporary directory (tests/redis_server.py); skipped without one.
Nothing leaves this machine.

    python -m tests.bench.store [--users 1000 10000] [--repeats 3] [--full]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from .common import summary, table, write_results

USERS = (1_000, 10_000)
BEFORE_SAMPLE = 2_000
SCOPE = "https://api.x.com"
_EPOCH_MS = 1288834974657
ROUND_GOAL_S = 2.0  # issue 14: a poll round at 10,000 watched users with news, SQLite store
SUBSCRIBE_GOAL_S = 25.0  # issue 14: subscribing 10,000 users, SQLite store


def snowflake(seconds: float, seq: int) -> str:
    return str((int(seconds * 1000) - _EPOCH_MS) << 22 | (seq & 0x3FFFFF))


def names(n: int) -> list[str]:
    return [f"user{i}" for i in range(n)]


def batches(n: int) -> list[list[str]]:
    from xcourier.tools import timeline

    return timeline.search_queries(sorted(names(n)))


# ---- stores ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_store(kind: str, tmp: Path, redis_url: str | None) -> AsyncIterator[Any]:
    from xcourier.server.auth.memory_store import MemoryTokenStore
    from xcourier.server.auth.redis_store import RedisTokenStore
    from xcourier.server.auth.sqlite_store import SQLiteTokenStore

    if kind == "sqlite":
        store: Any = SQLiteTokenStore(tmp / f"{uuid.uuid4().hex}.db")
    elif kind == "redis":
        assert redis_url is not None
        store = RedisTokenStore(redis_url, prefix=f"bench-{uuid.uuid4().hex}")
    else:
        store = MemoryTokenStore()
    try:
        yield store
    finally:
        await store.aclose()


async def before_save(store: Any, key: str, post_id: str) -> None:
    """The single-cursor write as it was before batching (git history of sqlite_store/redis_store)."""
    kind = type(store).__name__
    if kind == "SQLiteTokenStore":

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO cursors (key, post_id, updated_at) VALUES (?, ?, ?)",
                (key, post_id, time.time()),
            )

        await store._run(work)  # a new connection, synchronous=FULL, a thread hop
    elif kind == "RedisTokenStore":
        await store._redis.set(store._key("cursor", key), post_id)
    else:
        store._cursors[key] = post_id


async def before_load(store: Any, key: str) -> str | None:
    kind = type(store).__name__
    if kind == "SQLiteTokenStore":

        def work(db: sqlite3.Connection) -> tuple[str] | None:
            return db.execute("SELECT post_id FROM cursors WHERE key = ?", (key,)).fetchone()

        row = await store._run(work)
        return None if row is None else row[0]
    if kind == "RedisTokenStore":
        return await store._redis.get(store._key("cursor", key))
    return store._cursors.get(key)


async def timed(work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def store_ops(kind: str, n: int, repeats: int, full: bool, tmp: Path, redis_url: str | None) -> list[dict]:
    groups = batches(n)
    keys = {name: f"{SCOPE}|{name}" for name in names(n)}
    rows: dict[str, list[float]] = {}
    scaled = kind == "sqlite" and not full and n > BEFORE_SAMPLE
    async with open_store(kind, tmp, redis_url) as store:
        for round_ in range(repeats):
            post_id = snowflake(time.time(), round_)

            async def before_writes(post_id: str = post_id) -> None:
                for name in names(BEFORE_SAMPLE if scaled else n):
                    await before_save(store, keys[name], post_id)

            async def before_reads() -> None:
                for name in names(BEFORE_SAMPLE if scaled else n):
                    await before_load(store, keys[name])

            async def per_key_writes(post_id: str = post_id) -> None:
                for name in names(n):
                    await store.save_cursor(keys[name], post_id)

            async def per_key_reads() -> None:
                for name in names(n):
                    await store.load_cursor(keys[name])

            async def batched_writes(post_id: str = post_id) -> None:
                for group in groups:
                    await store.save_cursors({keys[name]: post_id for name in group})

            async def batched_reads() -> None:
                for group in groups:
                    await store.load_cursors([keys[name] for name in group])

            factor = n / BEFORE_SAMPLE if scaled else 1.0
            for label, work, scale in (
                ("write: before", before_writes, factor),
                ("write: per-key", per_key_writes, 1.0),
                ("write: batched", batched_writes, 1.0),
                ("read: before", before_reads, factor),
                ("read: per-key", per_key_reads, 1.0),
                ("read: batched", batched_reads, 1.0),
            ):
                rows.setdefault(label, []).append(await timed(work) * scale)
    found = []
    for label, samples in rows.items():
        s = summary(samples)
        found.append(
            {
                "store": kind,
                "users": n,
                "what": label + (" (scaled)" if scaled and "before" in label else ""),
                "calls": len(groups) if "batched" in label else n,
                "seconds": s,
                "ms_per_cursor": s["median"] * 1000 / n,
            }
        )
    return found


# ---- the real watcher -----------------------------------------------------------------------------


class MockX:
    """X as far as the watcher asks. Every recent search answers one new post per member (news every round)."""

    user_path = re.compile(r"/2/users/by/username/([A-Za-z0-9_]+)$")
    timeline_path = re.compile(r"/2/users/(\d+)/tweets$")

    def __init__(self) -> None:
        self.base = time.time() - 3600
        self.round = 0
        self.headers = {
            "x-rate-limit-limit": "1000000",
            "x-rate-limit-remaining": "999999",
            "x-rate-limit-reset": str(int(time.time()) + 7200),
        }

    @staticmethod
    def user_id(name: str) -> str:
        return str(10**12 + int(name.removeprefix("user")))

    def post(self, user_id: str, seconds: float) -> dict[str, Any]:
        post_id = snowflake(seconds, int(user_id) - 10**12)
        text = f"post by {user_id}: lorem ipsum dolor sit amet"
        return {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id], "author_id": user_id}

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if match := self.user_path.match(path):
            name = match.group(1)
            return httpx.Response(
                200, json={"data": {"id": self.user_id(name), "username": name, "name": name}}, headers=self.headers
            )
        if match := self.timeline_path.match(path):
            posts = [self.post(match.group(1), self.base)]
            return httpx.Response(200, json={"data": posts, "meta": {"result_count": 1}}, headers=self.headers)
        if path == "/2/tweets/search/recent":
            members = re.findall(r"from:([A-Za-z0-9_]+)", request.url.params["query"])
            posts = [self.post(self.user_id(name), self.base + 60 + self.round) for name in members]
            posts.sort(key=lambda p: int(p["id"]))
            meta = {"result_count": len(posts), "newest_id": posts[-1]["id"] if posts else None}
            return httpx.Response(200, json={"data": posts, "meta": meta}, headers=self.headers)
        return httpx.Response(404, json={"title": "Not Found", "detail": path, "status": 404})


class LegacyCursors:
    """A store whose single-key cursor methods take the path they took before (for the watcher's 'before')."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def load_cursor(self, key: str) -> str | None:
        return await before_load(self._store, key)

    async def save_cursor(self, key: str, post_id: str) -> None:
        await before_save(self._store, key, post_id)


async def watcher_run(kind: str, n: int, legacy: bool, tmp: Path, redis_url: str | None) -> dict[str, Any]:
    from xcourier.server.watcher import Watcher
    from xcourier.tools.client import StaticTokenProvider, XClient
    from xcourier.tools.users import UserDirectory

    mock = MockX()
    async with (
        open_store(kind, tmp, redis_url) as opened,
        httpx.AsyncClient(transport=httpx.MockTransport(mock.handler)) as http,
    ):
        store = LegacyCursors(opened) if legacy else opened
        client = XClient(StaticTokenProvider("bench"), base_url="http://x.invalid", http=http)
        watcher = Watcher(client, UserDirectory(client), store, cursor_scope=SCOPE, use_search=True)
        started = time.perf_counter()
        for number, name in enumerate(names(n)):
            await watcher.subscribe(f"x://users/{name}/posts", f"subscriber-{number}")
        subscribe_s = time.perf_counter() - started
        rounds = []
        for _ in range(2):
            mock.round += 1
            started = time.perf_counter()
            requests = await watcher.poll_due(force=True)
            rounds.append(time.perf_counter() - started)
        delivered = sum(w["delivered"] for w in watcher.status()["watched"])
    return {
        "store": kind,
        "users": n,
        "code": "before" if legacy else "now",
        "subscribe_s": subscribe_s,
        "round_s": min(rounds),
        "rounds_s": rounds,
        "requests_per_round": requests,
        "delivered": delivered,
    }


# ---- the run --------------------------------------------------------------------------------------


async def run(users: tuple[int, ...] = USERS, repeats: int = 3, full: bool = False) -> dict[str, Any]:
    logging.getLogger("xcourier").setLevel(logging.ERROR)
    from ..redis_server import redis_server

    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        tmp = Path(folder)
        (tmp / "redis").mkdir()
        try:
            redis_url: str | None = stack.enter_context(redis_server(tmp / "redis"))
        except Exception as exc:  # no redis-server on this machine: the Redis rows are skipped, and said so
            print(f"(Redis rows skipped: {exc})")
            redis_url = None
        kinds = ["sqlite", *(["redis"] if redis_url else []), "memory"]
        ops: list[dict[str, Any]] = []
        for n in users:
            for kind in kinds:
                with anyio.fail_after(900):
                    ops += await store_ops(kind, n, repeats, full, tmp, redis_url)
        watched: list[dict[str, Any]] = []
        for n in users:
            for kind in kinds:
                # The old SQLite path at 10,000 users costs minutes per run: timed at 1,000 (and with --full).
                legacy_too = kind != "memory" and (n <= 1_000 or full)
                for legacy in (True, False) if legacy_too else (False,):
                    with anyio.fail_after(900):
                        watched.append(await watcher_run(kind, n, legacy, tmp, redis_url))
    print(
        table(
            ["store", "N", "what", "calls", "median s", "min-max s", "ms per cursor"],
            [
                [
                    r["store"],
                    r["users"],
                    r["what"],
                    r["calls"],
                    r["seconds"]["median"],
                    f"{r['seconds']['min']:.3f}-{r['seconds']['max']:.3f}",
                    f"{r['ms_per_cursor']:.4f}",
                ]
                for r in ops
            ],
            f"7a. Cursor store operations per poll round with news for every user ({repeats} repeats)",
        )
    )
    print()
    print(
        table(
            ["store", "N", "code", "subscribe N s", "poll round s (best of 2)", "requests/round", "delivered"],
            [
                [
                    r["store"],
                    r["users"],
                    r["code"],
                    r["subscribe_s"],
                    r["round_s"],
                    r["requests_per_round"],
                    r["delivered"],
                ]
                for r in watched
            ],
            "7b. The real watcher, X mocked in-process: subscribe N users, then a poll round with news for all",
        )
    )
    data = {"repeats": repeats, "before_sample": BEFORE_SAMPLE, "full": full, "ops": ops, "watcher": watched}
    print(f"\nwrote {write_results('store', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=list(USERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="time SQLite's old path at every size, unscaled")
    args = parser.parse_args()
    anyio.run(run, tuple(args.users), args.repeats, args.full)


if __name__ == "__main__":
    main()
