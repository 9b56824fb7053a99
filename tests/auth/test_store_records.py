"""Short-lived records and leases keep the same promises in every store, across handles as across processes."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from xcourier.server.auth.memory_store import MemoryTokenStore
from xcourier.server.auth.redis_store import RedisTokenStore
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.store import Sealer, StoreError, TokenStore, place

from ..clock import Clock

pytestmark = pytest.mark.anyio

SECRET = "client-secret-PLAINTEXT-0123456789"
WAIT_LIMIT = 5.0  # seconds a Redis test waits for the server to expire a key before it fails


@dataclass
class Shared:
    """Two handles on one store, as two processes would have."""

    one: TokenStore
    two: TokenStore
    clock: Clock | None  # None: expiry runs on the server's own clock (Redis)

    @property
    def short_ttl(self) -> float:
        return 10.0 if self.clock is not None else 0.2

    async def after(self, seconds: float, condition: Callable[[], Awaitable[bool]]) -> None:
        """Let `seconds` pass, then `condition` must hold: at once on a test clock; on Redis's real clock
        by polling it, failing after WAIT_LIMIT rather than sleeping a guessed time."""
        if self.clock is not None:
            self.clock.now += seconds
            assert await condition()
            return
        with anyio.fail_after(WAIT_LIMIT):
            while not await condition():
                await anyio.sleep(0.02)


def whole_clock() -> Clock:
    clock = Clock()
    clock.now = 1_700_000_000.0  # whole, so the steps below (sums of powers of two) land exactly
    return clock


def clocked_handles(backend: str, tmp_path: Path) -> Shared:
    clock = whole_clock()
    if backend == "sqlite":
        path = tmp_path / "s.db"
        return Shared(SQLiteTokenStore(path, clock=clock), SQLiteTokenStore(path, clock=clock), clock)
    store = MemoryTokenStore(clock=clock)
    return Shared(store, store, clock)


@pytest.fixture(params=["sqlite", "redis", "memory"])
async def shared(request, tmp_path: Path) -> AsyncIterator[Shared]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"test-{uuid.uuid4().hex}"
        first, second = RedisTokenStore(url, prefix=prefix), RedisTokenStore(url, prefix=prefix)
        yield Shared(first, second, None)
        await first.aclose()
        await second.aclose()
    else:
        yield clocked_handles(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "memory"])
def clocked(request, tmp_path: Path) -> Shared:
    """For exact expiry on a clock the test moves (Redis expires keys on its own clock)."""
    return clocked_handles(request.param, tmp_path)


# -- records ----------------------------------------------------------------------------------------


async def test_a_record_is_seen_by_every_handle_until_replaced_or_deleted(shared: Shared):
    one, two = shared.one, shared.two
    value = {"client_id": "c1", "redirect_uris": ["http://127.0.0.1/cb"], "name": "Zoë", "n": 1, "ok": True}
    await one.put_record("client", "k1", value, ttl=60)
    assert await two.get_record("client", "k1") == value
    assert await two.get_record("client", "k2") is None
    assert await two.get_record("code", "k1") is None  # kinds don't share keys

    await two.put_record("client", "k1", {"n": 2}, ttl=60)
    assert await one.get_record("client", "k1") == {"n": 2}

    await one.put_record("code", "k1", {"kind": "code"}, ttl=60)
    await two.delete_record("client", "k1")
    assert await one.get_record("client", "k1") is None
    assert await one.get_record("code", "k1") == {"kind": "code"}  # the other kind's record is untouched
    await two.delete_record("client", "missing")  # deleting nothing is fine


async def test_a_returned_record_is_a_copy(shared: Shared):
    await shared.one.put_record("client", "k", {"uris": ["a"]}, ttl=60)
    got = await shared.two.get_record("client", "k")
    got["uris"].append("b")
    assert await shared.one.get_record("client", "k") == {"uris": ["a"]}


async def test_a_record_can_be_taken_once(shared: Shared):
    one, two = shared.one, shared.two
    await one.put_record("code", "abc", {"user_id": "42"}, ttl=60)
    assert await two.take_record("code", "abc") == {"user_id": "42"}
    assert await one.take_record("code", "abc") is None
    assert await one.get_record("code", "abc") is None
    assert await two.take_record("code", "never-put") is None


async def test_of_concurrent_takers_exactly_one_gets_the_record(shared: Shared):
    async def take(store: TokenStore, key: str, results: list[dict | None]) -> None:
        results.append(await store.take_record("code", key))

    for round_ in range(3):
        key = f"code-{round_}"
        await shared.one.put_record("code", key, {"round": round_}, ttl=60)
        results: list[dict | None] = []
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for i in range(20):
                    group.start_soon(take, (shared.one, shared.two)[i % 2], key, results)
        assert len(results) == 20
        assert [r for r in results if r is not None] == [{"round": round_}]


async def test_a_record_expires(shared: Shared):
    one, two = shared.one, shared.two
    await one.put_record("pending", "p", {"state": "s"}, ttl=3600)
    assert await two.get_record("pending", "p") == {"state": "s"}
    await one.put_record("pending", "p", {"state": "s2"}, ttl=shared.short_ttl)  # replacing resets the ttl

    async def gone() -> bool:
        return await two.get_record("pending", "p") is None

    await shared.after(shared.short_ttl, gone)
    assert await one.take_record("pending", "p") is None


async def test_expiry_is_exact_on_a_test_clock(clocked: Shared):
    one, two, clock = clocked.one, clocked.two, clocked.clock
    await one.put_record("code", "c", {"n": 1}, ttl=10)
    await one.put_record("code", "d", {"n": 2}, ttl=10)
    clock.now += 9.75
    assert await two.get_record("code", "c") == {"n": 1}
    await one.put_record("code", "d", {"n": 3}, ttl=10)  # replaced: a fresh 10 s
    clock.now += 0.25  # exactly ttl after the put: expired
    assert await two.get_record("code", "c") is None
    assert await two.take_record("code", "c") is None
    clock.now += 9.5
    assert await two.take_record("code", "d") == {"n": 3}


async def test_a_ttl_that_has_passed_keeps_nothing(shared: Shared):
    await shared.one.put_record("code", "c", {"n": 1}, ttl=60)
    await shared.one.put_record("code", "c", {"n": 2}, ttl=0)
    assert await shared.two.get_record("code", "c") is None
    await shared.one.put_record("code", "c", {"n": 3}, ttl=-5)
    assert await shared.two.take_record("code", "c") is None


async def test_sqlite_purges_expired_records_on_a_later_write(tmp_path: Path):
    clock = whole_clock()
    path = tmp_path / "s.db"
    store = SQLiteTokenStore(path, clock=clock)
    await store.put_record("code", "a", {"n": 1}, ttl=5)
    await store.put_record("code", "b", {"n": 2}, ttl=50)
    clock.now += 10
    await store.put_record("code", "c", {"n": 3}, ttl=5)
    raw = sqlite3.connect(path)
    try:
        assert sorted(key for (key,) in raw.execute("SELECT key FROM records")) == ["b", "c"]
    finally:
        raw.close()


async def test_sqlite_adds_the_new_tables_to_an_existing_store(tmp_path: Path):
    path = tmp_path / "s.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE cursors (key TEXT PRIMARY KEY, post_id TEXT NOT NULL, updated_at REAL NOT NULL)")
    raw.execute("INSERT INTO cursors VALUES ('base|alice', '7', 1.0)")
    raw.commit()
    raw.close()
    store = SQLiteTokenStore(path)
    await store.put_record("client", "k", {"n": 1}, ttl=60)
    assert await store.hold_lease("poll", "a", ttl=60) is True
    assert await store.get_record("client", "k") == {"n": 1}
    assert await store.load_cursor("base|alice") == "7"


# -- encryption at rest -------------------------------------------------------------------------------


async def test_sqlite_seals_records_with_the_store_key(tmp_path: Path):
    key = Fernet.generate_key().decode()
    path = tmp_path / "s.db"
    one, two = SQLiteTokenStore(path, key=key), SQLiteTokenStore(path, key=key)
    await one.put_record("client", "k", {"client_secret": SECRET}, ttl=60)
    assert await two.get_record("client", "k") == {"client_secret": SECRET}

    raw = sqlite3.connect(path)
    try:
        (stored,) = raw.execute("SELECT value FROM records WHERE kind = 'client' AND key = 'k'").fetchone()
    finally:
        raw.close()
    assert SECRET not in stored and "client_secret" not in stored
    assert json.loads(Sealer(key).open(place("record", "client", "k"), stored, "s.db")) == {"client_secret": SECRET}
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db"))
    assert SECRET.encode() not in on_disk

    with pytest.raises(StoreError, match="encrypted"):
        await SQLiteTokenStore(path).get_record("client", "k")
    with pytest.raises(StoreError, match="does not decrypt"):
        await SQLiteTokenStore(path, key=Fernet.generate_key().decode()).take_record("client", "k")

    # Records kept before the key was set are not (unlike logins): with a key, only sealed records count.
    await SQLiteTokenStore(path).put_record("client", "old", {"n": 1}, ttl=60)
    assert await two.get_record("client", "old") is None


async def test_without_a_key_sqlite_keeps_records_as_json(tmp_path: Path):
    path = tmp_path / "s.db"
    await SQLiteTokenStore(path).put_record("client", "k", {"name": "Zoë"}, ttl=60)
    raw = sqlite3.connect(path)
    try:
        (stored,) = raw.execute("SELECT value FROM records").fetchone()
    finally:
        raw.close()
    assert stored == '{"name": "Zoë"}'


async def test_redis_seals_records_with_the_store_key(redis_url: str):
    import redis.asyncio as redis

    key = Fernet.generate_key().decode()
    prefix = f"test-{uuid.uuid4().hex}"
    one, two = RedisTokenStore(redis_url, key=key, prefix=prefix), RedisTokenStore(redis_url, key=key, prefix=prefix)
    plain, wrong = (
        RedisTokenStore(redis_url, prefix=prefix),
        RedisTokenStore(redis_url, key=Fernet.generate_key().decode(), prefix=prefix),
    )
    raw = redis.from_url(redis_url, decode_responses=True)
    try:
        await one.put_record("client", "k", {"client_secret": SECRET}, ttl=30)
        assert await two.get_record("client", "k") == {"client_secret": SECRET}
        stored = await raw.get(f"{prefix}:record:client:k")
        assert SECRET not in stored and "client_secret" not in stored
        assert json.loads(Sealer(key).open(place("record", "client", "k"), stored, "r")) == {"client_secret": SECRET}
        assert 0 < await raw.pttl(f"{prefix}:record:client:k") <= 30_000

        with pytest.raises(StoreError, match="encrypted"):
            await plain.get_record("client", "k")
        with pytest.raises(StoreError, match="does not decrypt"):
            await wrong.get_record("client", "k")

        await plain.put_record("client", "old", {"n": 1}, ttl=30)
        assert await raw.get(f"{prefix}:record:client:old") == '{"n": 1}'
        assert await plain.get_record("client", "old") == {"n": 1}  # without a key, as before
        assert await two.get_record("client", "old") is None  # with one, only sealed records count
    finally:
        for store in (one, two, plain, wrong):
            await store.aclose()
        await raw.aclose()


@dataclass
class Keyed:
    """A store with a key, and a way around it: what someone with write access to the store but not the key has."""

    store: TokenStore
    write_raw: Callable[[str, str, str], Awaitable[None]]  # kind, key, stored text; live for a minute
    exists_raw: Callable[[str, str], Awaitable[bool]]


@pytest.fixture(params=["sqlite", "redis"])
async def keyed(request, tmp_path: Path) -> AsyncIterator[Keyed]:
    fernet_key = Fernet.generate_key().decode()
    store: TokenStore
    if request.param == "sqlite":
        path = tmp_path / "s.db"

        def raw_sql(query: str, args: tuple) -> list[tuple]:
            raw = sqlite3.connect(path)
            try:
                with raw:
                    return raw.execute(query, args).fetchall()
            finally:
                raw.close()

        async def write_sqlite(kind: str, key: str, text: str) -> None:
            raw_sql("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", (kind, key, text, time.time() + 60))

        async def exists_sqlite(kind: str, key: str) -> bool:
            return bool(raw_sql("SELECT 1 FROM records WHERE kind = ? AND key = ?", (kind, key)))

        store = SQLiteTokenStore(path, key=fernet_key)
        await store.get_record("setup", "k")  # creates the tables for the raw writes
        yield Keyed(store, write_sqlite, exists_sqlite)
        return
    import redis.asyncio as redis

    url, prefix = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex}"
    store = RedisTokenStore(url, key=fernet_key, prefix=prefix)
    raw = redis.from_url(url, decode_responses=True)

    async def write_redis(kind: str, key: str, text: str) -> None:
        await raw.set(f"{prefix}:record:{kind}:{key}", text, px=60_000)

    async def exists_redis(kind: str, key: str) -> bool:
        return bool(await raw.exists(f"{prefix}:record:{kind}:{key}"))

    try:
        yield Keyed(store, write_redis, exists_redis)
    finally:
        await store.aclose()
        await raw.aclose()


async def test_with_a_key_a_plain_record_is_absent(keyed: Keyed, caplog: pytest.LogCaptureFixture):
    # What a forger without the key could write: a record for an issued token's hash, standing for a victim.
    forged = json.dumps({"user_id": "12345", "note": SECRET})
    store = keyed.store
    with caplog.at_level(logging.WARNING, logger="xcourier.auth"):
        await keyed.write_raw("token", "h1", forged)
        await keyed.write_raw("token", "h2", forged)
        await keyed.write_raw("code", "c1", forged)
        assert await store.get_record("token", "h1") is None
        assert await keyed.exists_raw("token", "h1")  # a get leaves it (it expires with its ttl)
        assert await store.take_record("token", "h1") is None
        assert not await keyed.exists_raw("token", "h1")  # a take deletes it, as it deletes any record it takes
        assert await store.take_record("token", "h2") is None and await store.get_record("code", "c1") is None

    warnings = [r for r in caplog.records if r.name == "xcourier.auth" and r.levelno == logging.WARNING]
    assert sorted(str(r.args[1]) for r in warnings) == ["code", "token"]  # once per kind
    assert SECRET not in caplog.text and "12345" not in caplog.text  # never the record's content

    await store.put_record("token", "h3", {"user_id": "42"}, ttl=60)  # sealed ones are unaffected
    assert await store.get_record("token", "h3") == {"user_id": "42"}
    assert await store.take_record("token", "h3") == {"user_id": "42"}


# -- leases -----------------------------------------------------------------------------------------------


async def test_a_lease_has_one_holder_until_released(shared: Shared):
    one, two = shared.one, shared.two
    assert await one.hold_lease("poll:alice", "a", ttl=60) is True
    assert await two.hold_lease("poll:alice", "b", ttl=60) is False
    assert await one.hold_lease("poll:alice", "a", ttl=60) is True  # renewed
    assert await two.hold_lease("poll:bob", "b", ttl=60) is True  # another lease is another matter

    await two.release_lease("poll:alice", "b")  # not b's to give up: nothing happens
    assert await two.hold_lease("poll:alice", "b", ttl=60) is False

    await one.release_lease("poll:alice", "a")
    assert await two.hold_lease("poll:alice", "b", ttl=60) is True
    assert await one.hold_lease("poll:alice", "a", ttl=60) is False
    await one.release_lease("poll:alice", "a")  # a no longer holds it: b keeps it
    assert await one.hold_lease("poll:alice", "a", ttl=60) is False
    assert await two.hold_lease("poll:alice", "b", ttl=60) is True


async def test_an_expired_lease_can_be_taken_over(shared: Shared):
    one, two = shared.one, shared.two
    assert await one.hold_lease("poll:alice", "a", ttl=shared.short_ttl) is True
    if shared.clock is not None:  # (on Redis's real clock a short lease may already be over by now)
        shared.clock.now += shared.short_ttl - 0.25
        assert await two.hold_lease("poll:alice", "b", ttl=3600) is False
        shared.clock.now -= shared.short_ttl - 0.25

    async def taken_over() -> bool:
        return await two.hold_lease("poll:alice", "b", ttl=3600)

    await shared.after(shared.short_ttl, taken_over)
    assert await one.hold_lease("poll:alice", "a", ttl=3600) is False  # the stalled holder can't renew
    await one.release_lease("poll:alice", "a")
    assert await one.hold_lease("poll:alice", "a", ttl=3600) is False


async def test_renewing_a_lease_extends_it(clocked: Shared):
    one, two, clock = clocked.one, clocked.two, clocked.clock
    assert await one.hold_lease("poll:alice", "a", ttl=10) is True
    clock.now += 8
    assert await one.hold_lease("poll:alice", "a", ttl=10) is True
    clock.now += 8  # 16 s after it was first taken, 8 s after the renewal
    assert await two.hold_lease("poll:alice", "b", ttl=10) is False
    clock.now += 1.75
    assert await two.hold_lease("poll:alice", "b", ttl=10) is False
    clock.now += 0.25  # exactly ttl after the renewal: free
    assert await two.hold_lease("poll:alice", "b", ttl=10) is True


async def test_redis_renewal_sets_the_lease_ttl_again(redis_url: str):
    import redis.asyncio as redis

    prefix = f"test-{uuid.uuid4().hex}"
    store = RedisTokenStore(redis_url, prefix=prefix)
    raw = redis.from_url(redis_url, decode_responses=True)
    try:
        assert await store.hold_lease("poll:alice", "a", ttl=5) is True
        assert 0 < await raw.pttl(f"{prefix}:lease:poll:alice") <= 5_000
        assert await store.hold_lease("poll:alice", "a", ttl=600) is True
        assert 5_000 < await raw.pttl(f"{prefix}:lease:poll:alice") <= 600_000
        assert await store.hold_lease("poll:alice", "b", ttl=600) is False
        assert await raw.get(f"{prefix}:lease:poll:alice") == "a"
    finally:
        await store.aclose()
        await raw.aclose()


async def test_of_concurrent_claimants_exactly_one_gets_the_lease(shared: Shared):
    results: dict[str, bool] = {}

    async def claim(store: TokenStore, holder: str) -> None:
        results[holder] = await store.hold_lease("poll:alice", holder, ttl=60)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(claim, (shared.one, shared.two)[i % 2], f"holder-{i}")
    winners = [holder for holder, held in results.items() if held]
    assert len(results) == 20 and len(winners) == 1
    assert await shared.two.hold_lease("poll:alice", winners[0], ttl=60) is True
    losers = [holder for holder in results if holder != winners[0]]
    assert not any([await shared.one.hold_lease("poll:alice", holder, ttl=60) for holder in losers])


async def test_a_lease_needs_a_positive_ttl(shared: Shared):
    for ttl in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            await shared.one.hold_lease("poll:alice", "a", ttl=ttl)
    assert await shared.two.hold_lease("poll:alice", "b", ttl=60) is True
