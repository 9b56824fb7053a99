"""Every outcome told as it happened on X, through real MCP client sessions, with the audit entry it leaves.

Where the sandbox can play the situation it does (over real HTTP on loopback); where X's behaviour
can't be produced by it (a connection failing in a given way, a 2xx body X can't have meant, a post
sent but never made), X is served by respx on https://api.x.com, which no request can leave.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings
from xcourier.tools.client import RetryPolicy

pytestmark = pytest.mark.anyio

X = "https://api.x.com"
ME = {"data": {"id": "42", "username": "me", "name": "Me"}}
ALICE = {"data": {"id": "43", "username": "alice", "name": "Alice"}}
POST_ID = "1445880548472328192"
_EPOCH_MS = 1288834974657


async def _no_wait(_seconds: float) -> None:
    return None


def text_of(result: Any) -> str:
    text = "\n".join(block.text for block in result.content)
    # No sentence in any message ends twice ("...deleted.."); a literal "..." is allowed.
    assert not re.search(r"(?<!\.)\.\.(?!\.)", text), text
    return text


async def audit_entries(client: Client) -> list[dict[str, Any]]:
    """The writes in the audit trail (reads that reached X are recorded too, for their cost)."""
    entries = json.loads((await client.read_resource("x://audit")).contents[0].text)["entries"]
    return [entry for entry in entries if entry["write"]]


async def audit_totals(client: Client) -> dict[str, Any]:
    return json.loads((await client.read_resource("x://audit")).contents[0].text)["totals"]


@asynccontextmanager
async def session(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Client, Runtime]]:
    """xcourier acting with a bare access token on the X at `api_base_url` (respx's by default)."""
    config = Settings(access_token="test-token", store=str(tmp_path / "store.db"), **{"api_base_url": X, **settings})
    async with Runtime.open(config, run_watcher=False) as runtime:
        runtime.client.retry = RetryPolicy(sleep=_no_wait)  # backoff delays are not what these tests measure
        async with Client(build_server(runtime)) as client:
            yield client, runtime


@pytest.fixture
def x() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=X, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nothing else takes it, and never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
async def sandboxed(runtime: Runtime) -> AsyncIterator[Client]:
    runtime.client.retry = RetryPolicy(sleep=_no_wait)
    async with Client(build_server(runtime)) as client:
        yield client


def on_enterprise(admin: Any) -> None:
    admin.http.post("/plan", json={"plan": "enterprise"}).raise_for_status()


def snowflake(epoch_seconds: float) -> str:
    return str((int(epoch_seconds * 1000) - _EPOCH_MS) << 22)


# --- X could not be reached: nothing was sent ------------------------------------------------------

WRITES = [
    ("createPost", {"text": "hello"}),
    ("deletePost", {"id": POST_ID}),
    ("likePost", {"tweet_id": POST_ID}),
    ("repostPost", {"tweet_id": POST_ID}),
    ("sendDirectMessage", {"username": "alice", "text": "hi"}),
]


async def test_a_refused_connection_says_x_was_not_reached_where_and_that_nothing_was_sent(
    tmp_path: Path, refused_port: int
):
    address = f"http://127.0.0.1:{refused_port}"
    async with session(tmp_path, api_base_url=address) as (client, _runtime):
        texts = {}
        for tool, arguments in WRITES:
            result = await client.call_tool(tool, arguments)
            assert result.is_error is True, tool
            texts[tool] = text_of(result)
        entries = await audit_entries(client)
        totals = await audit_totals(client)

    for tool, text in texts.items():
        assert f"could not be reached at {address} (the connection was refused)" in text, tool
        assert "Nothing was sent to X" in text and "--api-base-url" in text, tool
        assert "answer was lost" not in text and "may or may not" not in text, tool
    assert [(e["tool"], e["outcome"], e["cost"]) for e in entries] == [(tool, "not-sent", 0.0) for tool, _ in WRITES]
    assert totals["writes_last_hour"] == 0 and totals["spent_last_24h_usd"] == 0


async def test_a_tls_failure_says_nothing_was_sent(tmp_path: Path, sandbox, admin):
    # The sandbox speaks plain HTTP: a TLS handshake with it fails before any request is written.
    address = sandbox.base_url.replace("http://", "https://")
    async with session(tmp_path, api_base_url=address) as (client, _runtime):
        result = await client.call_tool("createPost", {"text": "over TLS?"})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert f"could not be reached at {address} (the TLS handshake failed" in text_of(result)
    assert "Nothing was sent to X" in text_of(result)
    assert "POST /2/tweets" not in admin.calls()
    assert [(e["outcome"], e["cost"]) for e in entries] == [("not-sent", 0.0)]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        pytest.param(httpx.ConnectError("[Errno -2] Name or service not known"), "(DNS)", id="dns"),
        pytest.param(httpx.ConnectTimeout("timed out"), "connecting timed out", id="connect-timeout"),
        pytest.param(httpx.PoolTimeout("timed out"), "came free in time", id="pool-timeout"),
    ],
)
async def test_a_connection_that_never_formed_says_nothing_was_sent(
    tmp_path: Path, x: respx.MockRouter, failure: httpx.HTTPError, reason: str
):
    tweets = x.post("/2/tweets").mock(side_effect=failure)
    async with session(tmp_path) as (client, _runtime):
        result = await client.call_tool("createPost", {"text": "anyone there?"})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert reason in text_of(result) and "Nothing was sent to X" in text_of(result)
    assert tweets.call_count == 1 and len(x.calls) == 1  # no lost-answer lookup: there is no answer to have lost
    assert [(e["outcome"], e["cost"]) for e in entries] == [("not-sent", 0.0)]


