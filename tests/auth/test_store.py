"""The SQLite token store: durable, private, keyed by account, optionally encrypted, with a process-wide lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.store import StoreError, open_store
from xcourier.server.auth.tokenset import TokenSet

pytestmark = pytest.mark.anyio

SECRET_ACCESS = "access-SECRET-0123456789"
SECRET_REFRESH = "refresh-SECRET-0123456789"


def token_set(user_id: str = "1700000000000000001", username: str = "xcourier_demo", at: float = 100.0) -> TokenSet:
    return TokenSet(
        user_id=user_id,
        username=username,
        scopes=frozenset({"tweet.read", "offline.access"}),
        expires_at=1_900_000_000.0,
        api_base_url="http://127.0.0.1:9",
        client_id="client",
        access_token=SECRET_ACCESS + user_id,
        refresh_token=SECRET_REFRESH + user_id,
        client_secret=None,
        logged_in_at=at,
    )


async def test_saved_set_loads_back_by_id_username_and_as_default(tmp_path: Path):
    store = SQLiteTokenStore(tmp_path / "x.db")
    first = token_set(at=100.0)
    second = token_set("1700000000000000002", "alice", at=200.0)
    await store.save(first)
    await store.save(second)
    assert await store.load("1700000000000000001") == first
    assert await store.load("@Alice") == second
    assert await store.load() == second  # the last login is the default
    assert [t.username for t in await store.list_accounts()] == ["alice", "xcourier_demo"]
    assert await store.delete(second.user_id) is True
    assert await store.load() == first


async def test_store_files_are_private(tmp_path: Path):
    path = tmp_path / "data" / "x.db"
    store = SQLiteTokenStore(path)
    await store.save(token_set())
    async with store.refresh_lock("1"):
        pass
    for file in path.parent.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_secrets_are_encrypted_at_rest_with_a_key(tmp_path: Path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    path = tmp_path / "x.db"
    await SQLiteTokenStore(path, key=key).save(token_set())
    raw = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    assert SECRET_ACCESS.encode() not in raw and SECRET_REFRESH.encode() not in raw
    assert (await SQLiteTokenStore(path, key=key).load()).access_token.startswith(SECRET_ACCESS)
    with pytest.raises(StoreError, match="XCOURIER_STORE_KEY"):
        await SQLiteTokenStore(path).load()
    with pytest.raises(StoreError, match="does not decrypt"):
        await SQLiteTokenStore(path, key=Fernet.generate_key().decode()).load()


def test_a_malformed_key_is_refused_with_how_to_make_one(tmp_path: Path):
    with pytest.raises(StoreError, match=r"Fernet\.generate_key"):
        open_store(str(tmp_path / "x.db"), environ={"XCOURIER_STORE_KEY": "not-a-key"})


def test_open_store_follows_the_environment(tmp_path: Path):
    store = open_store(environ={"XCOURIER_STORE": str(tmp_path / "env.db")})
    assert store.location == str(tmp_path / "env.db")
    with pytest.raises(StoreError, match="unsupported store"):
        open_store("ftp://example/x")


async def test_overwriting_a_set_is_atomic_across_a_reopen(tmp_path: Path):
    path = tmp_path / "x.db"
    tokens = token_set()
    await SQLiteTokenStore(path).save(tokens)
    newer = replace(tokens, access_token="newer", version=2)
    await SQLiteTokenStore(path).save(newer)
    assert (await SQLiteTokenStore(path).load()).version == 2
    assert len(await SQLiteTokenStore(path).list_accounts()) == 1


HOLD_LOCK = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from xcourier.server.auth.sqlite_store import SQLiteTokenStore

    async def main():
        async with SQLiteTokenStore(Path(sys.argv[1])).refresh_lock("42"):
            print("locked", flush=True)
            sys.stdin.readline()

    anyio.run(main)
    """
)


def _holder(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    return process


async def _can_lock(store: SQLiteTokenStore) -> bool:
    # Not a timing assertion: while another process holds the lock this can never succeed,
    # whatever the machine's speed; the bound only keeps the test from waiting forever.
    with anyio.move_on_after(0.5):
        async with store.refresh_lock("42"):
            return True
    return False


async def test_refresh_lock_excludes_other_processes_until_released(tmp_path: Path):
    store = SQLiteTokenStore(tmp_path / "x.db")
    holder = _holder(tmp_path / "x.db")
    try:
        assert await _can_lock(store) is False
        holder.stdin.write("release\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
        async with store.refresh_lock("42"):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)


async def test_refresh_lock_is_freed_when_its_holder_is_killed(tmp_path: Path):
    store = SQLiteTokenStore(tmp_path / "x.db")
    holder = _holder(tmp_path / "x.db")
    holder.kill()
    holder.wait(timeout=30)
    async with store.refresh_lock("42"):
        pass
    assert os.path.exists(tmp_path / "x.db.lock")


async def test_an_audit_append_waits_for_another_writer_instead_of_failing(tmp_path: Path):
    import sqlite3

    store = SQLiteTokenStore(tmp_path / "x.db")
    await store.append_audit(1.0, {"tool": "first"})
    other = sqlite3.connect(tmp_path / "x.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    async with anyio.create_task_group() as group:
        group.start_soon(store.append_audit, 2.0, {"tool": "second"})
        await anyio.wait_all_tasks_blocked()
        other.execute("COMMIT")
    other.close()
    assert [r["tool"] for _, r in await store.audit_since(0.0)] == ["first", "second"]
    await store.aclose()
