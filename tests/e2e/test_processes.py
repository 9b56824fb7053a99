"""`xcourier` as real processes: serve over stdio and streamable HTTP, sandbox, demo, and a Node client."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import ResourceUpdatedNotification

from .conftest import XCOURIER, child_env, wait_for_line

pytestmark = pytest.mark.slow

NODE_CLIENT_DIR = Path(__file__).parent / "node"
BOB = "x://users/bob/posts"
SEED_TOOLS = {"createPost", "deletePost", "likePost", "repostPost", "sendDirectMessage", "getNewPosts"}


async def _exercise(client: Client) -> None:
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert tools == SEED_TOOLS
    created = await client.call_tool("createPost", {"text": "hello over a real transport"})
    assert created.is_error is False
    post_id = created.structured_content["data"]["id"]
    # `serve --sandbox` plays pay-per-use, the plan a new X developer gets: no likes since 2026-04-20.
    liked = await client.call_tool("likePost", {"tweet_id": post_id})
    assert liked.is_error is True and "Enterprise" in liked.content[0].text
    reposted = await client.call_tool("repostPost", {"tweet_id": post_id})
    assert reposted.structured_content == {"data": {"id": post_id, "retweeted": True}}
    bad = await client.call_tool("deletePost", {"id": "not-an-id"})
    assert bad.is_error is True and "`id` must be a post id" in bad.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_serve_on_stdio_answers_both_protocol_generations(mode):
    params = StdioServerParameters(
        command=XCOURIER[0], args=[*XCOURIER[1:], "serve", "--sandbox"], env={"XCOURIER_LOG_LEVEL": "INFO"}
    )
    async with Client(params, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        await _exercise(client)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_serve_over_streamable_http_answers_both_protocol_generations(http_server, mode):
    url, _ = http_server
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
    async with Client(url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        await _exercise(client)


def test_http_server_refuses_a_foreign_origin(http_server):
    url, _ = http_server
    response = httpx.post(
        url,
        headers={"Origin": "http://evil.example", "Content-Type": "application/json", "Accept": "application/json"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 403


def test_stdio_stdout_carries_only_protocol_messages():
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    completed = subprocess.run(
        [*XCOURIER, "serve", "--sandbox"],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(XCOURIER_LOG_LEVEL="DEBUG"),
    )
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert lines, completed.stderr
    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert "sandbox" in completed.stderr  # the logs went to stderr


def test_serve_without_a_login_explains_how_to_get_one():
    completed = subprocess.run(
        [*XCOURIER, "serve"], capture_output=True, text=True, timeout=60, env=child_env(), stdin=subprocess.DEVNULL
    )
    assert completed.returncode == 2
    assert "XCOURIER_ACCESS_TOKEN" in completed.stderr and "--sandbox" in completed.stderr
    assert completed.stdout == ""


def test_serve_refuses_a_non_loopback_http_bind():
    completed = subprocess.run(
        [*XCOURIER, "serve", "--sandbox", "--transport", "http", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert completed.returncode == 2
    assert "--auth x" in completed.stderr and "--insecure-no-auth" in completed.stderr


def test_sandbox_command_prints_its_url_and_a_working_token():
    process = subprocess.Popen(
        [*XCOURIER, "sandbox"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env()
    )
    try:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in iter(process.stdout.readline, ""):
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        announced = json.loads(wait_for_line(lines, "base_url", []))
        assert announced["username"] == "xcourier_demo"
        assert announced["base_url"].startswith("http://127.0.0.1:")
        me = httpx.get(
            announced["base_url"] + "/2/users/me", headers={"Authorization": f"Bearer {announced['access_token']}"}
        )
        assert me.json()["data"]["username"] == "xcourier_demo"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_demo_runs_every_tool_and_exits_zero():
    completed = subprocess.run([*XCOURIER, "demo"], capture_output=True, text=True, timeout=120, env=child_env())
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    for tool in SEED_TOOLS:
        assert f"-> {tool} " in out
    # Counted as the README counts them: five tools act on X, getNewPosts reads.
    assert "five tools that act on X, and getNewPosts (read-only):" in out
    assert "6 tools" not in out
    # The instructions are wrapped for a terminal, not one 700-character line.
    assert out.count("instructions: ") == 1 and max(len(line) for line in out.splitlines()) <= 160
    assert "Subscribing to x://users/bob/posts" in out
    assert "resource updated: x://users/bob/posts" in out
    assert "the newest: 'Hello subscribers, bob here" in out
    assert "Demo finished" in out
    next_steps = out[out.index("Next steps:") :]
    assert "xcourier connect vscode --sandbox" in next_steps and "xcourier auth login" in next_steps
    assert "Traceback" not in completed.stderr and "Warning" not in completed.stderr


def _node_client_ready() -> bool:
    return shutil.which("node") is not None and (NODE_CLIENT_DIR / "node_modules" / "@modelcontextprotocol").is_dir()


@pytest.mark.skipif(
    not _node_client_ready() and not os.environ.get("CI"),
    reason="needs node and `npm install` in tests/e2e/node (.ci/run does both)",
)
def test_typescript_sdk_client_sees_the_seed_contract():
    calls = [
        ["createPost", {"text": "hello from TypeScript"}],
        ["sendDirectMessage", {"username": "bob", "text": "hi"}],
    ]
    completed = subprocess.run(
        ["node", str(NODE_CLIENT_DIR / "call_tools.mjs"), XCOURIER[0], *XCOURIER[1:], "serve", "--sandbox"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(TOOL_CALLS=json.dumps(calls), XCOURIER_LOG_LEVEL="WARNING"),
        cwd=NODE_CLIENT_DIR,
    )
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    tools = {tool["name"]: tool for tool in seen["tools"]}
    assert set(tools) == SEED_TOOLS
    assert set(tools["sendDirectMessage"]["inputSchema"]["properties"]) == {"username", "text", "media"}
    assert set(tools["createPost"]["inputSchema"]["properties"]) == {"text", "media"}
    assert tools["deletePost"]["inputSchema"]["required"] == ["id"]
    assert tools["likePost"]["inputSchema"]["required"] == ["tweet_id"]
    created, dm = (call["result"] for call in seen["calls"])
    assert set(created["structuredContent"]["data"]) == {"id", "text", "edit_history_tweet_ids"}
    assert set(dm["structuredContent"]["data"]) == {"dm_conversation_id", "dm_event_id"}
    assert not created.get("isError") and not dm.get("isError")


@pytest.mark.anyio
async def test_mcp_json_sandbox_entry_starts_a_working_server():
    config = json.loads((Path(__file__).parents[2] / "mcp.json").read_text())
    entry = config["servers"]["xcourier-sandbox"]
    assert entry["type"] == "stdio" and entry["command"] == "xcourier"
    # The console script installed next to the interpreter running the tests.
    command = shutil.which(entry["command"], path=str(Path(XCOURIER[0]).parent))
    assert command is not None, "the xcourier console script is not installed"
    async with Client(StdioServerParameters(command=command, args=entry["args"]), mode="legacy") as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == SEED_TOOLS


def _chatty(*extra: str) -> list[str]:
    return [*XCOURIER[1:], "serve", "--sandbox", "--sandbox-chatter", "0.2", "--poll-interval", "0.2", *extra]


async def _legacy_update(client: Client, updates: list[str], arrived: anyio.Event) -> None:
    await client.subscribe_resource(BOB)
    with anyio.fail_after(60):
        await arrived.wait()
    assert updates[0] == BOB
    feed = json.loads((await client.read_resource(BOB)).contents[0].text)
    assert feed["posts"][0]["text"].startswith("bob's chatter #")


async def _listen_update(client: Client) -> None:
    async with client.listen(resource_subscriptions=[BOB]) as subscription:
        with anyio.fail_after(60):
            event = await anext(aiter(subscription))
    assert event.uri == BOB
    feed = json.loads((await client.read_resource(BOB)).contents[0].text)
    assert feed["posts"][0]["text"].startswith("bob's chatter #")


def _update_collector() -> tuple[list[str], anyio.Event, object]:
    updates: list[str] = []
    arrived = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            arrived.set()

    return updates, arrived, on_message


@pytest.mark.anyio
async def test_both_generations_are_notified_of_new_posts_over_stdio():
    params = StdioServerParameters(command=XCOURIER[0], args=_chatty(), env={"XCOURIER_LOG_LEVEL": "WARNING"})
    updates, arrived, on_message = _update_collector()
    async with Client(params, mode="legacy", message_handler=on_message) as client:
        await _legacy_update(client, updates, arrived)
    async with Client(params) as client:
        assert client.protocol_version == "2026-07-28"
        await _listen_update(client)


@pytest.mark.anyio
async def test_both_generations_are_notified_of_new_posts_over_streamable_http(chatty_http_server):
    updates, arrived, on_message = _update_collector()
    async with Client(chatty_http_server, mode="legacy", message_handler=on_message) as client:
        await _legacy_update(client, updates, arrived)
    async with Client(chatty_http_server) as client:
        assert client.protocol_version == "2026-07-28"
        await _listen_update(client)
