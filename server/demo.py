"""`xcourier demo`: the whole product in one command, on the sandbox, through a real MCP client."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import anyio
import httpx

# A 1x1 PNG, small enough to inline as a data: URI.
DEMO_IMAGE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _show_result(result: Any) -> dict[str, Any]:
    marker = "ERROR" if result.is_error else "ok"
    _say(f"  <- {marker}: {json.dumps(result.structured_content) if result.structured_content else ''}")
    for block in result.content:
        # The last line repeats the structured result as JSON for clients that only read text.
        for line in getattr(block, "text", "").splitlines()[:2]:
            _say(f"     | {line}")
    if result.is_error:
        raise RuntimeError("a demo call failed")
    return result.structured_content or {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _set_plan(admin: httpx.AsyncClient, plan: str) -> str:
    """Through the sandbox's admin API, as a test would; answers the plan now in force."""
    response = await admin.post("/_sandbox/plan", json={"plan": plan})
    response.raise_for_status()
    return str(response.json()["plan"])


async def _demo() -> None:
    from mcp import Client, StdioServerParameters

    port = _free_port()
    args = ["serve", "--sandbox", "--sandbox-plan", "enterprise", "--sandbox-port", str(port)]
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "xcourier.server", *args], env={"XCOURIER_LOG_LEVEL": "WARNING"}
    )
    _say(f"$ xcourier {' '.join(args)}   (spawned on stdio; an MCP client connects to it)")
    async with Client(params, mode="legacy") as client, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as admin:
        info = client.server_info
        _say(f"connected to {info.name if info else '?'} {info.version if info else ''}")
        _say(f"instructions: {client.instructions}")
        # Set over the admin API as well as by the flag: the demo switches plans later on, and
        # reading the plan back shows which one the sandbox really plays.
        plan = await _set_plan(admin, "enterprise")
        _say(f"sandbox plan: {plan} (X's Enterprise plan keeps likes; see below for pay-per-use)")
        _say()
        tools = await client.list_tools()
        _say(f"{len(tools.tools)} tools:")
        for tool in tools.tools:
            params_shown = ", ".join(
                name + ("" if name in tool.input_schema.get("required", []) else "?")
                for name in tool.input_schema.get("properties", {})
            )
            _say(f"  {tool.name}({params_shown}) - {tool.title}")
        _say()

        async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            shown = {k: (v if k != "media" else f"[{len(v)} image(s)]") for k, v in arguments.items()}
            _say(f"-> {name} {json.dumps(shown)}")
            return _show_result(await client.call_tool(name, arguments))

        created = await call(
            "createPost",
            {
                "text": "Hello from xcourier, an MCP server for X (sandbox demo).",
                "media": [{"url": DEMO_IMAGE, "name": "dot.png", "mimeType": "image/png", "extension": "png"}],
            },
        )
        post_id = created["data"]["id"]
        await call("likePost", {"tweet_id": post_id})
        await call("repostPost", {"tweet_id": post_id})
        await call("sendDirectMessage", {"username": "@alice", "text": f"Have a look at my post {post_id}"})
        await call("deletePost", {"id": post_id})
        alices = await call("getNewPosts", {"username": "alice"})
        _say()
        plan = await _set_plan(admin, "pay-per-use")
        _say(f"The same likePost on the {plan} plan, what a new X developer gets (X removed likes from")
        _say("self-serve plans on 2026-04-20):")
        alice_post = _first_post_id(alices)
        refused = await client.call_tool("likePost", {"tweet_id": alice_post})
        _say(f"-> likePost {json.dumps({'tweet_id': alice_post})}")
        _say(f"  <- {'isError' if refused.is_error else 'ok (unexpected)'}: {_text_of(refused)}")
        _say()
        _say("Bad input comes back as a clear error, and nothing reaches X:")
        result = await client.call_tool("likePost", {"tweet_id": "not-a-number"})
        _say(f"-> likePost {{'tweet_id': 'not-a-number'}}\n  <- isError: {_text_of(result)}")
    _say()
    _say("Demo finished: every tool ran on the sandbox (enterprise plan), and pay-per-use refused the like.")


def _first_post_id(result: dict[str, Any]) -> str:
    posts = result.get("data") or result.get("posts") or []
    if not posts:
        raise RuntimeError("getNewPosts returned no post to like")
    return str(posts[0]["id"])


def _text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content).splitlines()[0]


def run_demo() -> int:
    try:
        anyio.run(_demo)
    except Exception as exc:
        print(f"xcourier demo failed: {exc}", file=sys.stderr)
        return 1
    return 0
