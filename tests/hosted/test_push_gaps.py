"""newPost pushed by X in hosted mode, where time or the stream lease has to be driven by the test: a
gap in X's stream longer than its backfill, and the stream lease handed from one instance to another
and back. Several hosted apps (what `xcourier serve --auth x` runs) in this event loop, each on a
loopback socket of its own, sharing a real Redis, the sandbox, and one clock the test moves.

The stream's backoff sleeps are gates the test opens; every other wait is a bounded wait for a
condition.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import anyio
import pytest
import uvicorn
from mcp_types import ResourceUpdatedNotification

from xcourier.server.app import build_server
from xcourier.server.hosted.http import hosted_app, make_bridge
from xcourier.server.hosted.runtime import WATCHER_ACCOUNT_ID, open_hosted
from xcourier.server.push import PushSource
from xcourier.server.runtime import PushOptions, Runtime
from xcourier.tools.activity import Backoff

from ..clock import Clock
from .conftest import STORE_KEY
from .signin import session, sign_in
from .test_auth_errors import hosted_settings
from .test_fleet import WAIT, timeline_pollers
from .test_sign_in import consent_as

pytestmark = pytest.mark.anyio

BOB = "x://users/bob/posts"
ALICE = "x://users/alice/posts"
STREAM_LEASE = "xcourier-xaa-stream"  # server/push.py's name for the fleet's stream lease


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


@dataclass
class Member:
    url: str
    runtime: Runtime
    gate: Gate

    @property
    def push(self) -> PushSource:
        assert isinstance(self.runtime.push, PushSource)
        return self.runtime.push


@asynccontextmanager
async def member(sandbox_url: str, store: str, app_token: str, clock: Clock, lease_ttl: float) -> AsyncIterator[Member]:
    """One hosted instance on the test's clock, its stream's backoff behind a gate. The socket listens
    before uvicorn starts, so requests wait in its backlog until the app is up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    public_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = hosted_settings(sandbox_url, store, lease_ttl=lease_ttl, app_bearer_token=app_token)
    gate = Gate()
    options = PushOptions(sleep=gate.sleep, backoff=Backoff(jitter=lambda: 0.5))
    try:
        async with open_hosted(settings, clock=clock, push_options=options) as runtime:
            bridge = make_bridge(runtime, settings, public_url)
            app = hosted_app(
                build_server(runtime, hosted=bridge, public_url=public_url), bridge, runtime.store, public_url
            )
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
            server = uvicorn.Server(config)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(partial(server.serve, sockets=[sock]))
                try:
                    yield Member(public_url + "/mcp", runtime, gate)
                finally:
                    server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def fleet(
    sandbox, admin, hosted_store: str, size: int, monkeypatch, lease_ttl: float = 1.5
) -> AsyncIterator[tuple[list[Member], Clock]]:
    """`lease_ttl`: Redis's leases run on real time; a test that hands leases over itself keeps them short, one
    that needs them to stay put makes them long, so a loaded machine's pause past the TTL can't move them."""
    monkeypatch.setenv("XCOURIER_STORE_KEY", STORE_KEY)
    app_token = admin.http.post("/app-token").raise_for_status().json()["access_token"]
    clock = Clock()
    async with AsyncExitStack() as stack:
        members = [
            await stack.enter_async_context(member(sandbox.base_url, hosted_store, app_token, clock, lease_ttl))
            for _ in range(size)
        ]
        yield members, clock


@dataclass
class Watching:
    """One user's legacy session on one instance, subscribed to some users' posts, counting updates."""

    url: str
    token: str
    uris: list[str]
    updates: list[str] = field(default_factory=list)
    ready: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)

    async def run(self) -> None:
        async def on_message(message: object) -> None:
            if isinstance(message, ResourceUpdatedNotification):
                self.updates.append(str(message.params.uri))

        async with session(self.url, self.token, mode="legacy", message_handler=on_message) as client:
            for uri in self.uris:
                await client.subscribe_resource(uri)
            self.ready.set()
            await self.stop.wait()


async def signed_in(member: Member, admin, username: str) -> str:
    consent_as(admin, username)
    return (await sign_in(member.url)).tokens.access_token


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT):
        while not condition():
            await anyio.sleep(0.02)  # between looks at state other tasks and the sandbox's thread change


def streams_open(admin) -> int:
    return admin.http.get("/activity").raise_for_status().json()["streams_open"]


def request_count(admin) -> int:
    return len(admin.http.get("/requests").raise_for_status().json()["requests"])


def delivered(member: Member, username: str) -> int:
    watched = member.runtime.watcher.recent(username)
    return -1 if watched is None else watched.delivered


