"""No token value appears in any tool result, error text or log line, whatever goes wrong."""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading

import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.auth import oauth
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

from ..e2e.conftest import XCOURIER, child_env, wait_for_line
from .conftest import log_in

pytestmark = pytest.mark.anyio


def _texts(result) -> str:
    return "\n".join(block.text for block in result.content) + json.dumps(result.structured_content or {})


async def test_no_token_in_results_or_logs_through_success_errors_rotation_and_revocation(
    public_app, store, store_path, admin, sandbox, caplog
):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    tokens = await log_in(public_app, store)
    post = admin.post_as("alice", "hygiene")["data"]["id"]
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        calls = [
            ("createPost", {"text": "clean"}),
            ("createPost", {"text": "clean"}),  # duplicate: 403
            ("likePost", {"tweet_id": post}),
            ("repostPost", {"tweet_id": "not-an-id"}),
            ("sendDirectMessage", {"username": "carol", "text": "hi"}),  # refuses DMs: 403
            ("deletePost", {"id": "1"}),  # not found
        ]
        for name, arguments in calls:
            seen.append(_texts(await client.call_tool(name, arguments)))
        admin.http.post("/tokens/expire", json={}).raise_for_status()
        seen.append(_texts(await client.call_tool("likePost", {"tweet_id": post})))  # refresh + retry
        rotated = await store.load()
        await oauth.refresh(public_app, rotated.refresh_token)  # someone else spends it ...
        admin.http.post("/tokens/expire", json={}).raise_for_status()
        seen.append(_texts(await client.call_tool("likePost", {"tweet_id": post})))  # ... so this one fails
    assert "xcourier auth login" in seen[-1]

    minted = admin.http.post("/tokens", json={"username": "xcourier_demo"}).json()["access_token"]
    settings = Settings(access_token=minted, api_base_url=sandbox.base_url)
    async with Runtime.open(settings) as runtime, Client(build_server(runtime)) as client:
        admin.http.post("/tokens/expire", json={"access_token": minted}).raise_for_status()
        result = await client.call_tool("likePost", {"tweet_id": post})
        assert result.is_error is True
        seen.append(_texts(result))

    secrets = sandbox.sandbox.issued_secrets()
    assert {tokens.access_token, tokens.refresh_token, minted} <= secrets
    everything = "\n".join(seen) + caplog.text
    assert [s for s in secrets if s in everything] == []


@pytest.mark.slow
def test_a_stdio_server_at_debug_level_logs_no_token(public_app, store, store_path, admin, sandbox):
    import anyio

    anyio.run(log_in, public_app, store)
    admin.http.post("/tokens/expire", json={}).raise_for_status()
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "createPost", "arguments": {"text": "x"}},
        },
    ]
    process = subprocess.Popen(
        [*XCOURIER, "serve", "--store", str(store_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(XCOURIER_LOG_LEVEL="DEBUG"),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stdout: list[str] = []
    stderr: list[str] = []

    def pump(stream, sink: list[str], into: queue.Queue[str | None] | None) -> None:
        for line in iter(stream.readline, ""):
            sink.append(line)
            if into is not None:
                into.put(line)

    pumps = [
        threading.Thread(target=pump, args=(process.stdout, stdout, lines), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, stderr, None), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    for message in messages:
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
    # Keep stdin open until the answer is in: EOF would cancel the call.
    answer = json.loads(wait_for_line(lines, '"id":2', []))
    process.stdin.close()
    process.wait(timeout=60)
    for thread in pumps:
        thread.join(timeout=60)
    logs = "".join(stderr)
    assert answer["result"]["isError"] is False, logs
    assert "refreshed the X login" in logs
    secrets = sandbox.sandbox.issued_secrets()
    assert [s for s in secrets if s in "".join(stdout) + logs] == []
