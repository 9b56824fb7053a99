"""`xcourier demo`: the whole product in one command, on the sandbox, through a real MCP client."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

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


async def _demo() -> None:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "xcourier.server", "serve", "--sandbox"],
        env={"XCOURIER_LOG_LEVEL": "WARNING"},
    )
    _say("$ xcourier serve --sandbox   (spawned on stdio; an MCP client connects to it)")
    async with Client(params, mode="legacy") as client:
        info = client.server_info
        _say(f"connected to {info.name if info else '?'} {info.version if info else ''}")
        _say(f"instructions: {client.instructions}")
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
        await call("getNewPosts", {"username": "alice"})
        _say()
        _say("Bad input comes back as a clear error, and nothing reaches X:")
        result = await client.call_tool("likePost", {"tweet_id": "not-a-number"})
        _say(f"-> likePost {{'tweet_id': 'not-a-number'}}\n  <- isError: {result.content[0].text}")  # type: ignore[union-attr]
    _say()
    _say("Demo finished: every tool ran on the sandbox.")


def run_demo() -> int:
    try:
        anyio.run(_demo)
    except Exception as exc:
        print(f"xcourier demo failed: {exc}", file=sys.stderr)
        return 1
    return 0