async def test_after_a_gap_longer_than_the_backfill_each_lease_holder_catches_its_users_up(
    sandbox, admin, hosted_store, monkeypatch
):
    admin.http.post("/users", json={"username": "dave"}).raise_for_status()
    fleet_of_three = fleet(sandbox, admin, hosted_store, 3, monkeypatch, lease_ttl=30.0)
    async with fleet_of_three as (members, clock), anyio.create_task_group() as tg:
        # bob's lease goes to the first instance, alice's to the second: whichever instance holds the
        # stream, at least one of them is watched (and its lease held) elsewhere. The third watches both.
        plan = [(0, "carol", [BOB]), (1, "xcourier_demo", [ALICE]), (2, "dave", [BOB, ALICE])]
        sessions: list[Watching] = []
        for index, login, uris in plan:
            watching = Watching(members[index].url, await signed_in(members[index], admin, login), uris)
            sessions.append(watching)
            tg.start_soon(watching.run)
            with anyio.fail_after(WAIT):
                await watching.ready.wait()
        await until(lambda: streams_open(admin) == 1 and sum(m.push.holds_stream for m in members) == 1)
        holder = next(m for m in members if m.push.holds_stream)
        for m in members:
            assert all(w["via"] == "push" for w in m.runtime.watcher.status()["watched"])
        assert members[0].runtime.watcher.recent("bob").held and members[1].runtime.watcher.recent("alice").held

        for m in members:
            m.gate.close()
        admin.http.post("/activity/cut").raise_for_status()
        with anyio.fail_after(WAIT):
            await holder.gate.waiting.wait()
        made = {
            name: [admin.post_as(name, f"{name} away {i}")["data"]["id"] for i in range(2)] for name in ("bob", "alice")
        }
        # Six minutes pass, on X's clock and on xcourier's: longer than X's 5-minute backfill keeps.
        admin.http.post("/clock", json={"advance": 360}).raise_for_status()
        clock.now += 360
        since = request_count(admin)
        for m in members:
            m.gate.opened.set()

        readers = ((members[0], ["bob"]), (members[1], ["alice"]), (members[2], ["bob", "alice"]))
        await until(lambda: all(delivered(m, name) >= 2 for m, names in readers for name in names))
        await until(lambda: holder.push.state == "streaming")
        for m, names in readers:
            for name in names:
                assert delivered(m, name) == 2, (name, m.url)  # each post once, on every instance
                assert [p.id for p in m.runtime.watcher.recent(name).recent][-2:] == made[name]
        # Each user's timeline was read once, by the instance holding its lease, on its subscriber's login.
        bob_id = sandbox.sandbox.user_by_username("bob").id
        alice_id = sandbox.sandbox.user_by_username("alice").id
        assert timeline_pollers(admin, bob_id, since) == ["carol"]
        assert timeline_pollers(admin, alice_id, since) == ["xcourier_demo"]
        # One read each, so one update per user and subscriber. The notifications travel to the sessions over
        # their HTTP streams after the deliveries counted above: wait for them, then check there is no more.
        expected = [[BOB], [ALICE], [ALICE, BOB]]
        await until(lambda: all(len(s.updates) >= len(want) for s, want in zip(sessions, expected, strict=True)))
        assert [sorted(s.updates) for s in sessions] == expected
        for watching in sessions:
            watching.stop.set()


async def test_a_stream_handed_over_and_back_bills_each_post_event_once_fleet_wide(
    sandbox, admin, hosted_store, monkeypatch
):
    async with fleet(sandbox, admin, hosted_store, 2, monkeypatch) as (members, _), anyio.create_task_group() as tg:
        logins = ["alice", "carol"]
        sessions = [
            Watching(m.url, await signed_in(m, admin, name), [BOB]) for m, name in zip(members, logins, strict=True)
        ]
        for watching in sessions:
            tg.start_soon(watching.run)
            with anyio.fail_after(WAIT):
                await watching.ready.wait()
        await until(lambda: streams_open(admin) == 1 and sum(m.push.holds_stream for m in members) == 1)
        first = next(m for m in members if m.push.holds_stream)
        second = next(m for m in members if m is not first)
        store = first.runtime.store

        async def hand_stream(to: Member, since: Member) -> None:
            # As when a holder stalls past its lease and another instance takes it: the lease now names `to`.
            await store.release_lease(STREAM_LEASE, since.push.instance)
            assert await store.hold_lease(STREAM_LEASE, to.push.instance, 1.5)
            await until(lambda: to.push.holds_stream and not since.push.holds_stream)
            await until(lambda: to.push.state == "streaming" and streams_open(admin) == 1)

        made: list[str] = []

        async def burst(count: int) -> None:
            made.extend(admin.post_as("bob", f"post {len(made)}")["data"]["id"] for _ in range(count))
            await until(lambda: all(delivered(m, "bob") == len(made) for m in members))

        await burst(5)
        await hand_stream(second, first)  # its backfill replays the first five: billed by `first` already
        await burst(5)
        await hand_stream(first, second)  # replays all ten: `first` billed five of them, `second` the rest
        await until(lambda: first.push.events >= 15)
        await burst(1)  # after the replay on the same stream: its bills are recorded by now

        records = [r for _, r in await store.audit_since(0) if r.get("account_id") == WATCHER_ACCOUNT_ID]
        pushed = [r for r in records if r["tool"] == "newPost push"]
        billed = [i for r in pushed for i in r["billed"]["event:post.create"]]
        assert sorted(billed) == sorted(made)  # each post's event once, whoever held the stream
        assert sum(r["cost"] for r in pushed) == pytest.approx(0.005 * len(made))  # X's price, once per post a day
        assert [len(s.updates) for s in sessions] == [len(made)] * 2
        for watching in sessions:
            watching.stop.set()
