"""The five tools through a real MCP client session, in both protocol generations, on the sandbox."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mcp import Client

from xcourier.tools.client import RetryPolicy

pytestmark = pytest.mark.anyio

# mode="legacy": the 2025-11-25 initialize handshake; "auto" discovers and speaks 2026-07-28.
MODES = ["legacy", "auto"]
PROTOCOL = {"legacy": "2025-11-25", "auto": "2026-07-28"}

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
OTHER_PNG_URI = "data:image/png;base64," + base64.b64encode(PNG + b"\x00trailer").decode()


def image(uri: str = PNG_URI) -> dict[str, str]:
    return {"url": uri, "name": "dot.png", "mimeType": "image/png", "extension": "png"}


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, mcp_server):
    async with Client(mcp_server, mode=request.param) as connected:
        assert connected.protocol_version == PROTOCOL[request.param]
        yield connected


async def test_tools_list_has_the_seed_parameter_names(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"createPost", "deletePost", "likePost", "repostPost", "sendDirectMessage", "getNewPosts"}
    expected = {
        "createPost": ({"text", "media"}, set()),
        "deletePost": ({"id"}, {"id"}),
        "likePost": ({"tweet_id"}, {"tweet_id"}),
        "repostPost": ({"tweet_id"}, {"tweet_id"}),
        "sendDirectMessage": ({"username", "text", "media"}, {"username", "text"}),
    }
    for name, (properties, required) in expected.items():
        schema = tools[name].input_schema
        assert set(schema["properties"]) == properties, name
        assert set(schema.get("required", [])) == required, name


async def test_output_schemas_have_the_seed_shapes(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    expected = {
        "createPost": {"id", "text", "edit_history_tweet_ids"},
        "deletePost": {"deleted"},
        "likePost": {"liked"},
        "repostPost": {"id", "retweeted"},
        "sendDirectMessage": {"dm_conversation_id", "dm_event_id"},
    }
    for name, fields in expected.items():
        schema = tools[name].output_schema
        data_ref = schema["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
        assert set(schema["$defs"][data_ref]["properties"]) == fields, name


async def test_annotations_mark_delete_destructive_engagement_idempotent_and_reads_read_only(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name, tool in tools.items():
        a = tool.annotations
        assert a.open_world_hint is True, name
        assert a.read_only_hint is (name == "getNewPosts"), name
        assert a.destructive_hint is (name == "deletePost"), name
        assert a.idempotent_hint is (name in ("likePost", "repostPost", "getNewPosts")), name
        assert tool.title and len(tool.description) > 40, name


async def test_server_says_it_is_on_the_sandbox(client):
    assert "SANDBOX" in (client.instructions or "")


async def test_create_post_with_image_appears_in_the_sandbox(client, admin):
    result = await client.call_tool("createPost", {"text": "hello from a test", "media": [image()]})
    assert result.is_error is False
    data = result.structured_content["data"]
    assert data["text"].startswith("hello from a test")  # X appends a t.co link for the media
    assert data["edit_history_tweet_ids"] == [data["id"]]
    assert "sandbox" in text_of(result)
    posts = {p["id"]: p for p in admin.state()["posts"]}
    assert posts[data["id"]]["author_id"] == "1700000000000000001"
    assert len(posts[data["id"]]["media_keys"]) == 1
    assert admin.calls()["POST /2/media/upload"] == 1


def on_enterprise(admin) -> None:
    """Likes need an Enterprise plan since 2026-04-20; the sandbox plays pay-per-use unless told."""
    admin.http.post("/plan", json={"plan": "enterprise"}).raise_for_status()


async def test_like_repost_dm_and_delete_act_on_the_sandbox(client, admin):
    on_enterprise(admin)
    alice_post = admin.post_as("alice", "a post to engage with")["data"]["id"]

    liked = await client.call_tool("likePost", {"tweet_id": alice_post})
    assert liked.structured_content == {"data": {"liked": True}}
    reposted = await client.call_tool("repostPost", {"tweet_id": alice_post})
    assert reposted.structured_content == {"data": {"id": alice_post, "retweeted": True}}
    sent = await client.call_tool("sendDirectMessage", {"username": "@alice", "text": "hi", "media": [image()]})
    assert sent.is_error is False
    assert set(sent.structured_content["data"]) == {"dm_conversation_id", "dm_event_id"}

    own = (await client.call_tool("createPost", {"text": "to be deleted"})).structured_content["data"]["id"]
    deleted = await client.call_tool("deletePost", {"id": own})
    assert deleted.structured_content == {"data": {"deleted": True}}

    state = admin.state()
    assert {"user_id": "1700000000000000001", "tweet_id": alice_post}.items() <= state["likes"][0].items()
    assert state["retweets"][0]["tweet_id"] == alice_post
    assert state["dms"][-1]["text"] == "hi" and state["dms"][-1]["recipient_id"] == "1700000000000000002"
    assert len(state["dms"][-1]["attachments"]) == 1
    assert next(p for p in state["posts"] if p["id"] == own)["deleted"] is True
    # The authenticated user's id is looked up once and cached.
    assert admin.calls()["GET /2/users/me"] == 1


INVALID_CALLS = [
    ("createPost", {}, "needs `text`, `media`"),
    ("createPost", {"text": ""}, "needs `text`, `media`"),
    ("createPost", {"text": "a" * 281}, "281 weighted characters"),
    ("createPost", {"text": "界" * 141}, "282 weighted characters"),
    ("createPost", {"media": [image()] * 5}, "at most 4"),
    ("createPost", {"media": [{"url": "data:text/plain;base64,aGVsbG8="}]}, "not a supported image"),
    ("createPost", {"media": [{"url": "file:///etc/passwd"}]}, "outside the allowed media directories"),
    (
        "createPost",
        {"media": [{"url": "http://169.254.169.254/latest/meta-data"}]},
        "link-local address 169.254.169.254",
    ),
    ("deletePost", {"id": "abc"}, "`id` must be a post id"),
    ("deletePost", {"id": "12345678901234567890"}, "1 to 19 digits"),
    ("likePost", {"tweet_id": "1 OR 1=1"}, "`tweet_id` must be a post id"),
    ("repostPost", {"tweet_id": ""}, "`tweet_id` must be a post id"),
    ("sendDirectMessage", {"username": "not a name", "text": "hi"}, "`username` must be an X username"),
    ("sendDirectMessage", {"username": "a" * 16, "text": "hi"}, "1 to 15"),
    ("sendDirectMessage", {"username": "alice", "text": ""}, "non-empty `text`"),
    ("sendDirectMessage", {"username": "alice", "text": "hi", "media": [image(), image(OTHER_PNG_URI)]}, "at most 1"),
]


@pytest.mark.parametrize(("tool", "arguments", "message"), INVALID_CALLS)
async def test_invalid_input_is_an_error_result_and_never_reaches_x(client, admin, tool, arguments, message):
    result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    assert message in text_of(result)
    assert "Traceback" not in text_of(result)
    assert admin.x_calls() == 0


async def test_wrong_argument_type_is_an_error_result(client, admin):
    result = await client.call_tool("deletePost", {"id": 123})
    assert result.is_error is True
    assert text_of(result) == (
        "deletePost got invalid arguments: `id`: Input should be a valid string. "
        "Check the tool's input schema and call again."
    )
    missing = await client.call_tool("sendDirectMessage", {"text": ["not", "a", "string"]})
    assert "`username` is required" in text_of(missing) and "`text`: Input should be a valid string" in text_of(missing)
    assert admin.x_calls() == 0


async def test_duplicate_post_says_the_post_already_exists(client, admin):
    first = await client.call_tool("createPost", {"text": "say it once"})
    assert first.is_error is False
    second = await client.call_tool("createPost", {"text": "say it once"})
    assert second.is_error is True
    assert "already has a post with exactly this text" in text_of(second)
    assert sum(1 for p in admin.state()["posts"] if p["text"] == "say it once") == 1


async def test_dm_to_user_who_refuses_dms_names_the_user(client):
    result = await client.call_tool("sendDirectMessage", {"username": "carol", "text": "hello"})
    assert result.is_error is True
    assert "@carol does not accept direct messages" in text_of(result)


async def test_dm_to_unknown_user_says_there_is_no_such_user(client, admin):
    result = await client.call_tool("sendDirectMessage", {"username": "nobody_here", "text": "hello"})
    assert result.is_error is True
    assert "There is no X user @nobody_here" in text_of(result)
    assert "POST /2/dm_conversations/with/{participant_id}/messages" not in admin.calls()


async def test_spent_rate_limit_says_when_to_retry(client, admin):
    on_enterprise(admin)
    admin.rate_limit("POST /2/users/{id}/likes", 1)
    post = admin.post_as("bob", "like me twice")["data"]["id"]
    assert (await client.call_tool("likePost", {"tweet_id": post})).is_error is False
    result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is True
    assert "rate limit" in text_of(result) and "retry after" in text_of(result) and "UTC" in text_of(result)


async def test_likes_on_a_self_serve_plan_say_they_need_enterprise(client, admin):
    post = admin.post_as("bob", "like me on pay-per-use")["data"]["id"]
    result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is True
    assert "Enterprise" in text_of(result) and "2026-04-20" in text_of(result)
    assert "permissions" not in text_of(result)
    assert admin.state()["likes"] == []


async def test_the_like_tool_says_it_needs_an_enterprise_plan(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert "Enterprise" in tools["likePost"].description


async def test_server_error_from_x_is_reported_as_retryable(client, admin, runtime):
    async def no_wait(_seconds: float) -> None:
        return None

    runtime.client.retry = RetryPolicy(sleep=no_wait)
    admin.fault("POST /2/users/{id}/retweets", "status", status=503, times=3)  # outlasts the retries
    post = admin.post_as("bob", "repost me")["data"]["id"]
    result = await client.call_tool("repostPost", {"tweet_id": post})
    assert result.is_error is True
    assert "server error (503)" in text_of(result)
    assert admin.state()["retweets"] == []


async def test_deleting_a_missing_post_is_a_clear_error(client):
    result = await client.call_tool("deletePost", {"id": "1"})
    assert result.is_error is True
    assert "deletePost failed" in text_of(result)


async def test_local_image_under_a_media_root_is_attached(client, admin, runtime):
    path = runtime.media.roots[0] / "dot.png"
    path.write_bytes(PNG)
    result = await client.call_tool("createPost", {"text": "from disk", "media": [{"url": str(path)}]})
    assert result.is_error is False, text_of(result)
    result = await client.call_tool("createPost", {"text": "from a file URL", "media": [{"url": path.as_uri()}]})
    assert result.is_error is False, text_of(result)
    assert admin.calls()["POST /2/media/upload"] == 2


async def test_a_large_image_is_uploaded_in_chunks_with_progress_notifications(client, admin):
    big_png = PNG + b"\x00" * (2 * 1024 * 1024 + 512 * 1024)  # 2.5 MB: over the simple-upload threshold
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    entry = {"url": "data:image/png;base64," + base64.b64encode(big_png).decode(), "name": "big.png"}
    result = await client.call_tool(
        "createPost", {"text": "a big one", "media": [entry]}, progress_callback=on_progress
    )
    assert result.is_error is False, text_of(result)
    calls = admin.calls()
    assert calls["POST /2/media/upload/initialize"] == 1 and calls["POST /2/media/upload/{id}/append"] == 3
    assert calls["POST /2/media/upload/{id}/finalize"] == 1 and "POST /2/media/upload" not in calls
    assert len(seen) >= 3
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)  # never goes backwards
    assert seen[-1][0] == seen[-1][1]  # ends complete
