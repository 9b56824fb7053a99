"""newPost in hosted mode: polls run on a login of someone who watches that user, and nobody
reads through someone else's login."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from xcourier.server.sandbox import PUBLIC_CLIENT_ID

from .signin import session, sign_in
from .test_fleet import BOB, Subscriber, request_count, timeline_pollers
from .test_sign_in import consent_as

pytestmark = pytest.mark.anyio


async def signed_in(server, admin, username: str) -> str:
    consent_as(admin, username)
    return (await sign_in(server.url)).tokens.access_token


async def test_a_resource_read_by_a_non_subscriber_goes_to_x_with_their_own_login(launcher, admin, sandbox):
    server = launcher.start()
    alice, carol = await signed_in(server, admin, "alice"), await signed_in(server, admin, "carol")
    bob_id = sandbox.sandbox.user_by_username("bob").id
    watcher = Subscriber(server, alice, legacy=True)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watcher.run)
        with anyio.fail_after(60):
            await watcher.ready.wait()
        before = request_count(admin)
        async with session(server.url, carol, mode="legacy") as client:
            feed = json.loads((await client.read_resource(BOB)).contents[0].text)
            status = json.loads((await client.read_resource("x://watcher")).contents[0].text)
        assert feed["username"] == "bob"
        # Read with carol's own login (X decides what she may see), not from alice's polls...
        assert "carol" in timeline_pollers(admin, bob_id, before)
        # ... and alice's subscription is none of carol's business.
        assert status["watched"] == []
        async with session(server.url, alice, mode="legacy") as client:
            own = json.loads((await client.read_resource("x://watcher")).contents[0].text)
        assert [(w["username"], w["subscribers"]) for w in own["watched"]] == [("bob", 1)]
        watcher.stop.set()


async def test_polls_use_a_subscriber_of_that_user_and_survive_one_login_dying(launcher, admin, sandbox):
    server = launcher.start()
    alice = await signed_in(server, admin, "alice")
    earlier = sandbox.sandbox.oauth.issued_refresh_tokens()
    carol = await signed_in(server, admin, "carol")
    (carols_x_login,) = sandbox.sandbox.oauth.issued_refresh_tokens() - earlier
    bob_id = sandbox.sandbox.user_by_username("bob").id
    first, second = Subscriber(server, alice, legacy=True), Subscriber(server, carol, legacy=True)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first.run)
        with anyio.fail_after(60):
            await first.ready.wait()
        tasks.start_soon(second.run)
        with anyio.fail_after(60):
            await second.ready.wait()

        since = request_count(admin)
        admin.post_as("bob", "one")
        await first.wait_for(1)
        await second.wait_for(1)
        assert set(timeline_pollers(admin, bob_id, since)) == {"carol"}  # the newest subscriber's login

        # Carol revokes the app on X: her login dies; the news must keep coming, on alice's.
        revoke = {"token": carols_x_login, "client_id": PUBLIC_CLIENT_ID}
        httpx.post(f"{sandbox.base_url}/2/oauth2/revoke", data=revoke).raise_for_status()
        since = request_count(admin)
        admin.post_as("bob", "two")
        await first.wait_for(2)
        assert timeline_pollers(admin, bob_id, since)[-1] == "alice"
        first.stop.set()
        second.stop.set()