async def test_a_dm_that_could_not_connect_is_not_called_sent_with_its_answer_lost(tmp_path: Path, x: respx.MockRouter):
    x.get("/2/users/by/username/alice").respond(200, json=ALICE)
    dms = x.post("/2/dm_conversations/with/43/messages").mock(
        side_effect=httpx.ConnectError("[Errno 111] Connection refused")
    )
    async with session(tmp_path) as (client, _runtime):
        result = await client.call_tool("sendDirectMessage", {"username": "alice", "text": "hi"})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert "Nothing was sent to X" in text_of(result)
    assert "may or may not have arrived" not in text_of(result)
    assert dms.call_count == 1  # a message is never re-sent blindly, even when nothing went out
    # The DM costs nothing; the recipient lookup did reach X and is billed as a user read.
    assert [(e["outcome"], e["cost"]) for e in entries] == [("not-sent", _runtime.prices["user_read"])]


# --- X accepted the call but its answer can't be read: done, billed, not to be repeated ---------------


async def test_an_unreadable_answer_to_a_post_is_done_billed_and_counted_against_the_pace_limit(
    tmp_path: Path, x: respx.MockRouter
):
    tweets = x.post("/2/tweets").respond(201, text="<html>Created</html>")
    async with session(tmp_path, max_writes_per_hour=1) as (client, runtime):
        result = await client.call_tool("createPost", {"text": "did it work?"})
        again = await client.call_tool("createPost", {"text": "something else"})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert "X accepted POST /2/tweets (HTTP 201)" in text_of(result)
    assert "the body is not JSON" in text_of(result)
    assert "it is done on the account" in text_of(result) and "Don't repeat this call" in text_of(result)
    assert again.is_error is True and "--max-writes-per-hour 1" in text_of(again)
    assert tweets.call_count == 1
    done, refused = entries
    assert (done["outcome"], done["cost"]) == ("ok", runtime.prices["post_create"])
    assert "could not be read" in done["detail"]
    assert refused["outcome"] == "refused"


async def test_an_unreadable_answer_to_a_dm_is_done_and_counted_against_the_daily_budget(
    tmp_path: Path, x: respx.MockRouter
):
    x.get("/2/users/by/username/alice").respond(200, json=ALICE)
    # X's answer without dm_event_id: the message went, but there is no id to return for it.
    dms = x.post("/2/dm_conversations/with/43/messages").respond(201, json={"data": {"dm_conversation_id": "42-43"}})
    # 0.029 USD: the second DM (0.015) fits only if the first one is left out of the spend, with or
    # without the user lookup (a 0.010 read) counted beside it.
    async with session(tmp_path, daily_budget=0.029) as (client, runtime):
        result = await client.call_tool("sendDirectMessage", {"username": "alice", "text": "hi"})
        again = await client.call_tool("sendDirectMessage", {"username": "alice", "text": "hi again"})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert "X accepted POST /2/dm_conversations/with/{participant_id}/messages" in text_of(result)
    assert "Don't repeat this call" in text_of(result)
    assert again.is_error is True and "--daily-budget" in text_of(again)
    assert dms.call_count == 1
    sent = runtime.prices["dm"] + runtime.prices["user_read"]  # the recipient lookup is a billed read
    assert [(e["outcome"], pytest.approx(e["cost"])) for e in entries] == [("ok", sent), ("refused", 0.0)]


