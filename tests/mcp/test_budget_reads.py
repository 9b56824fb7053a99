"""Reads cost money: through real MCP sessions on the sandbox, reads count toward --daily-budget.

X bills each post (0.005 USD) and user (0.010 USD) a read returns, once per UTC day. The
sandbox seeds alice and bob with 3 posts each, so the spend below is known to the cent. The
watcher's loop is off: each test moves a fake clock and calls poll_due() itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

from ..clock import Clock

pytestmark = pytest.mark.anyio

TIMELINE = "GET /2/users/{id}/tweets"
USER_LOOKUP = "GET /2/users/by/username/{username}"
DAY = 24 * 3600


@asynccontextmanager
async def serving(sandbox, clock: Clock, **settings) -> AsyncIterator[Runtime]:
    config = Settings(sandbox=True, poll_interval=1.0, **settings)
    async with Runtime.open(config, sandbox_server=sandbox, run_watcher=False, clock=clock) as runtime:
        yield runtime


async def read_json(client: Client, uri: str) -> dict:
    return json.loads((await client.read_resource(uri)).contents[0].text)


async def test_resource_reads_and_watcher_polls_are_billed_per_resource_once_a_day(sandbox, admin):
    clock = Clock()
    async with serving(sandbox, clock) as runtime, Client(build_server(runtime), mode="legacy") as client:
        await client.subscribe_resource("x://users/alice/posts")  # alice: 1 user + 3 posts
        admin.post_as("alice", "new from alice")
        await runtime.watcher.poll_due(force=True)  # 1 new post
        await runtime.watcher.poll_due(force=True)  # nothing new: X returns no data, bills nothing
        await read_json(client, "x://users/alice/posts")  # served from what the watcher read: free
        await read_json(client, "x://users/bob/posts")  # bob: 1 user + 3 posts
        await read_json(client, "x://users/bob/posts")  # the same resources the same UTC day: free
        audit = await read_json(client, "x://audit")
    rows = [(e["tool"], round(e["cost"], 3), e["write"]) for e in audit["entries"]]
    assert rows == [
        ("newPost subscribe", 0.025, False),
        ("newPost watcher", 0.005, False),
        ("newPost", 0.025, False),
    ]
    assert audit["entries"][1]["detail"] == "read from X: 1 post read(s)"
    assert audit["totals"]["spent_on_reads_last_24h_usd"] == pytest.approx(0.055)


async def test_a_budget_spent_by_reads_refuses_the_next_read_and_pauses_the_watcher(sandbox, admin):
    clock = Clock()
    async with (
        serving(sandbox, clock, daily_budget=0.05) as runtime,
        Client(build_server(runtime), mode="legacy") as client,
    ):
        await client.subscribe_resource("x://users/alice/posts")  # 0.025
        admin.post_as("alice", "first news")
        assert await runtime.watcher.poll_due(force=True) == 1  # 0.030
        await read_json(client, "x://users/bob/posts")  # 0.055: past the budget of 0.05
        calls = admin.calls()

        with pytest.raises(MCPError) as refused:
            await read_json(client, "x://users/carol/posts")
        assert "--daily-budget 0.05 USD is used up" in str(refused.value)
        assert "resumes at" in str(refused.value)

        admin.post_as("alice", "news the watcher must not fetch yet")
        assert await runtime.watcher.poll_due(force=True) == 0
        status = await read_json(client, "x://watcher")
        assert status["state"] == "paused"
        assert "--daily-budget 0.05 USD is used up" in status["paused"]["reason"]
        assert status["paused"]["until"] == status["watched"][0]["next_poll_at"]

        # What the watcher already read is still served: it costs nothing more.
        assert (await read_json(client, "x://users/alice/posts"))["posts"][0]["text"] == "first news"
        # Writes are refused as before.
        write = await client.call_tool("createPost", {"text": "over budget"})
        assert write.is_error and "--daily-budget 0.05 USD would be passed" in write.content[0].text
        assert admin.calls() == calls  # nothing of the above reached X
        audit = await read_json(client, "x://audit")
        refusals = [(e["tool"], e["outcome"], e["write"]) for e in audit["entries"] if e["outcome"] == "refused"]
        assert refusals == [("newPost", "refused", False), ("createPost", "refused", True)]

        clock.now += DAY + 1  # the spend leaves the 24 h window
        assert await runtime.watcher.poll_due(force=True) == 1
        assert (await read_json(client, "x://watcher"))["state"] == "polling"
        assert (await read_json(client, "x://users/alice/posts"))["posts"][0]["text"].startswith("news the watcher")


async def test_get_new_posts_is_billed_once_a_day_and_refused_once_the_budget_is_used_up(sandbox, admin):
    clock = Clock()
    async with serving(sandbox, clock, daily_budget=0.03) as runtime, Client(build_server(runtime)) as client:
        assert (await client.call_tool("getNewPosts", {"username": "alice"})).is_error is False  # 0.025
        assert (await client.call_tool("getNewPosts", {"username": "alice"})).is_error is False  # the same: free
        assert (await client.call_tool("getNewPosts", {"username": "bob"})).is_error is False  # 0.050
        calls = admin.calls()
        refused = await client.call_tool("getNewPosts", {"username": "carol"})
        assert refused.is_error and "--daily-budget 0.03 USD is used up" in refused.content[0].text
        assert admin.calls() == calls
        audit = await read_json(client, "x://audit")
    rows = [(e["tool"], e["outcome"], round(e["cost"], 3), e["write"]) for e in audit["entries"]]
    assert rows == [
        ("getNewPosts", "ok", 0.025, False),
        ("getNewPosts", "ok", 0.025, False),
        ("getNewPosts", "refused", 0.0, False),
    ]
