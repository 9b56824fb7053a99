"""newPost pushed by X in hosted mode: one X Activity API stream for the whole fleet, held under a
lease, its posts fanned out on the sealed Redis feed; three real `xcourier serve --auth x` processes.

Waits are bounded waits for a condition (a subscriber's count, the sandbox's open streams); the
only timing figure asserted is the one the instance measures itself: how long after the dead
holder's last sign of life it took the stream over.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import anyio
import httpx
import pytest
import redis

from xcourier.server.cli import main

from .conftest import STORE_KEY, Instance, Launcher
from .signin import session
from .test_fleet import BOB, WAIT, Subscriber, start_fleet, tokens_for

pytestmark = pytest.mark.anyio

LEASE_TTL = 1.5  # the launcher's --lease-ttl


async def store_app_token(sandbox, admin, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xcourier auth app`, as an operator runs it once for the fleet's store."""
    token = admin.http.post("/app-token").raise_for_status().json()["access_token"]
    monkeypatch.setenv("XCOURIER_STORE_KEY", STORE_KEY)
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    # The command runs its own event loop, so it gets a thread of its own.
    args = ["auth", "app", "--api-base-url", sandbox.base_url, "--store", store]
    assert await anyio.to_thread.run_sync(main, args) == 0


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT):
        while not condition():
            await anyio.sleep(0.05)  # between looks at another process's state; bounded by WAIT


async def watcher_status(instance: Instance, token: str) -> dict:
    async with session(instance.url, token, mode="legacy") as client:
        return json.loads((await client.read_resource("x://watcher")).contents[0].text)


async def bob_feed(instance: Instance, token: str) -> list[str]:
    async with session(instance.url, token, mode="legacy") as client:
        return [p["id"] for p in json.loads((await client.read_resource(BOB)).contents[0].text)["posts"]]


def billed_events(store: str) -> list[str]:
    """The post ids the fleet's audit trail says X billed as post.create events (entries are not sealed)."""
    connection = redis.Redis.from_url(store, decode_responses=True)
    try:
        members = connection.zrangebyscore("xcourier:audit", 0, "+inf")
    finally:
        connection.close()
    records = [json.loads(m)["record"] for m in members]
    return [i for r in records if r["tool"] == "newPost push" for i in r["billed"]["event:post.create"]]


async def test_the_fleets_one_stream_is_taken_over_when_its_holder_is_killed_mid_burst(
    launcher: Launcher, admin, sandbox, hosted_store, monkeypatch
):
    await store_app_token(sandbox, admin, hosted_store, monkeypatch)
    instances = start_fleet(launcher)
    names = ["alice", "carol", "xcourier_demo"]
    tokens = [await tokens_for(instances[0], admin, name) for name in names]
    bob_id = sandbox.sandbox.user_by_username("bob").id
    subscribers = [Subscriber(instances[i], tokens[i], legacy=i != 1) for i in range(3)]

    def activity() -> dict:
        return admin.http.get("/activity").raise_for_status().json()

    async with anyio.create_task_group() as tasks:
        for subscriber in subscribers:
            tasks.start_soon(subscriber.run)
        with anyio.fail_after(WAIT):
            for subscriber in subscribers:
                await subscriber.ready.wait()
        await until(lambda: activity()["streams_open"] == 1)
        statuses = [await watcher_status(i, t) for i, t in zip(instances, tokens, strict=True)]
        holders = [n for n, s in enumerate(statuses) if s["push"]["holds_fleet_stream"]]
        assert len(holders) == 1, [s["push"] for s in statuses]
        holder = holders[0]
        assert all(s["watched"][0]["via"] == "push" for s in statuses)
        survivors = [n for n in range(3) if n != holder]

        made = [admin.post_as("bob", f"burst {n}")["data"]["id"] for n in range(30)]
        await subscribers[survivors[0]].wait_for(10)
        instances[holder].kill()  # SIGKILL mid-burst: no lease released, whatever was in flight is lost
        made += [admin.post_as("bob", f"burst {n}")["data"]["id"] for n in range(30, 60)]

        for index in survivors:
            await subscribers[index].wait_for(60)
        await until(lambda: activity()["streams_open"] == 1)
        for index in survivors:
            status = await watcher_status(instances[index], tokens[index])
            assert status["watched"][0]["delivered"] == 60  # each post reached this instance once
            assert await bob_feed(instances[index], tokens[index]) == made[::-1][:20]
        pushes = [(await watcher_status(instances[n], tokens[n]))["push"] for n in survivors]
        new_holders = [p for p in pushes if p["holds_fleet_stream"]]
        assert len(new_holders) == 1, pushes
        # The lease lapses at most one TTL after the holder's last renewal, and the survivors try every
        # third of a TTL; the holder records a sign of life at each renewal.
        assert new_holders[0]["took_over_after_seconds"] <= LEASE_TTL * 2
        for index in survivors:
            assert len(subscribers[index].updates) == 60  # nothing repeated
        subscriptions = [s for s in activity()["subscriptions"] if s["filter"]["user_id"] == bob_id]
        assert sorted(s["event_type"] for s in subscriptions) == ["post.create", "post.delete"]
        # The new holder's backfill replayed what the dead one had billed: each post's event is billed once.
        assert sorted(billed_events(hosted_store)) == sorted(made)
        for subscriber in subscribers:
            subscriber.stop.set()


async def test_a_post_deleted_on_x_leaves_every_instances_resource_with_one_update_each(
    launcher: Launcher, admin, sandbox, hosted_store, monkeypatch
):
    await store_app_token(sandbox, admin, hosted_store, monkeypatch)
    instances = start_fleet(launcher)
    tokens = [await tokens_for(instances[0], admin, name) for name in ["alice", "carol", "xcourier_demo"]]
    subscribers = [Subscriber(instances[i], tokens[i], legacy=i != 1) for i in range(3)]
    bob_token = admin.http.post("/tokens", json={"username": "bob"}).raise_for_status().json()["access_token"]

    def streams_open() -> int:
        return admin.http.get("/activity").raise_for_status().json()["streams_open"]

    async with anyio.create_task_group() as tasks:
        for subscriber in subscribers:
            tasks.start_soon(subscriber.run)
        with anyio.fail_after(WAIT):
            for subscriber in subscribers:
                await subscriber.ready.wait()
        await until(lambda: streams_open() == 1)
        doomed = admin.post_as("bob", "soon deleted")["data"]["id"]
        for subscriber in subscribers:
            await subscriber.wait_for(1)
        async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as x:
            deleted = await x.delete(f"/2/tweets/{doomed}", headers={"authorization": f"Bearer {bob_token}"})
        assert deleted.raise_for_status().json() == {"data": {"deleted": True}}
        # Only the stream holder hears post.delete from X; the others learn it on the sealed feed.
        for subscriber in subscribers:
            await subscriber.wait_for(2)
        for instance, token in zip(instances, tokens, strict=True):
            assert doomed not in await bob_feed(instance, token)
        # A later post is one more update each: the deletion was not told twice anywhere.
        kept = admin.post_as("bob", "still here")["data"]["id"]
        for subscriber in subscribers:
            await subscriber.wait_for(3)
        for instance, token in zip(instances, tokens, strict=True):
            feed = await bob_feed(instance, token)
            assert feed[0] == kept and doomed not in feed
        for subscriber in subscribers:
            assert subscriber.updates == [BOB] * 3
            subscriber.stop.set()
