"""Run the MCP server on stdio or streamable HTTP."""

from __future__ import annotations

import logging
import socket
import sys

from .app import build_server
from .runtime import Runtime
from .settings import Settings

logger = logging.getLogger("xcourier")


async def serve(settings: Settings) -> None:
    async with Runtime.open(settings) as runtime:
        if settings.transport == "stdio":
            await build_server(runtime).run_stdio_async()
        else:
            await _serve_http(runtime, settings)


async def _serve_http(runtime: Runtime, settings: Settings) -> None:
    import uvicorn

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for such sockets,
    # and without it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Bound here rather than by uvicorn so that --port 0 works and the real address can be announced.
    sock.bind((settings.host, settings.port))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    bound = f"http://{shown_host}:{port}"
    if settings.auth == "x":
        from .hosted.http import hosted_app, make_bridge

        public_url = settings.public_url or bound
        bridge = make_bridge(runtime, settings, public_url)
        assert runtime.store is not None
        server = build_server(runtime, hosted=bridge, public_url=public_url)
        app = hosted_app(server, bridge, runtime.store, public_url)
        url = public_url + "/mcp"
    else:
        app = build_server(runtime).streamable_http_app(host=settings.host)
        url = bound + "/mcp"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    # A line tests and supervisors can wait for; on stderr like every log.
    print(f"xcourier: serving MCP over streamable HTTP at {url}", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])
