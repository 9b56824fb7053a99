"""Every token store keeps the same promises: SQLite (embedded), Redis (shared), memory (throwaway)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from xcourier.server.auth.memory_store import MemoryTokenStore
from xcourier.server.auth.redis_store import RedisTokenStore
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.store import StaleLockError, open_store

from .test_store import token_set

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "redis", "memory"])
async def stores(request, tmp_path: Path) -> AsyncIterator[tuple]:
    """Two handles on one store, as two processes would have."""
    if request.param == "sqlite":
        first, second = SQLiteTokenStore(tmp_path / "s.db"), SQLiteTokenStore(tmp_path / "s.db")
        yield first, second
        await first.aclose()  # their kept connections
        await second.aclose()
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"test-{uuid.uuid4().hex}"
        first, second = RedisTokenStore(url, prefix=prefix), RedisTokenStore(url, prefix=prefix)
        yield first, second
        await first.aclose()
        await second.aclose()
    else:
        shared = MemoryTokenStore()
        yield shared, shared


async def test_a_saved_login_is_seen_by_every_handle(stores):
    one, two = stores
    first, second = token_set(at=100.0), token_set("1700000000000000002", "alice", at=200.0)
    await one.save(first)
    await one.save(second)
    assert await two.load() == second
    assert await two.load("@ALICE") == second and await two.load("1700000000000000001") == first
    assert [t.username for t in await two.list_accounts()] == ["alice", "xcourier_demo"]
    assert await two.delete(second.user_id) is True and await one.load() == first
    assert await one.load("alice") is None


async def test_cursors_and_audit_are_shared(stores):
    one, two = stores
    await one.save_cursor("base|alice", "123")
    assert await two.load_cursor("base|alice") == "123" and await two.load_cursor("base|bob") is None
    await one.append_audit(10.0, {"tool": "likePost"})
    await one.append_audit(20.0, {"tool": "createPost"})
    assert await two.audit_since(15.0) == [(20.0, {"tool": "createPost"})]
    assert [r["tool"] for _, r in await two.audit_since(0.0)] == ["likePost", "createPost"]


async def test_the_refresh_lock_excludes_the_other_handle(stores):
    one, two = stores
    order: list[str] = []

    async def second_holder() -> None:
        async with two.refresh_lock("42"):
            order.append("second")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group, one.refresh_lock("42"):
            group.start_soon(second_holder)
            await anyio.wait_all_tasks_blocked()  # the second holder is waiting for the lock
            order.append("first done")
    assert order == ["first done", "second"]


async def test_redis_refuses_a_write_by_a_holder_that_lost_its_lock(redis_url):
    prefix = f"test-{uuid.uuid4().hex}"
    store = RedisTokenStore(redis_url, prefix=prefix)
    tokens = token_set()
    await store.save(tokens)
    try:
        async with store.refresh_lock(tokens.user_id):  # fence 1: this holder stalls ...
            stalled = replace(tokens, access_token="from the stalled holder", version=2)
            # ... its lock expires and a later holder (fence 2) rotates and saves first.
            other = RedisTokenStore(redis_url, prefix=prefix)
            await other._redis.delete(f"{prefix}:refresh-lock:{tokens.user_id}")
            async with other.refresh_lock(tokens.user_id):
                await other.save(replace(tokens, access_token="from the later holder", version=3))
            with pytest.raises(StaleLockError):
                await store.save(stalled)
        assert (await store.load()).access_token == "from the later holder"
        await other.aclose()
    finally:
        await store.aclose()


def test_a_redis_url_opens_the_redis_store():
    store = open_store("redis://:hunter2@127.0.0.1:6390/0")
    assert isinstance(store, RedisTokenStore)
    assert "hunter2" not in store.location


# -- user id versus username -------------------------------------------------------------------------
# X usernames may be all digits, so a username can equal another account's (short, old) user id.

VICTIM_ID = "12345"


@pytest.mark.parametrize("victim_first", [True, False])
async def test_a_username_never_stands_in_for_a_user_id(stores, victim_first: bool):
    one, two = stores
    victim = token_set(VICTIM_ID, "victim", at=100.0)
    squatter = token_set("1700000000000000009", VICTIM_ID, at=200.0)  # logged in later, and named like the id
    for tokens in (victim, squatter) if victim_first else (squatter, victim):
        await one.save(tokens)

    assert await two.load_user(VICTIM_ID) == victim
    assert await two.load(VICTIM_ID) == victim  # the exact id wins over the username
    assert await two.load("@" + VICTIM_ID) == squatter  # "@" names a username only
    assert await two.load_user(squatter.user_id) == squatter
    assert await two.load_user("victim") is None and await two.load_user("@victim") is None  # never by username

    await one.delete(VICTIM_ID)
    assert await two.load_user(VICTIM_ID) is None  # not the squatter, once the victim is gone
    assert await two.load(VICTIM_ID) == squatter  # (the CLI's --account NAME still finds the username)


async def test_load_matches_the_current_username(stores):
    one, two = stores
    renamed = token_set("1700000000000000001", "bob", at=100.0)
    await one.save(renamed)
    await one.save(replace(renamed, username="robert"))
    assert await two.load("bob") is None and await two.load("@Robert") == replace(renamed, username="robert")

    newer = token_set("1700000000000000002", "bob", at=200.0)  # X gave the freed name to another account
    await one.save(newer)
    assert await two.load("@bob") == newer


# -- the watcher's cursors, in batches -------------------------------------------------------------------
# More keys than SQLite reads in one query (500) and writes on the event loop (512): every path is taken.
MANY = 1_200


def cursor_batch(value: str, count: int = MANY) -> dict[str, str]:
    return {f"https://api.x.com|user{i}": value for i in range(count)}


async def test_a_batch_of_cursors_is_read_back_by_every_handle(stores):
    one, two = stores
    batch = {key: str(1_000_000 + i) for i, key in enumerate(cursor_batch("0"))}
    await one.save_cursors(batch)
    assert await two.load_cursors(batch) == batch
    assert await two.load_cursor("https://api.x.com|user7") == "1000007"  # the single-key view of the same data
    await two.save_cursor("https://api.x.com|user7", "5")
    asked = [
        "https://api.x.com|user7",
        "https://api.x.com|nobody",
        "https://api.x.com|user7",
        "https://api.x.com|user8",
    ]
    assert await one.load_cursors(asked) == {"https://api.x.com|user7": "5", "https://api.x.com|user8": "1000008"}
    assert await one.load_cursors([]) == {} and await one.load_cursors(["https://api.x.com|nobody"]) == {}
    await one.save_cursors({})  # nothing to write is no error


async def test_a_bad_cursor_refuses_the_whole_batch(stores):
    one, two = stores
    await one.save_cursors({"base|alice": "1", "base|bob": "1"})
    with pytest.raises(ValueError, match=r"'base\|bob' must be a post id"):
        await one.save_cursors({"base|alice": "2", "base|bob": "12a"})
    with pytest.raises(ValueError, match="non-empty string"):
        await one.save_cursors({"base|alice": "3", "": "3"})
    with pytest.raises(ValueError, match="non-empty string"):
        await one.load_cursors(["base|alice", ""])
    assert await two.load_cursors(["base|alice", "base|bob"]) == {"base|alice": "1", "base|bob": "1"}


class FailingBatch(dict):
    """A batch whose reading fails half-way, as a generator or a caller's mapping can."""

    def items(self):  # type: ignore[override]
        for number, item in enumerate(super().items()):
            if number == len(self) // 2:
                raise RuntimeError("interrupted while the batch was read")
            yield item


