"""One tenant against the others on a hosted instance (issue 12, items 7 and 8), through the real HTTP app:
a tenant spending their own X budget can't pause the news for everyone, and a revoked sign-in (or a login
X refuses) keeps neither its sessions, nor its subscriptions, nor a place in the polls."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import httpx
import pytest
from mcp_types import ResourceUpdatedNotification

from xcourier.server.sandbox import PUBLIC_CLIENT_ID

from .conftest import Instance
from .signin import SignedIn, revoke, session, sign_in
from .test_fleet import BOB, WAIT, request_count, start_fleet, timeline_pollers
from .test_sign_in import consent_as

pytestmark = pytest.mark.anyio

TIMELINE = "GET /2/users/{id}/tweets"


async def signed_in(instance: Instance, admin, username: str) -> SignedIn:
    consent_as(admin, username)
    return await sign_in(instance.url)


@dataclass
class Watching:
    """One session (2025-11-25) or listen stream (2026-07-28) subscribed to bob's posts. Unlike test_fleet's
    Subscriber it expects to be cut off: how its session or stream ended is recorded, not raised."""

    instance: Instance
    token: str
    legacy: bool
    updates: list[str] = field(default_factory=list)
    ready: anyio.Event = field(default_factory=anyio.Event)
    ended: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)
    changed: anyio.Condition = field(default_factory=anyio.Condition)
    error: BaseException | None = None

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
        except Exception as exc:  # the server ended it: what the test is about
            self.error = exc
        finally:
            self.ended.set()

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
                    self.stop.set()  # the stream ended

                tasks.start_soon(collect)
                await self.stop.wait()
                tasks.cancel_scope.cancel()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(WAIT):
            async with self.changed:
                while len(self.updates) < count:
                    await self.changed.wait()


async def start(tasks: anyio.abc.TaskGroup, *watching: Watching) -> None:
    for one in watching:
        tasks.start_soon(one.run)
        with anyio.fail_after(WAIT):
            await one.ready.wait()  # one at a time: the last to subscribe is the newest subscriber


def sessions_ended(instance: Instance) -> int:
    """MCP sessions the server ended because their grant was over, as its log says."""
    return sum("ended an MCP session" in line for line in instance.stderr)


def set_limit(admin, limit: int, window: str) -> None:
    admin.http.post("/rate-limits", json={"endpoint": TIMELINE, "limit": limit, "window": window}).raise_for_status()


# -- 7. one tenant's spent budget doesn't pause the news for everyone ----------------------------------


async def test_a_tenant_spending_their_own_budget_does_not_pause_polling_for_the_others(launcher, admin, sandbox):
    # A daily per-user budget on timelines: spent, it is spent for a day. The 15-minute one stays as X has
    # it, so polls keep their usual pace.
    set_limit(admin, 60, "24h-user")
    server = launcher.start("--toolsets", "all")
    alice, carol = await signed_in(server, admin, "alice"), await signed_in(server, admin, "carol")
    bob_id = sandbox.sandbox.user_by_username("bob").id
    first, second = Watching(server, alice.tokens.access_token, True), Watching(server, carol.tokens.access_token, True)
    async with anyio.create_task_group() as tasks:
        await start(tasks, first, second)  # carol subscribed last: her login polls bob
        admin.post_as("bob", "before")
        await first.wait_for(1)
        await second.wait_for(1)
        assert set(timeline_pollers(admin, bob_id, 0)) >= {"carol"}

        # The attack: carol spends her own daily budget for timelines through her own tool calls.
        async with session(server.url, carol.tokens.access_token, mode="legacy") as client:
            with anyio.fail_after(WAIT):
                while True:
                    result = await client.call_tool("getUserPosts", {"username": "bob"})
                    if result.is_error:
                        break
        assert "rate" in result.content[0].text.lower(), result.content[0].text

        since = request_count(admin)
        admin.post_as("bob", "after carol's budget ran out")
        await first.wait_for(2)  # not in 24 hours: now, on alice's login
        await second.wait_for(2)  # carol herself keeps getting the news too
        pollers = timeline_pollers(admin, bob_id, since)
        # At most one 429 on carol's login teaches the poller she is spent; then it's alice's.
        assert pollers.count("carol") <= 1 and pollers[-1] == "alice", pollers
        first.stop.set()
        second.stop.set()


# -- 8. a revoked sign-in, or a login X refuses, keeps nothing going --------------------------------------


async def test_a_revoked_token_ends_its_sessions_and_subscriptions_and_leaves_the_polls(launcher, admin, sandbox):
    server = launcher.start()
    carol, alice = await signed_in(server, admin, "carol"), await signed_in(server, admin, "alice")
    bob_id = sandbox.sandbox.user_by_username("bob").id
    others = Watching(server, carol.tokens.access_token, legacy=True)
    legacy = Watching(server, alice.tokens.access_token, legacy=True)
    listen = Watching(server, alice.tokens.access_token, legacy=False)
    async with anyio.create_task_group() as tasks:
        await start(tasks, others, legacy, listen)
        since = request_count(admin)
        admin.post_as("bob", "one")
        for watching in (others, legacy, listen):
            await watching.wait_for(1)
        assert set(timeline_pollers(admin, bob_id, since)) == {"alice"}  # the newest subscriber's login

        await revoke(server.origin, alice.client, alice.tokens.access_token)
        with anyio.fail_after(WAIT):
            await listen.ended.wait()  # the listen stream ends at once
        assert listen.error is not None  # ended by the server, not by the client leaving

        since = request_count(admin)
        admin.post_as("bob", "two")
        await others.wait_for(2)
        admin.post_as("bob", "three")
        await others.wait_for(3)  # a poll after "two" was told to everyone still subscribed
        assert (len(legacy.updates), len(listen.updates)) == (1, 1)
        assert timeline_pollers(admin, bob_id, since) and "alice" not in timeline_pollers(admin, bob_id, since)
        # The session was ended when the token was revoked (before /revoke answered), not left to idle out.
        assert sessions_ended(server) == 1
        others.stop.set()
        legacy.stop.set()


async def test_a_refresh_token_revoked_on_one_instance_ends_the_subscription_held_on_another(launcher, admin, sandbox):
    first, second = start_fleet(launcher, 2)
    carol, alice = await signed_in(first, admin, "carol"), await signed_in(first, admin, "alice")
    others = Watching(first, carol.tokens.access_token, legacy=True)
    listen = Watching(second, alice.tokens.access_token, legacy=False)
    async with anyio.create_task_group() as tasks:
        await start(tasks, others, listen)
        admin.post_as("bob", "one")
        await others.wait_for(1)
        await listen.wait_for(1)

        # Revoked where the stream isn't: the other instance finds out when it next acts for alice.
        assert alice.tokens.refresh_token
        await revoke(first.origin, alice.client, alice.tokens.refresh_token)
        admin.post_as("bob", "two")
        await others.wait_for(2)
        with anyio.fail_after(WAIT):
            await listen.ended.wait()
        assert len(listen.updates) == 1
        others.stop.set()


async def test_a_login_x_refuses_ends_its_subscriptions_and_leaves_the_polls(launcher, admin, sandbox):
    server = launcher.start()
    carol = await signed_in(server, admin, "carol")
    earlier = sandbox.sandbox.oauth.issued_refresh_tokens()
    alice = await signed_in(server, admin, "alice")
    (alices_x_login,) = sandbox.sandbox.oauth.issued_refresh_tokens() - earlier
    bob_id = sandbox.sandbox.user_by_username("bob").id
    others = Watching(server, carol.tokens.access_token, legacy=True)
    legacy = Watching(server, alice.tokens.access_token, legacy=True)
    listen = Watching(server, alice.tokens.access_token, legacy=False)
    async with anyio.create_task_group() as tasks:
        await start(tasks, others, legacy, listen)

        # Alice revokes xcourier on X: her X login dies, and with it what she started here.
        form = {"token": alices_x_login, "client_id": PUBLIC_CLIENT_ID}
        httpx.post(f"{sandbox.base_url}/2/oauth2/revoke", data=form).raise_for_status()
        admin.post_as("bob", "one")
        await others.wait_for(1)
        with anyio.fail_after(WAIT):
            await listen.ended.wait()
        since = request_count(admin)
        admin.post_as("bob", "two")
        await others.wait_for(2)
        assert (legacy.updates, listen.updates) == ([], [])
        assert "alice" not in timeline_pollers(admin, bob_id, since)
        assert sessions_ended(server) == 1  # found out before "one" was told: her session too
        others.stop.set()
        legacy.stop.set()
