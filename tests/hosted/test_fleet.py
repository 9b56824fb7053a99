"""Three `xcourier serve --auth x` processes sharing Redis and the sandbox, as behind a load balancer.

Every instance is started with the first one's origin as --public-url, as they would all carry the
balancer's: tokens are issued for that one resource and accepted by every instance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anyio
import pytest
from mcp_types import ResourceUpdatedNotification

from .conftest import Instance, Launcher
from .signin import session, sign_in
from .test_sign_in import author_of, consent_as

pytestmark = pytest.mark.anyio

BOB = "x://users/bob/posts"
# Generous bounds for a slow CI machine; each wait ends as soon as its condition holds.
WAIT = 60.0


def start_fleet(launcher: Launcher, size: int = 3) -> list[Instance]:
    first = launcher.start()
    return [first, *(launcher.start(public_url=first.origin) for _ in range(size - 1))]


async def tokens_for(instance: Instance, admin, username: str) -> str:
    consent_as(admin, username)
    return (await sign_in(instance.url)).tokens.access_token


@dataclass
class Subscriber:
    """One user's session on one instance, subscribed to bob's posts, counting updates."""

    instance: Instance
    token: str
    legacy: bool
    updates: list[str] = field(default_factory=list)
    ready: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)
    changed: anyio.Condition = field(default_factory=anyio.Condition)

    async def _note(self, uri: str) -> None:
        async with self.changed:
            self.updates.append(uri)
            self.changed.notify_all()

    async def run(self) -> None:
        try:
            if self.legacy:
                await self._run_legacy()
            else:
                await self._run_listen()
        except Exception:
            if self.instance.process.poll() is None:
                raise  # only the killed instance's session may end this way

    async def _run_legacy(self) -> None:
        async def on_message(message: object) -> None:
            if isinstance(message, ResourceUpdatedNotification):
                await self._note(str(message.params.uri))

        async with session(self.instance.url, self.token, mode="legacy", message_handler=on_message) as client:
            await client.subscribe_resource(BOB)
            self.ready.set()
            await self.stop.wait()

    async def _run_listen(self) -> None:
        async with (
            session(self.instance.url, self.token) as client,
            client.listen(resource_subscriptions=[BOB]) as subscription,
        ):
            self.ready.set()
            async with anyio.create_task_group() as tasks:

                async def collect() -> None:
                    async for event in subscription:
                        await self._note(str(event.uri))

                tasks.start_soon(collect)
                await self.stop.wait()
                tasks.cancel_scope.cancel()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(WAIT):
            async with self.changed:
                while len(self.updates) < count:
                    await self.changed.wait()


def timeline_pollers(admin, bob_id: str, since: int) -> list[str]:
    """Whose token each request for bob's timeline carried, in order, from request number `since`."""
    requests = admin.http.get("/requests").raise_for_status().json()["requests"]
    return [r["user"] for r in requests[since:] if r["path"] == f"/2/users/{bob_id}/tweets"]


def request_count(admin) -> int:
    return len(admin.http.get("/requests").raise_for_status().json()["requests"])


async def read_feed(instance: Instance, token: str) -> dict:
    async with session(instance.url, token, mode="legacy") as client:
        return json.loads((await client.read_resource(BOB)).contents[0].text)


async def watcher_status(instance: Instance, token: str) -> dict:
    async with session(instance.url, token, mode="legacy") as client:
        status = json.loads((await client.read_resource("x://watcher")).contents[0].text)
    return next(w for w in status["watched"] if w["username"] == "bob")


async def test_one_poller_for_the_fleet_news_for_every_subscriber_and_takeover_when_it_dies(launcher, admin, sandbox):
    instances = start_fleet(launcher)
    users = ["alice", "carol", "xcourier_demo"]
    tokens = [await tokens_for(instances[0], admin, name) for name in users]
    bob_id = sandbox.sandbox.user_by_username("bob").id
    subscribers = [
        Subscriber(instances[0], tokens[0], legacy=True),
        Subscriber(instances[1], tokens[1], legacy=False),  # 2026-07-28 subscriptions/listen
        Subscriber(instances[2], tokens[2], legacy=True),
    ]
    async with anyio.create_task_group() as tasks:
        for subscriber in subscribers:
            tasks.start_soon(subscriber.run)
        with anyio.fail_after(WAIT):
            for subscriber in subscribers:
                await subscriber.ready.wait()
        since = request_count(admin)

        admin.post_as("bob", "first post while three instances watch")
        for subscriber in subscribers:
            await subscriber.wait_for(1)
        pollers = set(timeline_pollers(admin, bob_id, since))
        assert len(pollers) == 1, f"bob was polled with several instances' logins: {pollers}"
        holder = users.index(pollers.pop())
        for instance, token in zip(instances, tokens, strict=True):
            feed = await read_feed(instance, token)
            assert feed["posts"][0]["text"] == "first post while three instances watch"

        instances[holder].kill()
        after_kill = request_count(admin)
        admin.post_as("bob", "second post after the poller died")
        survivors = [i for i in range(3) if i != holder]
        for index in survivors:
            await subscribers[index].wait_for(2)
        new_pollers = set(timeline_pollers(admin, bob_id, after_kill))
        assert len(new_pollers) == 1 and new_pollers <= {users[i] for i in survivors}, new_pollers
        for index in survivors:
            assert subscribers[index].updates == [BOB, BOB]  # one per post: nothing repeated
            feed = await read_feed(instances[index], tokens[index])
            texts = [p["text"] for p in feed["posts"]]
            assert texts[:2] == ["second post after the poller died", "first post while three instances watch"]
            status = await watcher_status(instances[index], tokens[index])
            assert status["delivered"] == 2  # each post reached this instance exactly once
        for subscriber in subscribers:
            subscriber.stop.set()


async def test_an_expired_x_token_used_from_three_instances_is_refreshed_once(launcher, admin, sandbox):
    instances = start_fleet(launcher)
    token = await tokens_for(instances[0], admin, "alice")
    admin.http.post("/tokens/expire", json={}).raise_for_status()
    results: list = [None] * 3

    async def post_from(index: int) -> None:
        async with session(instances[index].url, token, mode="legacy") as client:
            results[index] = await client.call_tool("createPost", {"text": f"alice via instance {index}"})

    async with anyio.create_task_group() as tasks:
        for index in range(3):
            tasks.start_soon(post_from, index)
    for result in results:
        assert not result.is_error, result
        assert author_of(sandbox, result.structured_content["data"]["id"]) == "alice"
    grants = admin.http.get("/oauth/grants").raise_for_status().json()["grants"]
    assert grants["refresh_token"] == 1
    assert grants["authorization_code"] == 1
