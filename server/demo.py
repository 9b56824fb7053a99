"""`xcourier demo`: the whole product in one command, on the sandbox, through a real MCP client."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from typing import Any

import anyio
import httpx

# A 1x1 PNG, small enough to inline as a data: URI.
DEMO_IMAGE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


BOB = "x://users/bob/posts"
# Bounds, not delays: each wait ends as soon as what it waits for happens (the update comes within one
# poll interval, POLL_INTERVAL).
POLL_INTERVAL = 0.5
UPDATE_TIMEOUT = 30.0
WIDTH = 100
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _say(text: str = "") -> None:
    print(text, flush=True)


def _wrapped(label: str, text: str) -> str:
    return textwrap.fill(text, width=WIDTH, initial_indent=label, subsequent_indent=" " * 2)


def _count(n: int) -> str:
    return _NUMBERS[n] if n < len(_NUMBERS) else str(n)


def _signature(tool: Any) -> str:
    required = tool.input_schema.get("required", [])
    shown = ", ".join(name + ("" if name in required else "?") for name in tool.input_schema.get("properties", {}))
    return f"{tool.name}({shown}) - {tool.title}"


def _show_tools(tools: list[Any]) -> None:
    """The tools as the README counts them: those that act on X, then the read-only ones (getNewPosts)."""
    reads = [t for t in tools if t.annotations is not None and t.annotations.read_only_hint]
    actions = [t for t in tools if t not in reads]
    read_names = " and ".join(t.name for t in reads)
    _say(f"{_count(len(actions))} tools that act on X" + (f", and {read_names} (read-only):" if reads else ":"))
    for tool in [*actions, *reads]:
        _say(f"  {_signature(tool)}")


def _show_result(result: Any) -> dict[str, Any]:
    marker = "ERROR" if result.is_error else "ok"
    shown = json.dumps(result.structured_content, ensure_ascii=False) if result.structured_content else ""
    _say("  <- " + textwrap.shorten(f"{marker}: {shown}", width=WIDTH + 16, placeholder=" ..."))
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
    args += ["--poll-interval", str(POLL_INTERVAL)]  # newPost: see bob's post within half a second
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "xcourier.server", *args], env={"XCOURIER_LOG_LEVEL": "WARNING"}
    )
    _say(f"$ xcourier {' '.join(args)}")
    _say("  (spawned on stdio; an MCP client connects to it)")
    async with (
        Client(params) as client,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as admin,
    ):
        info = client.server_info
        version = info.version if info else ""
        _say(f"connected to {info.name if info else '?'} {version} (MCP protocol {client.protocol_version})")
        _say(_wrapped("instructions: ", client.instructions or ""))
        # Set over the admin API as well as by the flag: the demo switches plans later on, and
        # reading the plan back shows which one the sandbox really plays.
        plan = await _set_plan(admin, "enterprise")
        _say(f"sandbox plan: {plan} (X's Enterprise plan keeps likes; see below for pay-per-use)")
        _say()
        _show_tools((await client.list_tools()).tools)
        _say()
        _say(f"Subscribing to {BOB} (the newPost resource): the client is told when bob posts.")
        async with client.listen(resource_subscriptions=[BOB]) as subscription:
            _say()
            alices = await _call_every_tool(client)
            _say()
            await _bob_posts(client, admin, subscription)
        _say()
        plan = await _set_plan(admin, "pay-per-use")
        _say(f"The same likePost on the {plan} plan, what a new X developer gets (X removed likes from")
        _say("self-serve plans on 2026-04-20):")
        alice_post = _first_post_id(alices)
        refused = await client.call_tool("likePost", {"tweet_id": alice_post})
        _say(f"-> likePost {json.dumps({'tweet_id': alice_post})}")
        _say(_wrapped("  <- ", f"{'isError' if refused.is_error else 'ok (unexpected)'}: {_text_of(refused)}"))
        _say()
        _say("Bad input comes back as a clear error, and nothing reaches X:")
        result = await client.call_tool("likePost", {"tweet_id": "not-a-number"})
        _say("-> likePost {'tweet_id': 'not-a-number'}")
        _say(_wrapped("  <- ", f"isError: {_text_of(result)}"))
    _say()
    _say("Demo finished: every tool ran on the sandbox (enterprise plan), bob's post reached the subscriber,")
    _say("and pay-per-use refused the like.")
    _say()
    _say("Next steps:")
    _say("  xcourier connect vscode --sandbox   add this sandbox server to VS Code (.vscode/mcp.json here);")
    _say("                                      also cursor, claude-desktop, claude-code")
    _say("  xcourier auth login                 log in to your own X account (README: Setting up the X app),")
    _say("                                      then `xcourier connect vscode` and `xcourier doctor`")


async def _call_every_tool(client: Any) -> dict[str, Any]:
    """Each tool once, on a post of our own; getNewPosts's answer (alice's posts) for later."""

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
    return await call("getNewPosts", {"username": "alice"})


async def _bob_posts(client: Any, admin: httpx.AsyncClient, subscription: Any) -> None:
    """bob posts through the sandbox's admin API (as if on x.com); the subscription tells the client."""
    text = "Hello subscribers, bob here (posted through the sandbox admin API)."
    _say("bob posts on X, through the sandbox's admin API (POST /_sandbox/posts):")
    _say(f"  {text!r}")
    (await admin.post("/_sandbox/posts", json={"username": "bob", "text": text})).raise_for_status()
    with anyio.fail_after(UPDATE_TIMEOUT):
        async for event in subscription:
            if str(getattr(event, "uri", "")) == BOB:
                break
        else:
            raise RuntimeError("the subscription ended before bob's post was announced")
    _say(f"  <- resource updated: {BOB} (on the subscriptions/listen stream)")
    contents = (await client.read_resource(BOB)).contents
    posts = json.loads(getattr(contents[0], "text", "{}")).get("posts", [])
    newest = posts[0]["text"] if posts else "?"
    _say(f"-> resources/read {BOB}")
    _say(f"  <- {len(posts)} post(s), the newest: {newest!r}")


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
