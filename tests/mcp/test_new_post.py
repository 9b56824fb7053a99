"""newPost: subscriptions in both generations, one poll stream per user, every post exactly once.

The watcher's loop is off here: each test moves a fake clock and calls poll_due() itself.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import ResourceUpdatedNotification

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings
from xcourier.server.watcher import RECENT
from xcourier.tools import timeline

from ..clock import Clock

pytestmark = pytest.mark.anyio

TIMELINE = "GET /2/users/{id}/tweets"
SEARCH = "GET /2/tweets/search/recent"
ALICE = "x://users/alice/posts"


@asynccontextmanager
async def watching_runtime(sandbox, **settings) -> AsyncIterator[tuple[Runtime, Clock]]:
    clock = Clock()
    config = Settings(sandbox=True, poll_interval=1.0, **settings)
    async with Runtime.open(config, sandbox_server=sandbox, run_watcher=False, clock=clock) as runtime:
        yield runtime, clock


class LegacySubscriber:
    """A 2025-11-25 client: resources/subscribe, notifications arrive on the session."""

    def __init__(self, server) -> None:
        self.updates: list[str] = []
        self.arrived = anyio.Event()
        self.client = Client(server, mode="legacy", message_handler=self._on_message)

    async def _on_message(self, message) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.updates.append(str(message.params.uri))
            self.arrived.set()

    async def next_update(self) -> str:
        with anyio.fail_after(10):
            await self.arrived.wait()
        self.arrived = anyio.Event()
        return self.updates[-1]


async def read_posts(client: Client, uri: str = ALICE) -> dict:
    result = await client.read_resource(uri)
    return json.loads(result.contents[0].text)


async def test_legacy_subscriber_is_notified_and_reads_the_new_post(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            assert client.server_capabilities.resources.subscribe is True
            await client.subscribe_resource(ALICE)
            post = admin.post_as("alice", "news from alice")["data"]
            assert await runtime.watcher.poll_due(force=True) == 1
            assert await subscriber.next_update() == ALICE
            feed = await read_posts(client)
    assert feed["username"] == "alice" and feed["user_id"] == "1700000000000000002"
    assert feed["newest_id"] == post["id"]
    assert feed["posts"][0] == {
        "id": post["id"],
        "text": "news from alice",
        "edit_history_tweet_ids": [post["id"]],
        "created_at": feed["posts"][0]["created_at"],
    }
    assert feed["posts"][0]["created_at"].endswith("Z")


async def test_the_resource_shows_each_post_as_x_sent_it(sandbox, admin):
    # The watcher keeps compact records, not X's answer: what the resource shows is rebuilt from them.
    async with watching_runtime(sandbox) as (runtime, _), Client(build_server(runtime), mode="legacy") as client:
        await client.subscribe_resource(ALICE)
        for i in range(3):
            admin.post_as("alice", f"news {i}, déjà vu 🎉")
        await runtime.watcher.poll_due(force=True)
        feed = await read_posts(client)
        user = await runtime.users.by_username("alice")
        sent = await timeline.newest_posts(runtime.client, user.id, RECENT)
    assert feed["posts"] == [
        {"id": p.id, "text": p.text, "edit_history_tweet_ids": p.edit_history_tweet_ids, "created_at": p.created_at}
        for p in reversed(sent)
    ]
    assert feed["posts"][0]["text"] == "news 2, déjà vu 🎉" and feed["posts"][0]["created_at"]


async def test_listen_subscriber_is_notified_and_reads_the_new_post(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, _), Client(build_server(runtime)) as client:
        assert client.protocol_version == "2026-07-28"
        assert client.server_capabilities.resources.subscribe is True
        async with client.listen(resource_subscriptions=[ALICE]) as subscription:
            assert [w["username"] for w in runtime.watcher.status()["watched"]] == ["alice"]
            admin.post_as("alice", "news for listeners")
            await runtime.watcher.poll_due(force=True)
            with anyio.fail_after(10):
                event = await anext(aiter(subscription))
            assert event.uri == ALICE
            feed = await read_posts(client)
        assert feed["posts"][0]["text"] == "news for listeners"
        # The stream ended, so nobody watches alice any more (once the server has seen it end).
        await anyio.wait_all_tasks_blocked()
        assert runtime.watcher.status()["watched"] == []


async def test_two_sessions_on_one_user_share_one_poll_stream(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, _):
        server = build_server(runtime)
        first, second = LegacySubscriber(server), LegacySubscriber(server)
        async with first.client as one, second.client as two:
            await one.subscribe_resource(ALICE)
            await two.subscribe_resource(ALICE)
            before = admin.calls()[TIMELINE]
            admin.post_as("alice", "one post, two sessions")
            assert await runtime.watcher.poll_due(force=True) == 1
            assert admin.calls()[TIMELINE] == before + 1
            assert await first.next_update() == ALICE and await second.next_update() == ALICE
            assert runtime.watcher.status()["watched"][0]["subscribers"] == 2


async def test_a_burst_of_150_posts_is_delivered_whole_once_and_in_order(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            baseline = runtime.watcher.recent("alice").cursor
            made = [admin.post_as("alice", f"burst post {i}")["data"]["id"] for i in range(150)]
            before = admin.calls()[TIMELINE]
            await runtime.watcher.poll_due(force=True)
            assert admin.calls()[TIMELINE] - before == 2  # 100 + 50: paged through
            watched = runtime.watcher.recent("alice")
            assert watched.delivered == 150 and watched.cursor == made[-1]
            assert await subscriber.next_update() == ALICE
            assert [p["id"] for p in (await read_posts(client))["posts"]] == made[::-1][:20]
            # Nothing twice: a second poll finds nothing new and notifies no one.
            await runtime.watcher.poll_due(force=True)
            assert watched.delivered == 150 and subscriber.updates == [ALICE]
            # The tool catches a client up on all of them, oldest first.
            result = await client.call_tool("getNewPosts", {"username": "alice", "since_id": baseline})
            assert [p["id"] for p in result.structured_content["posts"]] == made
            assert result.structured_content["next_since_id"] == made[-1]


async def test_a_restart_resumes_from_the_persisted_cursor(sandbox, admin, tmp_path: Path):
    token = admin.http.post("/tokens", json={"username": "xcourier_demo"}).json()["access_token"]
    settings = {"access_token": token, "api_base_url": sandbox.base_url, "store": str(tmp_path / "s.db")}

    async def run_once(expect_new: list[str]) -> None:
        async with Runtime.open(Settings(poll_interval=1.0, **settings), run_watcher=False) as runtime:
            await runtime.watcher.subscribe(ALICE, "test")
            await runtime.watcher.poll_due(force=True)
            watched = runtime.watcher.recent("alice")
            assert watched.delivered == len(expect_new)
            assert watched.cursor == (expect_new[-1] if expect_new else watched.cursor)

    first = admin.post_as("alice", "before the first start")["data"]["id"]
    await run_once([])  # baseline: what exists is not news
    while_down = [admin.post_as("alice", f"while down {i}")["data"]["id"] for i in range(3)]
    await run_once(while_down)
    await run_once([])
    assert first not in while_down


async def test_unsubscribing_or_leaving_stops_the_polling(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, _):
        server = build_server(runtime)
        async with Client(server, mode="legacy") as client:
            await client.subscribe_resource(ALICE)
            await client.unsubscribe_resource(ALICE)
            assert runtime.watcher.status()["watched"] == []
            await client.subscribe_resource(ALICE)
            assert len(runtime.watcher.status()["watched"]) == 1
        # The session ended without unsubscribing.
        assert runtime.watcher.status()["watched"] == []
        before = admin.calls().get(TIMELINE, 0)
        assert await runtime.watcher.poll_due(force=True) == 0
        assert admin.calls().get(TIMELINE, 0) == before


async def test_after_a_429_nothing_is_sent_before_the_reset(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, clock):
        await runtime.watcher.subscribe(ALICE, "test")
        admin.rate_limit(TIMELINE, 1)  # the baseline used it up
        clock.now += 5
        assert await runtime.watcher.poll_due() == 1  # answered 429
        calls = admin.calls()[TIMELINE]
        reset_at = runtime.client.rate_limits[TIMELINE].reset_at
        clock.now = reset_at - 1
        assert await runtime.watcher.poll_due() == 0
        assert admin.calls()[TIMELINE] == calls
        admin.http.post("/clock", json={"advance": reset_at - time.time() + 1}).raise_for_status()
        clock.now = reset_at + 1
        admin.post_as("alice", "after the window")
        assert await runtime.watcher.poll_due() == 1
        assert runtime.watcher.recent("alice").delivered == 1


async def test_the_interval_spreads_the_budget_over_the_window(sandbox, admin, caplog):
    caplog.set_level(logging.INFO, logger="xcourier.watcher")
    async with watching_runtime(sandbox) as (runtime, clock):
        await runtime.watcher.subscribe(ALICE, "a")
        await runtime.watcher.subscribe("x://users/bob/posts", "b")
        admin.rate_limit(TIMELINE, 12)
        runtime.watcher.use_search = False
        await runtime.watcher.poll_due(force=True)
        status = runtime.watcher.status()
        budget = runtime.client.rate_limits[TIMELINE]
        # 2 users per round: the rounds the remaining budget pays for, plus the one after the reset,
        # spread over what is left of the window.
        expected = (budget.reset_at - clock.now) / (budget.remaining // 2 + 1)
        assert [w["interval_seconds"] for w in status["watched"]] == [pytest.approx(expected, rel=0.01)] * 2
        assert status["budget"][TIMELINE]["remaining"] == budget.remaining
    assert "polling 2 user(s) every" in caplog.text


async def test_watcher_status_is_a_read_only_resource(sandbox):
    async with watching_runtime(sandbox) as (runtime, _), Client(build_server(runtime), mode="legacy") as client:
        await client.subscribe_resource(ALICE)
        status = json.loads((await client.read_resource("x://watcher")).contents[0].text)
    assert status["min_interval_seconds"] == 1.0
    assert status["watched"][0]["username"] == "alice" and status["watched"][0]["cursor"]


async def test_twenty_watched_users_are_polled_in_one_search_and_each_post_arrives_once(sandbox, admin):
    names = [f"user_{i:02d}" for i in range(20)]
    for name in names:
        admin.http.post("/users", json={"username": name}).raise_for_status()
        admin.post_as(name, f"{name} was here first")
    async with watching_runtime(sandbox) as (runtime, _):
        for name in names:
            await runtime.watcher.subscribe(f"x://users/{name}/posts", "test")
        made = {name: admin.post_as(name, f"news from {name}")["data"]["id"] for name in names}
        timeline_before = admin.calls()[TIMELINE]
        assert await runtime.watcher.poll_due(force=True) == 1
        assert admin.calls()[SEARCH] == 1 and admin.calls()[TIMELINE] == timeline_before
        for name in names:
            watched = runtime.watcher.recent(name)
            assert (watched.delivered, watched.cursor >= made[name]) == (1, True)
            assert [p.id for p in watched.recent][-1] == made[name]
        # Search refused: the same round falls back to timelines, and still nothing twice.
        admin.fault(SEARCH, "status", status=403)
        second = {name: admin.post_as(name, f"more from {name}")["data"]["id"] for name in names[:3]}
        await runtime.watcher.poll_due(force=True)
        assert runtime.watcher.use_search is False
        assert [runtime.watcher.recent(n).delivered for n in names] == [2] * 3 + [1] * 17
        assert all(runtime.watcher.recent(n).recent[-1].id == second[n] for n in second)


def test_search_queries_stay_within_512_characters():
    from xcourier.tools.timeline import search_queries

    names = [f"longusername{i:03d}" for i in range(100)]
    batches = search_queries(names)
    assert [n for batch in batches for n in batch] == names
    assert all(len(" OR ".join(f"from:{n}" for n in batch)) <= 512 for batch in batches)
    # Each batch is as full as it can be: one more name would pass the limit.
    for batch, following in itertools.pairwise(batches):
        assert len(" OR ".join(f"from:{n}" for n in [*batch, following[0]])) > 512
    assert len(batches) == 5


async def test_get_new_posts_without_a_cursor_gives_the_newest_few_and_a_cursor(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, _), Client(build_server(runtime)) as client:
        result = await client.call_tool("getNewPosts", {"username": "@bob"})
        data = result.structured_content
        assert 0 < len(data["posts"]) <= 5
        ids = [int(p["id"]) for p in data["posts"]]
        assert ids == sorted(ids) and data["next_since_id"] == data["posts"][-1]["id"]
        bad = await client.call_tool("getNewPosts", {"username": "bob", "since_id": "nope"})
        assert bad.is_error is True and "`since_id` must be a post id" in bad.content[0].text


async def test_subscribing_to_something_else_is_refused(sandbox):
    async with watching_runtime(sandbox) as (runtime, _), Client(build_server(runtime), mode="legacy") as client:
        with pytest.raises(Exception, match="only x://users/"):
            await client.subscribe_resource("x://users/alice/likes")
        with pytest.raises(Exception, match="There is no X user"):
            await client.subscribe_resource("x://users/nobody_here/posts")
        assert runtime.watcher.status()["watched"] == []


async def test_the_sdk_private_attributes_we_rely_on_still_exist(mcp_server):
    """server/subscriptions.py uses two private SDK attributes; an upgrade must not move them silently."""
    import inspect

    from mcp.server.connection import Connection
    from mcp.server.session import ServerSession

    assert "resources/subscribe" in mcp_server._lowlevel_server._request_handlers
    assert "self._connection = connection" in inspect.getsource(ServerSession.__init__)
    assert "self.exit_stack = AsyncExitStack()" in inspect.getsource(Connection.__init__)


async def test_a_429_during_the_search_fallback_keeps_its_reset(sandbox, admin):
    async with watching_runtime(sandbox) as (runtime, clock):
        for uri in (ALICE, "x://users/bob/posts"):
            await runtime.watcher.subscribe(uri, "test")
        admin.fault(SEARCH, "status", status=403)
        admin.rate_limit(TIMELINE, 2)  # both baselines spent it
        clock.now += 5
        await runtime.watcher.poll_due()
        assert runtime.watcher.use_search is False
        reset_at = runtime.client.rate_limits[TIMELINE].reset_at
        assert all(w.next_due >= reset_at for w in (runtime.watcher.recent("alice"), runtime.watcher.recent("bob")))
        clock.now = reset_at - 1
        calls = admin.calls()[TIMELINE]
        assert await runtime.watcher.poll_due() == 0
        assert admin.calls()[TIMELINE] == calls


async def test_unsubscribing_never_waits_for_a_poll_in_progress(sandbox):
    async with watching_runtime(sandbox) as (runtime, _):
        await runtime.watcher.subscribe(ALICE, "test")
        async with runtime.watcher._poll_lock:  # as if a slow poll were under way
            with anyio.fail_after(5):
                await runtime.watcher.unsubscribe("test")
        assert runtime.watcher.status()["watched"] == []


async def test_the_poll_loop_survives_a_failing_round(sandbox, caplog):
    async with watching_runtime(sandbox) as (runtime, clock):
        await runtime.watcher.subscribe(ALICE, "test")
        rounds = 0

        async def broken(*, force: bool = False) -> int:
            nonlocal rounds
            rounds += 1
            raise RuntimeError("store on fire")

        runtime.watcher.poll_due = broken
        async with anyio.create_task_group() as group:
            group.start_soon(runtime.watcher.run)
            await anyio.wait_all_tasks_blocked()
            assert rounds == 1  # it failed once, and is now waiting for the next round
            assert runtime.watcher.recent("alice").next_due >= clock.now + runtime.watcher.min_interval
            group.cancel_scope.cancel()
    assert "a poll round failed" in caplog.text


async def test_a_spent_budget_stops_the_round_instead_of_collecting_429s(sandbox, admin):
    names = [f"quiet_{i}" for i in range(6)]
    for name in names:
        admin.http.post("/users", json={"username": name}).raise_for_status()
    async with watching_runtime(sandbox, watch_search=False) as (runtime, clock):
        for name in names:
            await runtime.watcher.subscribe(f"x://users/{name}/posts", "test")
        admin.rate_limit(TIMELINE, 6 + 3)  # the 6 baselines, then 3 polls
        clock.now += 5
        before = admin.calls()[TIMELINE]
        assert await runtime.watcher.poll_due(force=True) == 3  # stops when X says the budget is spent
        assert admin.calls()[TIMELINE] == before + 3  # and collected no 429
        reset_at = runtime.client.rate_limits[TIMELINE].reset_at
        assert all(runtime.watcher.recent(n).next_due >= reset_at - 1e-6 for n in names)
        clock.now = reset_at - 1
        assert await runtime.watcher.poll_due() == 0