async def test_an_unreadable_answer_before_the_action_means_the_action_was_not_sent(
    tmp_path: Path, x: respx.MockRouter
):
    x.get("/2/users/me").respond(200, text="<html>me</html>")
    likes = x.post("/2/users/42/likes").respond(200, json={"data": {"liked": True}})
    async with session(tmp_path) as (client, _runtime):
        result = await client.call_tool("likePost", {"tweet_id": POST_ID})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert "the action itself was not sent" in text_of(result) and "Calling again is safe" in text_of(result)
    assert likes.call_count == 0
    assert [(e["outcome"], e["cost"]) for e in entries] == [("error", 0.0)]


# --- an answer lost: on the action, or on a step before it -------------------------------------------


async def test_a_lost_answer_on_a_step_before_the_like_says_the_like_was_never_sent(sandboxed: Client, admin):
    on_enterprise(admin)
    post = admin.post_as("bob", "like me after a glitch")["data"]["id"]
    admin.fault("GET /2/users/me", "drop", times=3)  # outlasts the retries of the lookup

    result = await sandboxed.call_tool("likePost", {"tweet_id": post})
    entries = await audit_entries(sandboxed)

    assert result.is_error is True
    assert "A step before the action (GET /2/users/me) did not complete" in text_of(result)
    assert "may or may not" not in text_of(result)
    assert "POST /2/users/{id}/likes" not in admin.calls() and admin.state()["likes"] == []
    assert [(e["outcome"], e["cost"]) for e in entries] == [("not-sent", 0.0)]


async def test_a_lost_post_is_never_reported_with_an_earlier_posts_id(tmp_path: Path, x: respx.MockRouter):
    # Measured: "report https://example.com/2" was reported created with the id of the earlier
    # "report https://example.com/1"; the new post did not exist. On X both read "report https://t.co/...".
    earlier_id = snowflake(time.time() - 60)
    earlier_text = "report https://t.co/AAAAAAAAAA"
    earlier = {
        "id": earlier_id,
        "text": earlier_text,
        "edit_history_tweet_ids": [earlier_id],
        "entities": {
            "urls": [{"start": 7, "end": 30, "url": "https://t.co/AAAAAAAAAA", "expanded_url": "https://example.com/1"}]
        },
    }
    x.post("/2/tweets").mock(side_effect=httpx.ReadTimeout("timed out"))
    x.get("/2/users/me").respond(200, json=ME)
    x.get("/2/users/42/tweets").respond(200, json={"data": [earlier], "meta": {"result_count": 1}})
    async with session(tmp_path) as (client, runtime):
        result = await client.call_tool("createPost", {"text": "report https://example.com/2"})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert earlier_id not in text_of(result)
    assert "the outcome is unknown" in text_of(result) and "Check the account before retrying" in text_of(result)
    assert [e["outcome"] for e in entries] == ["unknown"]
    # The post may have been billed; so were the lookups after it: users/me and one owned post read.
    looked = runtime.prices["user_read"] + runtime.prices["owned_read"]
    assert entries[0]["cost"] == pytest.approx(runtime.prices["post_create_with_url"] + looked)


async def test_a_lost_media_only_post_is_not_taken_for_an_earlier_media_only_post(tmp_path: Path, x: respx.MockRouter):
    earlier_id = snowflake(time.time() - 30)
    x.post("/2/media/upload").respond(
        200, json={"data": {"id": "1100000000000000002", "media_key": "3_1100000000000000002"}}
    )
    x.post("/2/tweets").mock(side_effect=httpx.ReadTimeout("timed out"))
    x.get("/2/users/me").respond(200, json=ME)
    earlier = {
        "id": earlier_id,
        "text": "https://t.co/DDDDDDDDDD",
        "edit_history_tweet_ids": [earlier_id],
        "attachments": {"media_keys": ["3_1100000000000000001"]},
    }
    x.get("/2/users/42/tweets").respond(200, json={"data": [earlier], "meta": {"result_count": 1}})
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    media = [{"url": f"data:image/png;base64,{png}", "name": "dot.png", "mimeType": "image/png", "extension": "png"}]
    async with session(tmp_path) as (client, _runtime):
        result = await client.call_tool("createPost", {"media": media})
        entries = await audit_entries(client)

    assert result.is_error is True
    assert earlier_id not in text_of(result) and "the outcome is unknown" in text_of(result)
    assert [e["outcome"] for e in entries] == ["unknown"]


