"""newPost pushed by X (X Activity API) through a real MCP session, on the sandbox over real HTTP.

The watcher's poll loop is off: a post that reaches a subscriber got there through the stream. The
stream's backoff sleeps are injected (a gate the test opens, or no wait at all), and the gap
before a reconnect is measured on the test's clock, so nothing here waits on wall-clock time
except bounded waits for a condition.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from mcp import Client
from mcp_types import ResourceUpdatedNotification

from xcourier.server.app import build_server
from xcourier.server.runtime import PushOptions, Runtime
from xcourier.server.settings import Settings
from xcourier.tools.activity import Backoff
from xcourier.tools.timeline import Post

from ..clock import Clock

pytestmark = pytest.mark.anyio

TIMELINE = "GET /2/users/{id}/tweets"
SEARCH = "GET /2/tweets/search/recent"
STREAM = "GET /2/activity/stream"
ALICE = "x://users/alice/posts"
ALICE_ID = "1700000000000000002"


class Gate:
    """The stream's backoff sleep: returns at once while open; closed, it waits for the test."""

    def __init__(self) -> None:
        self.opened = anyio.Event()
        self.opened.set()
        self.waiting = anyio.Event()

    def close(self) -> None:
        self.opened = anyio.Event()
        self.waiting = anyio.Event()

    async def sleep(self, _seconds: float) -> None:
        self.waiting.set()
        await self.opened.wait()


@asynccontextmanager
async def pushing_runtime(sandbox, gate: Gate | None = None, **settings) -> AsyncIterator[tuple[Runtime, Clock]]:
    clock = Clock()
    options = PushOptions(sleep=(gate or Gate()).sleep, backoff=Backoff(jitter=lambda: 0.5), stall_timeout=2.0)
    config = Settings(sandbox=True, poll_interval=1.0, **settings)
    # X sends a keep-alive at least every 20 s; here often enough to stay under the 2 s stall timeout.
    httpx.post(f"{sandbox.base_url}/_sandbox/activity", json={"keepalive_seconds": 0.2}).raise_for_status()
    async with Runtime.open(
        config, sandbox_server=sandbox, run_watcher=False, run_push=True, clock=clock, push_options=options
    ) as runtime:
        yield runtime, clock


async def until(condition: Callable[[], bool], seconds: float = 15) -> None:
    """A bounded wait for a condition another task (or the sandbox's thread) makes true."""
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.01)


class LegacySubscriber:
    def __init__(self, server) -> None:
        self.updates: list[str] = []
        self.client = Client(server, mode="legacy", message_handler=self._on_message)

    async def _on_message(self, message) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.updates.append(str(message.params.uri))


async def read_posts(client: Client, uri: str = ALICE) -> dict:
    return json.loads((await client.read_resource(uri)).contents[0].text)


def polls(admin) -> int:
    calls = admin.calls()
    return calls.get(TIMELINE, 0) + calls.get(SEARCH, 0)


async def test_a_legacy_subscriber_hears_of_a_post_through_the_stream_without_a_poll(sandbox, admin):
    async with pushing_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            await until(lambda: runtime.push.state == "streaming")
            before = polls(admin)
            post = admin.post_as("alice", "pushed to a legacy session")["data"]
            await until(lambda: subscriber.updates == [ALICE])
            feed = await read_posts(client)
            status = json.loads((await client.read_resource("x://watcher")).contents[0].text)
        assert polls(admin) == before
    assert feed["posts"][0]["id"] == post["id"] and feed["posts"][0]["text"] == "pushed to a legacy session"
    assert status["watched"][0]["via"] == "push" and status["push"]["state"] == "streaming"


async def test_a_listen_subscriber_hears_of_a_post_through_the_stream_without_a_poll(sandbox, admin):
    async with pushing_runtime(sandbox) as (runtime, _), Client(build_server(runtime)) as client:
        assert client.protocol_version == "2026-07-28"
        async with client.listen(resource_subscriptions=[ALICE]) as subscription:
            await until(lambda: runtime.push.state == "streaming")
            before = polls(admin)
            admin.post_as("alice", "pushed to a listener")
            with anyio.fail_after(10):
                event = await anext(aiter(subscription))
            assert event.uri == ALICE
            assert (await read_posts(client))["posts"][0]["text"] == "pushed to a listener"
            assert polls(admin) == before
        await anyio.wait_all_tasks_blocked()
        # The last listener left: xcourier's subscriptions at X are gone with it.
        assert admin.http.get("/activity").json()["subscriptions"] == []


