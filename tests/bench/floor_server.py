"""The floor of the SDK: a minimal MCPServer whose tools make the same X call as xcourier's,
with no validation, no guards, no audit, no result shaping.

    python tests/bench/floor_server.py [--transport stdio|http]

Environment: FLOOR_API_BASE (the sandbox URL), FLOOR_TOKEN (a bearer token). Over HTTP it binds
127.0.0.1 on a free port and prints "serving MCP over streamable HTTP at URL" on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

import anyio
import httpx
from mcp.server.mcpserver import MCPServer

API = os.environ.get("FLOOR_API_BASE", "http://127.0.0.1:9")
TOKEN = os.environ.get("FLOOR_TOKEN", "none")

server = MCPServer(name="floor")
# Like xcourier (cli.configure_logging): no INFO line per X request.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)
_http: httpx.AsyncClient | None = None
_me: str | None = None


def http() -> httpx.AsyncClient:
    global _http
    if _http is None:  # one pooled client, like xcourier's XClient
        _http = httpx.AsyncClient(base_url=API, headers={"Authorization": f"Bearer {TOKEN}"})
    return _http


async def me() -> str:
    global _me
    if _me is None:  # cached after the first call, like xcourier's UserDirectory.me()
        _me = (await http().get("/2/users/me")).json()["data"]["id"]
    return _me


def answer(response: httpx.Response) -> dict[str, Any]:
    # An X error is a tool error, as in xcourier: otherwise a refused call would count as a success here
    # and be compared with xcourier's refusal as if both had worked.
    response.raise_for_status()
    return response.json()


@server.tool(name="createPost", description="Create a post.")
async def create_post(text: str) -> dict[str, Any]:
    return answer(await http().post("/2/tweets", json={"text": text}))


@server.tool(name="likePost", description="Like a post.")
async def like_post(tweet_id: str) -> dict[str, Any]:
    return answer(await http().post(f"/2/users/{await me()}/likes", json={"tweet_id": tweet_id}))


async def serve_http() -> None:
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")
    # Bound here (port 0, announced) as xcourier does, but with proto IPPROTO_TCP as the SDK's own
    # run_streamable_http_async gets from getaddrinfo: asyncio then sets TCP_NODELAY on every
    # accepted connection (base_events._set_nodelay checks sock.proto). FLOOR_PROTO0=1 reproduces
    # a socket made with proto 0, which loses TCP_NODELAY (Nagle + delayed ACK: ~40 ms per call).
    proto = 0 if os.environ.get("FLOOR_PROTO0") else socket.IPPROTO_TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    print(f"floor: serving MCP over streamable HTTP at http://127.0.0.1:{port}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    if parser.parse_args().transport == "stdio":
        anyio.run(server.run_stdio_async)
    else:
        anyio.run(serve_http)