# --- what X refused, told so that the user knows what to do --------------------------------------------


async def test_an_app_only_token_is_named_and_the_fix_given(tmp_path: Path, x: respx.MockRouter):
    # X's answer, as X's API Playground (xdevplatform/playground, internal/playground/auth.go) gives it.
    x.post("/2/tweets").respond(
        403,
        json={
            "title": "Unsupported Authentication",
            "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint. Supported "
            "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
            "type": "https://api.twitter.com/2/problems/unsupported-authentication",
            "status": 403,
        },
    )
    async with session(tmp_path) as (client, _runtime):
        result = await client.call_tool("createPost", {"text": "with an app token"})

    assert result.is_error is True
    assert "app-only token" in text_of(result) and "`xcourier auth login`" in text_of(result)
    assert "permissions" not in text_of(result)


async def test_out_of_credits_says_to_add_credits_not_to_wait(sandboxed: Client, admin):
    admin.http.post("/credits", json={"usd": 0}).raise_for_status()

    result = await sandboxed.call_tool("createPost", {"text": "no credits left"})
    entries = await audit_entries(sandboxed)

    assert result.is_error is True
    assert "credits are used up" in text_of(result) and "Add credits" in text_of(result)
    assert "auto-recharge" in text_of(result)
    assert "billing period" not in text_of(result)
    assert [(e["outcome"], e["cost"]) for e in entries] == [("error", 0.0)]


async def test_a_usage_cap_is_not_called_a_rate_limit(sandboxed: Client, admin):
    admin.http.post("/usage-cap", json={"capped": True}).raise_for_status()

    result = await sandboxed.call_tool("createPost", {"text": "capped"})

    assert result.is_error is True
    assert "usage cap" in text_of(result) and "spending limit" in text_of(result)
    assert "rate limit" not in text_of(result)


async def test_a_spent_24_hour_window_gives_its_own_reset(sandboxed: Client, admin):
    on_enterprise(admin)
    admin.http.post(
        "/rate-limits", json={"endpoint": "POST /2/users/{id}/likes", "limit": 1, "window": "24h-user"}
    ).raise_for_status()
    first = admin.post_as("bob", "like one")["data"]["id"]
    second = admin.post_as("bob", "like two")["data"]["id"]
    assert (await sandboxed.call_tool("likePost", {"tweet_id": first})).is_error is False

    result = await sandboxed.call_tool("likePost", {"tweet_id": second})

    assert result.is_error is True
    assert "24-hour per-user rate limit" in text_of(result)
    # The 15-minute window has calls left; the reset given is the 24-hour one's, a day away.
    assert re.search(r"retry after \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in about 2[34] h\)", text_of(result)), text_of(
        result
    )


async def test_an_unknown_recipient_keeps_what_x_said(sandboxed: Client):
    result = await sandboxed.call_tool("sendDirectMessage", {"username": "nobody_here", "text": "hi"})

    assert result.is_error is True
    assert "There is no X user @nobody_here" in text_of(result)
    assert "X said: Could not find user with username: [nobody_here]." in text_of(result)


async def test_a_404_on_user_lookup_keeps_what_x_said(tmp_path: Path, x: respx.MockRouter):
    x.get("/2/users/by/username/nobody_here").respond(
        404,
        json={
            "title": "Not Found Error",
            "detail": "Could not find user with username: [nobody_here].",
            "type": "https://api.x.com/2/problems/resource-not-found",
            "status": 404,
        },
    )
    async with session(tmp_path) as (client, _runtime):
        result = await client.call_tool("sendDirectMessage", {"username": "nobody_here", "text": "hi"})

    assert "X said: Could not find user with username: [nobody_here]." in text_of(result)
