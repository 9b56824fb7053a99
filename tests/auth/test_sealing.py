"""With XCOURIER_STORE_KEY, a sealed value opens only where it was written: someone who can write to the
store but lacks the key can neither move a record under another token's hash nor swap two users' logins,
nor edit a login's metadata. Stores in the format before are migrated once, and only once."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from xcourier.server.auth.redis_store import RedisTokenStore
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.store import StoreError, TokenStore

from .test_store import token_set

pytestmark = pytest.mark.anyio

ALICE, BOB = "1700000000000000011", "1700000000000000022"


@dataclass
class Raw:
    """The store as someone with write access but no key sees it."""

    open_with: Callable[[str], TokenStore]  # a fresh handle with a key, as a new process would open it
    key: str

    def store(self) -> TokenStore:
        return self.open_with(self.key)

    get_record: Callable[[str, str], Awaitable[str | None]]
    set_record: Callable[[str, str, str], Awaitable[None]]
    get_login: Callable[[str], Awaitable[object]]
    set_login: Callable[[str, object], Awaitable[None]]


@pytest.fixture(params=["sqlite", "redis"])
async def raw(request, tmp_path: Path) -> AsyncIterator[Raw]:
    key = Fernet.generate_key().decode()
    if request.param == "sqlite":
        path = tmp_path / "s.db"

        def sql(query: str, args: tuple = ()) -> list[tuple]:
            connection = sqlite3.connect(path)
            try:
                with connection:
                    return connection.execute(query, args).fetchall()
            finally:
                connection.close()

        async def get_record(kind: str, key_: str) -> str | None:
            rows = sql("SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key_))
            return rows[0][0] if rows else None

        async def set_record(kind: str, key_: str, value: str) -> None:
            sql("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", (kind, key_, value, time.time() + 60))

        async def get_login(user_id: str) -> object:
            return sql("SELECT encrypted, secrets FROM token_sets WHERE user_id = ?", (user_id,))[0]

        async def set_login(user_id: str, value: object) -> None:
            encrypted, secrets = value  # type: ignore[misc]
            sql("UPDATE token_sets SET encrypted = ?, secrets = ? WHERE user_id = ?", (encrypted, secrets, user_id))

        yield Raw(lambda key_: SQLiteTokenStore(path, key=key_), key, get_record, set_record, get_login, set_login)
        return
    import redis.asyncio as redis

    url, prefix = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex}"
    connection = redis.from_url(url, decode_responses=True)
    opened: list[RedisTokenStore] = []

    def store(key_: str) -> RedisTokenStore:
        opened.append(RedisTokenStore(url, key=key_, prefix=prefix))
        return opened[-1]

    async def get_redis_record(kind: str, key_: str) -> str | None:
        return await connection.get(f"{prefix}:record:{kind}:{key_}")

    async def set_redis_record(kind: str, key_: str, value: str) -> None:
        await connection.set(f"{prefix}:record:{kind}:{key_}", value, px=60_000)

    async def get_redis_login(user_id: str) -> object:
        return await connection.get(f"{prefix}:tokens:{user_id}")

    async def set_redis_login(user_id: str, value: object) -> None:
        await connection.set(f"{prefix}:tokens:{user_id}", str(value))

    try:
        yield Raw(store, key, get_redis_record, set_redis_record, get_redis_login, set_redis_login)
    finally:
        for handle in opened:
            await handle.aclose()
        await connection.aclose()


async def test_a_record_copied_under_another_key_does_not_open(raw: Raw, caplog: pytest.LogCaptureFixture):
    store = raw.store()
    await store.put_record("access", "hash-of-alices-token", {"subject": ALICE}, ttl=60)
    # The attack: alice's sealed record, copied under the hash of a token the attacker chose.
    await raw.set_record("access", "hash-of-mine", await raw.get_record("access", "hash-of-alices-token") or "")
    # ... or under another kind with the same key.
    await raw.set_record(
        "refresh", "hash-of-alices-token", await raw.get_record("access", "hash-of-alices-token") or ""
    )

    with caplog.at_level(logging.WARNING, logger="xcourier.auth"):
        assert await store.get_record("access", "hash-of-mine") is None
        assert await raw.store().take_record("access", "hash-of-mine") is None
        assert await store.get_record("refresh", "hash-of-alices-token") is None
    assert "misplaced" in caplog.text and ALICE not in caplog.text
    assert await store.get_record("access", "hash-of-alices-token") == {"subject": ALICE}  # where it belongs


async def test_two_users_logins_swapped_in_the_store_open_for_neither(raw: Raw):
    store = raw.store()
    await store.save(token_set(ALICE, "alice"))
    await store.save(token_set(BOB, "bob"))
    alices, bobs = await raw.get_login(ALICE), await raw.get_login(BOB)
    await raw.set_login(ALICE, bobs)
    await raw.set_login(BOB, alices)

    fresh = raw.store()
    assert await fresh.load_user(ALICE) is None and await fresh.load_user(BOB) is None
    assert await fresh.load("@alice") is None and await fresh.list_accounts() == []


async def test_a_logins_metadata_is_sealed_with_it(raw: Raw):
    store = raw.store()
    await store.save(token_set(ALICE, "alice"))
    stored = await raw.get_login(ALICE)
    text = stored if isinstance(stored, str) else bytes(stored[1]).decode()  # type: ignore[index]
    # Nothing an attacker could edit is read from the clear: api base URL, client id, scopes, expiry.
    for plain in ("127.0.0.1:9", "offline.access", "1900000000"):
        assert plain not in text
    loaded = await raw.store().load_user(ALICE)
    assert loaded is not None and loaded.api_base_url == "http://127.0.0.1:9" and loaded.username == "alice"


async def test_a_wrong_key_is_a_configuration_error_not_an_absent_login(raw: Raw):
    await raw.store().save(token_set(ALICE, "alice"))
    await raw.store().put_record("client", "c", {"n": 1}, ttl=60)
    # The same store under another key: said as such, so an operator fixes the key rather than re-signing everyone.
    other = raw.open_with(Fernet.generate_key().decode())
    with pytest.raises(StoreError, match="does not decrypt"):
        await other.load_user(ALICE)
    with pytest.raises(StoreError, match="does not decrypt"):
        await other.get_record("client", "c")


# -- migration from the Fernet format ---------------------------------------------------------------


def _legacy_secrets(fernet: Fernet, user_id: str) -> str:
    tokens = token_set(user_id, "alice")
    secrets = {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "client_secret": None}
    return fernet.encrypt(json.dumps(secrets).encode()).decode()


async def test_sqlite_migrates_the_old_format_once(tmp_path: Path):
    key = Fernet.generate_key().decode()
    fernet = Fernet(key.encode())
    path = tmp_path / "s.db"
    await SQLiteTokenStore(path).get_record("setup", "k")  # the tables, as a store of the version before
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO token_sets VALUES (?, 'alice', 'offline.access tweet.read', 1900000000, "
            "'http://127.0.0.1:9', 'client', 3, 100, 100, 1, ?)",
            (ALICE, _legacy_secrets(fernet, ALICE).encode()),
        )
        for name in ("mine", "kept"):
            value = fernet.encrypt(json.dumps({"subject": ALICE}).encode()).decode()
            connection.execute("INSERT INTO records VALUES ('access', ?, ?, ?)", (name, value, time.time() + 60))
    connection.close()

    store = SQLiteTokenStore(path, key=key)
    migrated = await store.load_user(ALICE)
    assert migrated is not None and migrated.access_token == token_set(ALICE).access_token and migrated.version == 3
    assert await store.get_record("access", "kept") == {"subject": ALICE}

    # A copy of an old-format value kept from before, put back after the migration, stays unread,
    # even with the format marker deleted (a store holding current values is never migrated again).
    copy = fernet.encrypt(json.dumps({"subject": ALICE}).encode()).decode()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM meta")
        connection.execute("UPDATE records SET value = ? WHERE key = 'mine'", (copy,))
    connection.close()
    assert await SQLiteTokenStore(path, key=key).get_record("access", "mine") is None


async def test_redis_migrates_the_old_format_once(redis_url: str):
    import redis.asyncio as redis

    key = Fernet.generate_key().decode()
    fernet = Fernet(key.encode())
    prefix = f"test-{uuid.uuid4().hex}"
    connection = redis.from_url(redis_url, decode_responses=True)
    legacy_login = {
        "user_id": ALICE,
        "username": "alice",
        "scopes": ["offline.access"],
        "expires_at": 1_900_000_000.0,
        "api_base_url": "http://127.0.0.1:9",
        "client_id": "client",
        "version": 3,
        "logged_in_at": 100.0,
        "encrypted": True,
        "secrets": _legacy_secrets(fernet, ALICE),
    }
    await connection.set(f"{prefix}:tokens:{ALICE}", json.dumps(legacy_login))
    await connection.zadd(f"{prefix}:accounts", {ALICE: 100.0})
    record = fernet.encrypt(json.dumps({"subject": ALICE}).encode()).decode()
    await connection.set(f"{prefix}:record:access:kept", record, px=60_000)
    store = RedisTokenStore(redis_url, key=key, prefix=prefix)
    try:
        migrated = await store.load_user(ALICE)
        assert migrated is not None and migrated.access_token == token_set(ALICE).access_token
        assert await store.get_record("access", "kept") == {"subject": ALICE}
        assert 0 < await connection.pttl(f"{prefix}:record:access:kept") <= 60_000  # its expiry kept

        await connection.delete(f"{prefix}:format")
        await connection.set(f"{prefix}:record:access:mine", record, px=60_000)  # a copy kept from before
        again = RedisTokenStore(redis_url, key=key, prefix=prefix)
        try:
            assert await again.get_record("access", "mine") is None
            assert await again.load_user(ALICE) is not None
        finally:
            await again.aclose()
    finally:
        await store.aclose()
        await connection.aclose()
