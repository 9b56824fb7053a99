"""The posting toolset beyond plain posts: replies, quotes, polls (createPost) and threads (createThread),
through real MCP sessions on the sandbox."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.inventory import select_tools
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

pytestmark = pytest.mark.anyio

MODES = ["legacy", "auto"]
DEMO_ID = "1700000000000000001"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
IMAGE = {"url": "data:image/png;base64," + base64.b64encode(PNG).decode(), "name": "dot.png"}
NOT_AN_IMAGE = {"url": "data:text/plain;base64," + base64.b64encode(b"hello").decode(), "name": "notes.txt"}


@asynccontextmanager
async def posting(sandbox, mode: str = "legacy", **settings: Any) -> AsyncIterator[tuple[Runtime, Client]]:
    config = Settings(sandbox=True, **settings)
    async with Runtime.open(config, sandbox_server=sandbox, run_watcher=False, clock=time.time) as runtime:
        runtime.tools = select_tools(toolsets=("posting",))
        async with Client(build_server(runtime), mode=mode) as client:
            yield runtime, client


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def post(sandbox, post_id: str):
    return sandbox.sandbox.posts[post_id]


def tweets_sent(admin) -> int:
    return admin.calls().get("POST /2/tweets", 0)


# --- createPost: replies, quotes, polls -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_reply_to_an_own_post_is_made_as_a_reply(sandbox, mode):
    async with posting(sandbox, mode) as (_, client):
        root = (await client.call_tool("createPost", {"text": "a post of mine"})).structured_content["data"]["id"]
        reply = await client.call_tool("createPost", {"text": "and a reply to it", "reply_to": root})
    assert reply.is_error is False
    assert post(sandbox, reply.structured_content["data"]["id"]).in_reply_to.id == root


async def test_an_unsummoned_reply_is_refused_with_x_s_rule_explained(sandbox, admin):
    target = admin.post_as("bob", "bob muses about nothing")["data"]["id"]
    async with posting(sandbox) as (_, client):
        result = await client.call_tool("createPost", {"text": "uninvited", "reply_to": target})
    assert result.is_error is True
    assert "only when the author of the post replied to summoned this account" in text_of(result)
    assert "Retrying won't help" in text_of(result)


async def test_a_reply_where_the_author_mentioned_the_account_is_made(sandbox, admin):
    target = admin.post_as("bob", "what do you think, @xcourier_demo?")["data"]["id"]
    async with posting(sandbox) as (_, client):
        result = await client.call_tool("createPost", {"text": "I think it's fine", "reply_to": target})
    assert result.is_error is False
    assert post(sandbox, result.structured_content["data"]["id"]).in_reply_to.id == target


async def test_a_quote_on_a_self_serve_plan_is_refused_with_the_2026_rule_explained(sandbox, admin):
    target = admin.post_as("alice", "quote me if you can")["data"]["id"]
    async with posting(sandbox) as (_, client):
        result = await client.call_tool("createPost", {"text": "look", "quote": target})
    assert result.is_error is True
    assert "quote posts through its API only on Enterprise plans" in text_of(result)


async def test_a_quote_given_as_a_post_url_is_made_on_enterprise(sandbox, admin, enterprise):
    target = admin.post_as("alice", "quote me by my URL")["data"]["id"]
    async with posting(sandbox) as (_, client):
        result = await client.call_tool(
            "createPost", {"text": "worth a read", "quote": f"https://x.com/alice/status/{target}?s=20"}
        )
    assert result.is_error is False
    assert post(sandbox, result.structured_content["data"]["id"]).quoted.id == target


@pytest.mark.parametrize("mode", MODES)
async def test_a_poll_and_reply_settings_reach_x(sandbox, mode):
    poll = {"options": ["Tea", "Coffee", "Neither"], "duration_minutes": 1440}
    async with posting(sandbox, mode) as (_, client):
        result = await client.call_tool(
            "createPost", {"text": "Morning drink?", "poll": poll, "reply_settings": "following"}
        )
    made = post(sandbox, result.structured_content["data"]["id"])
    assert (made.poll["options"], made.poll["duration_minutes"]) == (poll["options"], 1440)
    assert made.reply_settings == "following"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"text": "q?", "poll": {"options": ["a", "b"], "duration_minutes": 60}, "media": [IMAGE]}, "poll and media"),
        ({"text": "q?", "poll": {"options": ["a", "b"], "duration_minutes": 60}, "quote": "20"}, "poll and quote"),
        ({"text": "q?", "poll": {"options": ["only one"], "duration_minutes": 60}}, "2 to 4 options; got 1"),
        ({"text": "q?", "poll": {"options": ["a", "b"], "duration_minutes": 4}}, "5 to 10080 (7 days); got 4"),
        ({"text": "q?", "poll": {"options": ["a", "x" * 26], "duration_minutes": 60}}, "has 26 characters"),
        ({"text": "quoting", "quote": "https://example.com/alice/status/1"}, "`quote` must be a post id"),
        ({"text": "hi", "reply_to": "12ab"}, "`reply_to` must be a post id"),
    ],
)
async def test_bad_combinations_and_polls_are_refused_before_anything_reaches_x(sandbox, admin, arguments, says):
    async with posting(sandbox) as (_, client):
        result = await client.call_tool("createPost", arguments)
    assert result.is_error is True and says in text_of(result)
    assert admin.x_calls() == 0


# --- createThread ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_thread_is_posted_in_order_each_post_replying_to_the_one_before(sandbox, mode):
    async with posting(sandbox, mode) as (_, client):
        result = await client.call_tool(
            "createThread",
            {"posts": [{"text": "1/3 a thread"}, {"text": "2/3 with media", "media": [IMAGE]}, {"text": "3/3 end"}]},
        )
    assert result.is_error is False
    made = result.structured_content["data"]["posts"]
    assert [p["text"].split(" ")[0] for p in made] == ["1/3", "2/3", "3/3"]
    assert result.structured_content["data"]["last_id"] == made[-1]["id"]
    chain = [post(sandbox, p["id"]) for p in made]
    assert chain[0].in_reply_to is None
    assert [c.in_reply_to.id for c in chain[1:]] == [made[0]["id"], made[1]["id"]]
    assert chain[1].media_keys


async def test_every_image_of_a_thread_is_uploaded_before_its_first_post(sandbox):
    async with posting(sandbox) as (_, client):
        await client.call_tool(
            "createThread", {"posts": [{"text": "first", "media": [IMAGE]}, {"text": "second", "media": [IMAGE]}]}
        )
    order = [r["endpoint"] for r in sandbox.sandbox.requests() if r["endpoint"].startswith("POST /2/")]
    assert order == ["POST /2/media/upload", "POST /2/media/upload", "POST /2/tweets", "POST /2/tweets"]


async def test_a_bad_file_in_a_later_post_stops_the_thread_before_anything_is_posted(sandbox, admin):
    async with posting(sandbox) as (_, client):
        result = await client.call_tool(
            "createThread",
            {"posts": [{"text": "fine"}, {"text": "fine too"}, {"text": "bad", "media": [NOT_AN_IMAGE]}]},
        )
    assert result.is_error is True and "posts[2]" in text_of(result)
    assert admin.x_calls() == 0


async def test_a_thread_that_stops_at_post_k_lists_what_was_made_and_finishes_with_continue_from(sandbox, admin):
    admin.rate_limit("POST /2/tweets", 2)
    posts = [{"text": f"part {n} of a thread that will stop"} for n in (1, 2, 3, 4)]
    async with posting(sandbox) as (_, client):
        stopped = await client.call_tool("createThread", {"posts": posts})
        assert stopped.is_error is True
        said = text_of(stopped)
        assert "stopped at post 3 of 4" in said and "rate limit" in said
        progress = json.loads(next(line for line in said.splitlines() if line.startswith('{"created"')))
        assert len(progress["created"]) == 2 and progress["remaining_from_index"] == 2
        assert f'continue_from="{progress["continue_from"]}"' in said
        admin.rate_limit("POST /2/tweets", 100)
        rest = posts[progress["remaining_from_index"] :]
        finished = await client.call_tool("createThread", {"posts": rest, "continue_from": progress["continue_from"]})
    assert finished.is_error is False
    texts = [p["text"] for p in admin.state()["posts"] if p["author_id"] == DEMO_ID and "will stop" in p["text"]]
    assert sorted(texts) == sorted(p["text"] for p in posts)  # each part exactly once
    last_two = [p["id"] for p in finished.structured_content["data"]["posts"]]
    assert post(sandbox, last_two[0]).in_reply_to.id == progress["continue_from"]


async def test_a_lost_answer_inside_a_thread_is_recovered_and_the_post_never_repeated(sandbox, admin):
    admin.fault("POST /2/tweets", "drop")
    async with posting(sandbox) as (_, client):
        result = await client.call_tool("createThread", {"posts": [{"text": "answer lost"}, {"text": "then fine"}]})
    assert result.is_error is False
    assert "was lost" in text_of(result)
    texts = [p["text"] for p in admin.state()["posts"] if p["author_id"] == DEMO_ID]
    assert texts.count("answer lost") == 1 and texts.count("then fine") == 1


async def test_an_unknown_outcome_stops_the_thread_and_says_to_look_before_continuing(sandbox, admin):
    admin.fault("POST /2/tweets", "drop")
    admin.fault("GET /2/users/{id}/tweets", "status", status=404)
    async with posting(sandbox) as (_, client):
        result = await client.call_tool("createThread", {"posts": [{"text": "lost for good"}, {"text": "never sent"}]})
    said = text_of(result)
    assert result.is_error is True
    assert "stopped at post 1 of 2" in said and "Post 1 may or may not exist: look at the account first" in said
    assert "never sent" not in [p["text"] for p in admin.state()["posts"]]


async def test_the_audit_shows_each_post_of_a_thread(sandbox):
    async with posting(sandbox) as (runtime, client):
        result = await client.call_tool("createThread", {"posts": [{"text": "audit one"}, {"text": "audit two"}]})
        entries = [e for e in await runtime.audit.since(3600) if e.tool == "createThread"]
    ids = [p["id"] for p in result.structured_content["data"]["posts"]]
    assert [(e.outcome, e.text, e.ids.get("post_id"), e.ids["thread_index"]) for e in entries] == [
        ("ok", "audit one", ids[0], "1"),
        ("ok", "audit two", ids[1], "2"),
    ]
    assert entries[1].ids["in_reply_to"] == ids[0]
    assert all(e.cost >= 0.015 for e in entries)


async def test_the_pace_limit_stops_a_thread_between_posts(sandbox):
    async with posting(sandbox, max_writes_per_hour=2) as (runtime, client):
        result = await client.call_tool("createThread", {"posts": [{"text": f"paced {n}"} for n in (1, 2, 3)]})
        outcomes = [e.outcome for e in await runtime.audit.since(3600) if e.tool == "createThread"]
    assert result.is_error is True
    assert "stopped at post 3 of 3: xcourier refused it: the pace limit" in text_of(result)
    assert outcomes == ["ok", "ok", "refused"]


async def test_dry_run_shows_the_whole_thread_and_sends_nothing(sandbox, admin):
    async with posting(sandbox, dry_run=True) as (_, client):
        result = await client.call_tool("createThread", {"posts": [{"text": "dry 1"}, {"text": "dry 2"}]})
    assert result.is_error is True and "DRY RUN" in text_of(result) and "dry 2" in text_of(result)
    assert admin.x_calls() == 0