async def test_a_stream_cut_mid_burst_of_100_loses_and_repeats_nothing(sandbox, admin):
    admin.fault(STREAM, "cut", after_events=40)
    admin.http.post("/credits", json={"usd": 10}).raise_for_status()
    async with pushing_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            await until(lambda: runtime.push.state == "streaming")
            before, credits = polls(admin), admin.http.get("/plan").json()["credits_usd"]
            made = [admin.post_as("alice", f"burst {i}")["data"]["id"] for i in range(100)]
            watched = runtime.watcher.recent("alice")
            await until(lambda: watched.delivered >= 100)
            await anyio.wait_all_tasks_blocked()
            assert watched.delivered == 100
            assert [p["id"] for p in (await read_posts(client))["posts"]] == made[::-1][:20]
            assert runtime.push.connections == 2  # cut once, reconnected with a backfill
            assert polls(admin) == before
    delivered = admin.http.get("/activity").json()["events_delivered"]["post.create"]
    assert delivered == 140  # 40, then all 100 again in the backfill
    # ... and X billed each post's event once: 100 x $0.005.
    assert credits - admin.http.get("/plan").json()["credits_usd"] == pytest.approx(0.5)


async def test_a_shuffled_burst_is_delivered_once_each_and_the_resource_stays_in_id_order(sandbox, admin):
    # X's streams don't sort (consuming-streaming-data.mdx): the sandbox sends each 30 events shuffled.
    admin.http.post("/activity", json={"shuffle": 30, "seed": 7}).raise_for_status()
    async with pushing_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            await until(lambda: runtime.push.state == "streaming")
            watched = runtime.watcher.recent("alice")
            arrived: list[str] = []
            made: list[str] = []
            deliver = runtime.watcher.deliver_pushed

            async def recording(user_id, posts):
                arrived.extend(p.id for p in posts)
                delivered = await deliver(user_id, posts)
                # The cursor never passes a post that is still to come.
                assert all(int(i) > int(watched.cursor) for i in made if i not in arrived)
                return delivered

            runtime.watcher.deliver_pushed = recording
            made.extend(admin.post_as("alice", f"shuffled {i}")["data"]["id"] for i in range(30))
            await until(lambda: watched.delivered >= 30)
            await anyio.wait_all_tasks_blocked()
            feed = await read_posts(client)
            assert arrived != made and sorted(arrived) == sorted(made)  # really out of order
            assert watched.delivered == 30 and len(subscriber.updates) == 30
            assert [p["id"] for p in feed["posts"]] == made[::-1][:20]
            # The cursor trails the pushed posts; a catch-up from it reads them again and repeats none.
            assert int(watched.cursor) < int(made[0])
            assert await runtime.watcher.catch_up() == 1
            assert watched.delivered == 30 and len(subscriber.updates) == 30
            assert watched.cursor == made[-1] and watched.seen == set()


async def test_a_gap_longer_than_the_backfill_is_caught_up_from_the_timeline(sandbox, admin):
    gate = Gate()
    async with pushing_runtime(sandbox, gate) as (runtime, clock):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            await until(lambda: runtime.push.state == "streaming")
            gate.close()
            admin.http.post("/activity/cut").raise_for_status()
            with anyio.fail_after(10):
                await gate.waiting.wait()
            made = [admin.post_as("alice", f"while away {i}")["data"]["id"] for i in range(3)]
            # Six minutes pass, on X's clock and on xcourier's: longer than X's 5-minute backfill.
            admin.http.post("/clock", json={"advance": 360}).raise_for_status()
            clock.now += 360
            before = admin.calls().get(TIMELINE, 0)
            gate.opened.set()
            watched = runtime.watcher.recent("alice")
            await until(lambda: watched.cursor == made[-1] and runtime.push.state == "streaming")
            assert admin.calls()[TIMELINE] == before + 1
            assert watched.delivered == 3
            assert [p["id"] for p in (await read_posts(client))["posts"][:3]] == made[::-1]
            # The reconnect asked for the most X keeps; what it replayed was older, so nothing came twice.
            assert watched.delivered == 3


