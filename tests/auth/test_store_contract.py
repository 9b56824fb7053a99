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
        yield SQLiteTokenStore(tmp_path / "s.db"), SQLiteTokenStore(tmp_path / "s.db")
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