async def test_an_interrupted_batch_writes_nothing(stores):
    one, two = stores
    await one.save_cursors(cursor_batch("1"))
    with pytest.raises(RuntimeError, match="interrupted"):
        await one.save_cursors(FailingBatch(cursor_batch("2")))
    assert set((await two.load_cursors(cursor_batch("1"))).values()) == {"1"}


async def test_two_writers_batches_are_each_applied_whole(stores):
    """Of two handles writing the same keys at once, each batch lands whole: a reader never sees a mix,
    and at the end every key holds the same writer's value."""
    one, two = stores
    keys = cursor_batch("0")
    await one.save_cursors(keys)
    mixed: list[set[str]] = []

    async def write(store, writer: str) -> None:
        for round_ in range(1, 6):
            await store.save_cursors(cursor_batch(f"{round_}{writer}"))

    async def read() -> None:
        for _ in range(10):
            values = set((await two.load_cursors(keys)).values())
            if len(values) != 1:
                mixed.append(values)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(write, one, "1")
            group.start_soon(write, two, "2")
            group.start_soon(read)
    assert mixed == []
    final = await one.load_cursors(keys)
    assert len(final) == MANY and set(final.values()) in ({"51"}, {"52"})


async def test_sqlite_a_batch_waits_for_another_writer_then_lands(tmp_path: Path):
    """A write lock held elsewhere (another process's transaction) makes a batch wait, not fail or block the
    event loop: it moves to a worker thread and lands once the lock is released."""
    import sqlite3

    store = SQLiteTokenStore(tmp_path / "s.db")
    await store.save_cursors({"base|alice": "1"})
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(store.save_cursors, {"base|alice": "2", "base|bob": "2"})
                await anyio.wait_all_tasks_blocked()  # the batch waits in its thread, the loop runs on
                assert await SQLiteTokenStore(tmp_path / "s.db").load_cursors(["base|alice", "base|bob"]) == {
                    "base|alice": "1"
                }
                other.execute("COMMIT")
        assert await store.load_cursors(["base|alice", "base|bob"]) == {"base|alice": "2", "base|bob": "2"}
    finally:
        other.close()
        await store.aclose()