async def test_a_stalled_stream_is_detected_and_reconnected(sandbox, admin):
    admin.fault(STREAM, "stall", after_events=1)
    async with pushing_runtime(sandbox) as (runtime, _):
        await runtime.watcher.subscribe(ALICE, "test")
        await until(lambda: runtime.push.state == "streaming")
        first = admin.post_as("alice", "before the stall")["data"]["id"]
        second = admin.post_as("alice", "during the stall")["data"]["id"]
        watched = runtime.watcher.recent("alice")
        await until(lambda: watched.delivered == 2)
        assert runtime.push.connections == 2
        assert [p.id for p in watched.recent][-2:] == [first, second]


async def test_a_protected_account_is_polled(sandbox, admin):
    admin.http.post("/users/protected", json={"username": "alice"}).raise_for_status()
    async with pushing_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            status = json.loads((await client.read_resource("x://watcher")).contents[0].text)
            assert status["watched"][0]["via"] == "poll"
            assert "protected" in status["watched"][0]["polled_because"]
            assert admin.http.get("/activity").json()["subscriptions"] == []
            admin.post_as("alice", "only a poll finds this")
            assert await runtime.watcher.poll_due(force=True) == 1
            await until(lambda: subscriber.updates == [ALICE])


async def test_the_user_past_the_subscription_limit_is_polled(sandbox, admin):
    token = admin.http.post("/app-token").json()["access_token"]
    names = [f"filler{i}" for i in range(375)]
    with httpx.Client(base_url=sandbox.base_url, headers={"authorization": f"Bearer {token}"}) as app:
        ids = [admin.http.post("/users", json={"username": n}).json()["data"]["id"] for n in names]
        kinds = ("follow.follow", "follow.unfollow", "like.create", "spaces.start")
        made = 0
        for user_id in ids:
            for kind in kinds:
                if made == 1_499:
                    break
                body = {"event_type": kind, "filter": {"user_id": user_id}, "tag": "another tool"}
                app.post("/2/activity/subscriptions", json=body).raise_for_status()
                made += 1
    async with pushing_runtime(sandbox) as (runtime, _), Client(build_server(runtime), mode="legacy") as client:
        await client.subscribe_resource(ALICE)  # subscription 1,500: pushed
        await client.subscribe_resource("x://users/bob/posts")  # would be 1,501: polled
        status = json.loads((await client.read_resource("x://watcher")).contents[0].text)
    via = {w["username"]: (w["via"], w["polled_because"]) for w in status["watched"]}
    assert via["alice"] == ("push", None)
    assert via["bob"][0] == "poll" and "1500" in via["bob"][1]


