"""The watcher stores cursors in batches: a search batch's cursors in one store call, before anyone is told.

Against the sandbox on the SQLite store, with the watcher's loop off (each test calls poll_due() itself) and a
spy on the store's cursor writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.store import StoreUnavailableError
from xcourier.server.fleet import Fleet
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

from ..clock import Clock
from .test_new_post import SEARCH, TIMELINE

pytestmark = pytest.mark.anyio

NAMES = [f"batch_{i}" for i in range(5)]


def make_users(admin, names: list[str]) -> None:
    for name in names:
        admin.http.post("/users", json={"username": name}).raise_for_status()
        admin.post_as(name, f"{name} was here first")


@asynccontextmanager
async def sqlite_runtime(sandbox, admin, tmp_path: Path, **settings) -> AsyncIterator[tuple[Runtime, SQLiteTokenStore]]:
    """A runtime on the SQLite store (the embedded default), and a second handle on the same file."""
    token = admin.http.post("/tokens", json={"username": "xcourier_demo"}).json()["access_token"]
    path = tmp_path / "s.db"
    config = Settings(access_token=token, api_base_url=sandbox.base_url, store=str(path), poll_interval=1.0, **settings)
    async with Runtime.open(config, run_watcher=False, clock=Clock()) as runtime:
        other = SQLiteTokenStore(path)
        try:
            yield runtime, other
        finally:
            await other.aclose()


class StoreSpy:
    """Records the watcher's cursor writes, and how many batches were stored when each subscriber was told."""

    def __init__(self, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[dict[str, str]] = []
        self.single: list[tuple[str, str]] = []
        self.told: list[tuple[str, int]] = []  # (uri, batches stored by then)
        self.fail = False
        save_cursors, save_cursor = SQLiteTokenStore.save_cursors, SQLiteTokenStore.save_cursor

        async def spy_save_cursors(store: SQLiteTokenStore, cursors: Mapping[str, str]) -> None:
            if self.fail:
                raise StoreUnavailableError("the store is away")
            self.batches.append(dict(cursors))
            await save_cursors(store, cursors)

        async def spy_save_cursor(store: SQLiteTokenStore, key: str, post_id: str) -> None:
            self.single.append((key, post_id))
            await save_cursor(store, key, post_id)

        async def told(uri: str) -> None:
            self.told.append((uri, len(self.batches)))

        monkeypatch.setattr(SQLiteTokenStore, "save_cursors", spy_save_cursors)
        monkeypatch.setattr(SQLiteTokenStore, "save_cursor", spy_save_cursor)
        runtime.watcher.publishers.append(told)


async def test_a_search_batch_saves_its_cursors_in_one_store_call_before_anyone_is_told(
    sandbox, admin, monkeypatch, tmp_path
):
    make_users(admin, NAMES)
    async with sqlite_runtime(sandbox, admin, tmp_path) as (runtime, other):
        for name in NAMES:
            await runtime.watcher.subscribe(f"x://users/{name}/posts", "test")
        spy = StoreSpy(runtime, monkeypatch)
        # Two minutes on, so the search's newest result (less its margin) passes the quiet users' cursors too.
        admin.http.post("/clock", json={"advance": 120}).raise_for_status()
        made = {name: admin.post_as(name, f"news from {name}")["data"]["id"] for name in NAMES[:3]}
        timeline_before = admin.calls()[TIMELINE]

        assert await runtime.watcher.poll_due(force=True) == 1
        assert admin.calls()[SEARCH] == 1 and admin.calls()[TIMELINE] == timeline_before

        # One write for the whole batch, with every member's cursor (the quiet ones caught up too) ...
        assert spy.single == [] and len(spy.batches) == 1
        cursors = {runtime.watcher.cursor_key(name): runtime.watcher.recent(name).cursor for name in NAMES}
        assert spy.batches[0] == cursors
        assert [runtime.watcher.recent(name).cursor for name in made] == list(made.values())
        assert len(set(cursors.values())) == len(made) + 1  # the quiet two at the margin behind the newest
        # ... stored before the first subscriber was told, and each user with news told once.
        assert sorted(spy.told) == sorted((f"x://users/{name}/posts", 1) for name in made)
        assert await other.load_cursors(cursors) == cursors


async def test_a_failing_batch_save_tells_nobody_and_leaves_the_cursors_where_they_were(
    sandbox, admin, monkeypatch, tmp_path
):
    make_users(admin, NAMES)
    async with sqlite_runtime(sandbox, admin, tmp_path) as (runtime, other):
        for name in NAMES:
            await runtime.watcher.subscribe(f"x://users/{name}/posts", "test")
        spy = StoreSpy(runtime, monkeypatch)
        keys = [runtime.watcher.cursor_key(name) for name in NAMES]
        stored = await other.load_cursors(keys)
        before = {name: runtime.watcher.recent(name).cursor for name in NAMES}
        assert stored == {runtime.watcher.cursor_key(name): cursor for name, cursor in before.items()}
        made = {name: admin.post_as(name, f"news from {name}")["data"]["id"] for name in NAMES[:2]}

        spy.fail = True
        with pytest.raises(StoreUnavailableError):
            await runtime.watcher.poll_due(force=True)
        assert spy.told == []
        assert {name: runtime.watcher.recent(name).cursor for name in NAMES} == before
        assert await other.load_cursors(keys) == stored
        assert [runtime.watcher.recent(name).delivered for name in NAMES] == [0] * len(NAMES)

        # The store is back: the next round reads the same posts again and tells them, once each.
        spy.fail = False
        await runtime.watcher.poll_due(force=True)
        assert sorted(uri for uri, _ in spy.told) == sorted(f"x://users/{name}/posts" for name in made)
        for name, post_id in made.items():
            watched = runtime.watcher.recent(name)
            assert (watched.delivered, watched.cursor, watched.recent[-1].id) == (1, post_id, post_id)


async def test_a_failing_timeline_save_tells_nobody_and_the_next_poll_delivers(sandbox, admin, monkeypatch, tmp_path):
    async with sqlite_runtime(sandbox, admin, tmp_path, watch_search=False) as (runtime, other):
        await runtime.watcher.subscribe("x://users/alice/posts", "test")
        spy = StoreSpy(runtime, monkeypatch)
        before = runtime.watcher.recent("alice").cursor
        save_cursor = SQLiteTokenStore.save_cursor

        async def away(store: SQLiteTokenStore, key: str, post_id: str) -> None:
            raise StoreUnavailableError("the store is away")

        monkeypatch.setattr(SQLiteTokenStore, "save_cursor", away)
        post = admin.post_as("alice", "news while the store is away")["data"]["id"]
        with pytest.raises(StoreUnavailableError):
            await runtime.watcher.poll_due(force=True)
        assert spy.told == [] and runtime.watcher.recent("alice").cursor == before

        monkeypatch.setattr(SQLiteTokenStore, "save_cursor", save_cursor)
        await runtime.watcher.poll_due(force=True)
        assert [uri for uri, _ in spy.told] == ["x://users/alice/posts"]
        assert runtime.watcher.recent("alice").cursor == post
        assert await other.load_cursor(runtime.watcher.cursor_key("alice")) == post


async def test_taking_over_leases_reads_every_taken_users_cursor_in_one_store_call(
    sandbox, admin, monkeypatch, tmp_path
):
    names = ["alice", "bob"]
    async with sqlite_runtime(sandbox, admin, tmp_path) as (runtime, other):
        for name in names:
            await runtime.watcher.subscribe(f"x://users/{name}/posts", "test")
        # Another instance held both users, and stored newer cursors before it went quiet.
        newer = {name: admin.post_as(name, f"{name}, told by the other instance")["data"]["id"] for name in names}
        await other.save_cursors({runtime.watcher.cursor_key(name): post_id for name, post_id in newer.items()})
        for name in names:
            runtime.watcher.recent(name).held = False
        runtime.watcher.fleet = Fleet(other, instance="this-one", lease_ttl=30.0)
        reads: list[list[str]] = []
        load_cursors = SQLiteTokenStore.load_cursors

        async def spy_load_cursors(store: SQLiteTokenStore, keys: Iterable[str]) -> dict[str, str]:
            reads.append(list(keys))
            return await load_cursors(store, reads[-1])

        async def no_single_reads(store: SQLiteTokenStore, key: str) -> str | None:
            raise AssertionError(f"read {key} on its own")

        monkeypatch.setattr(SQLiteTokenStore, "load_cursors", spy_load_cursors)
        monkeypatch.setattr(SQLiteTokenStore, "load_cursor", no_single_reads)

        await runtime.watcher.renew_leases()

        assert reads == [[runtime.watcher.cursor_key(name) for name in names]]
        for name in names:
            watched = runtime.watcher.recent(name)
            assert (watched.held, watched.cursor) == (True, newer[name])
        # Resumed from the stored cursors: what the other instance told is not told again.
        await runtime.watcher.poll_due(force=True)
        assert [runtime.watcher.recent(name).delivered for name in names] == [0, 0]