def fill_subscriptions(sandbox, admin, count: int) -> None:
    """`count` subscriptions of other software on the same X app."""
    token = admin.http.post("/app-token").json()["access_token"]
    kinds = ("follow.follow", "follow.unfollow", "like.create", "spaces.start")
    with httpx.Client(base_url=sandbox.base_url, headers={"authorization": f"Bearer {token}"}) as app:
        made = 0
        for n in range(count // len(kinds) + 1):
            user_id = admin.http.post("/users", json={"username": f"filler{n}"}).json()["data"]["id"]
            for kind in kinds[: count - made]:
                body = {"event_type": kind, "filter": {"user_id": user_id}, "tag": "another tool"}
                app.post("/2/activity/subscriptions", json=body).raise_for_status()
                made += 1


async def test_at_the_limit_a_users_post_create_takes_the_room_of_anothers_post_delete(sandbox, admin):
    fill_subscriptions(sandbox, admin, 1_498)
    async with pushing_runtime(sandbox) as (runtime, _):
        await runtime.watcher.subscribe(ALICE, "test")  # post.create and post.delete: 1,500
        await runtime.watcher.subscribe("x://users/bob/posts", "test")
        via = {w["username"]: w["via"] for w in runtime.watcher.status()["watched"]}
        ours = [s for s in admin.http.get("/activity").json()["subscriptions"] if s.get("tag") != "another tool"]
    assert via == {"alice": "push", "bob": "push"}
    assert sorted(s["event_type"] for s in ours) == ["post.create", "post.create"]


async def test_a_deleted_post_leaves_the_resource(sandbox, admin):
    alice_token = admin.http.post("/tokens", json={"username": "alice"}).json()["access_token"]
    async with pushing_runtime(sandbox) as (runtime, _):
        subscriber = LegacySubscriber(build_server(runtime))
        async with subscriber.client as client:
            await client.subscribe_resource(ALICE)
            await until(lambda: runtime.push.state == "streaming")
            post = admin.post_as("alice", "soon gone")["data"]["id"]
            await until(lambda: len(subscriber.updates) == 1)
            assert (await read_posts(client))["posts"][0]["id"] == post
            httpx.delete(
                f"{sandbox.base_url}/2/tweets/{post}", headers={"authorization": f"Bearer {alice_token}"}
            ).raise_for_status()
            await until(lambda: len(subscriber.updates) == 2)
            assert post not in [p["id"] for p in (await read_posts(client))["posts"]]


async def test_pushed_events_are_billed_once_per_post_and_day(sandbox, admin):
    async with pushing_runtime(sandbox) as (runtime, _), Client(build_server(runtime), mode="legacy") as client:
        await client.subscribe_resource(ALICE)
        await until(lambda: runtime.push.state == "streaming")
        post = admin.post_as("alice", "billed once")["data"]["id"]
        watched = runtime.watcher.recent("alice")
        await until(lambda: watched.delivered == 1)
        audit = json.loads((await client.read_resource("x://audit")).contents[0].text)
    pushed = [e for e in audit["entries"] if e["tool"] == "newPost push"]
    assert len(pushed) == 1 and pushed[0]["cost"] == 0.005
    assert pushed[0]["billed"] == {"event:post.create": [post]}


async def test_with_watch_poll_nothing_is_pushed(sandbox, admin):
    async with pushing_runtime(sandbox, watch="poll") as (runtime, _):
        assert runtime.push is None
        await runtime.watcher.subscribe(ALICE, "test")
        assert runtime.watcher.status()["watched"][0]["via"] == "poll"
    assert STREAM not in admin.calls()


async def test_the_app_token_stored_by_auth_app_turns_push_on_for_a_real_login(sandbox, admin, tmp_path, monkeypatch):
    import io

    from xcourier.server.cli import main

    store = str(tmp_path / "store.db")
    app_token = admin.http.post("/app-token").json()["access_token"]
    monkeypatch.setattr("sys.stdin", io.StringIO(app_token + "\n"))
    # The command runs its own event loop, so it gets a thread of its own.
    args = ["auth", "app", "--api-base-url", sandbox.base_url, "--store", store]
    assert await anyio.to_thread.run_sync(main, args) == 0
    user_token = admin.http.post("/tokens", json={"username": "xcourier_demo"}).json()["access_token"]
    settings = Settings(access_token=user_token, api_base_url=sandbox.base_url, store=store, poll_interval=1.0)
    async with Runtime.open(settings, run_watcher=False, run_push=True, clock=Clock()) as runtime:
        assert runtime.push is not None
        await runtime.watcher.subscribe(ALICE, "test")
        assert runtime.watcher.status()["watched"][0]["via"] == "push"


async def test_a_delete_that_overtakes_its_post_on_the_stream_keeps_the_post_out(sandbox, admin):
    async with pushing_runtime(sandbox) as (runtime, _):
        await runtime.watcher.subscribe(ALICE, "test")
        watched = runtime.watcher.recent("alice")
        # X's stream is unordered (consuming-streaming-data.mdx): post.delete may come first.
        post_id = str(int(watched.cursor) + 1)
        post = Post.model_validate({"id": post_id, "text": "made and deleted", "author_id": ALICE_ID})
        assert not await runtime.watcher.drop_deleted(ALICE_ID, post_id)
        assert await runtime.watcher.deliver_pushed(ALICE_ID, [post]) == 0
        assert post_id not in [p.id for p in watched.recent] and watched.delivered == 0
