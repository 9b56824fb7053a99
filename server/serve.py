"""Run the MCP server on stdio or streamable HTTP."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from contextlib import AbstractAsyncContextManager
from typing import Any

from .app import build_server
from .runtime import Runtime
from .settings import Settings

logger = logging.getLogger("xcourier")


async def serve(settings: Settings) -> None:
    if settings.auth == "x":
        await _reach_store(settings)
    async with open_runtime(settings) as runtime:
        if not runtime.on_sandbox:
            runtime.api_on_sandbox = await is_xcourier_sandbox(_api_base_url(runtime, settings))
        if settings.transport == "stdio":
            await build_server(runtime).run_stdio_async()
        else:
            await _serve_http(runtime, settings)


def open_runtime(settings: Settings) -> AbstractAsyncContextManager[Runtime]:
    """The composition root's choice: hosted mode (many signed-in users) or a local server (one account).

    Made here, so the runtime never imports hosted code, and hosted code is imported in hosted mode only.
    """
    if settings.auth == "x":
        from .hosted.runtime import open_hosted

        return open_hosted(settings)
    return Runtime.open(settings)


def _api_base_url(runtime: Runtime, settings: Settings) -> str:
    return runtime.home.client.base_url if runtime.home is not None else settings.api_base_url


async def is_xcourier_sandbox(api_base_url: str) -> bool:
    """Whether the X API at `api_base_url` is an `xcourier sandbox` (a login made against it, or its token in
    XCOURIER_ACCESS_TOKEN): then results say nothing reaches x.com, as with `serve --sandbox`.

    Asked only of plain-http loopback URLs, which X never is (X serves https only, and --api-base-url
    allows http to loopback only), so X itself is never probed. The sandbox identifies itself by its admin
    API: `GET /_sandbox/calls` answers {"calls": {...}}; X has no such path. Anything else counts as X:
    a wrong "not X" would tell the agent its actions are harmless.
    """
    import json
    from urllib.parse import urlsplit

    import anyio

    from .settings import is_loopback_host

    parts = urlsplit(api_base_url)
    if parts.scheme != "http" or not is_loopback_host(parts.hostname or ""):
        return False
    # One HTTP/1.0 request over a plain socket: an HTTP client library would be imported (httpcore, h11:
    # ~15 ms) before the server answers its first request, for one loopback GET.
    path = parts.path.rstrip("/") + "/_sandbox/calls"
    request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nAccept: application/json\r\n\r\n".encode()
    answer = b""
    try:
        with anyio.fail_after(2.0):
            async with await anyio.connect_tcp(parts.hostname or "", parts.port or 80) as stream:
                await stream.send(request)
                while len(answer) <= _PROBE_LIMIT:
                    try:
                        answer += await stream.receive()
                    except anyio.EndOfStream:
                        break
        if len(answer) > _PROBE_LIMIT:
            return False
        head, _, body = answer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or status[1] != b"200":
            return False
        return isinstance(json.loads(body).get("calls"), dict)
    except (OSError, TimeoutError, anyio.BrokenResourceError, ValueError, AttributeError):
        return False


# The sandbox's answer is a small JSON object; anything longer isn't one.
_PROBE_LIMIT = 1 << 20


async def _reach_store(settings: Settings) -> None:
    """Hosted mode keeps everything in its store: one that can't be reached at start ends the process with
    one line (StoreUnavailableError) rather than a server that fails every sign-in. Once running, the
    server rides out an outage, retrying."""
    from .runtime import open_configured_store

    store = open_configured_store(settings)
    try:
        await store.get_record("probe", "start")  # one read: creates nothing
    finally:
        await store.aclose()


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
        if public_url != bound:
            # Its own address first: several instances behind a balancer share one --public-url, and each
            # must say where it itself listens (the line below), not the balancer's address as its own.
            print(
                f"xcourier: clients reach this server through its --public-url, {public_url}/mcp",
                file=sys.stderr,
                flush=True,
            )
    else:
        from .hosted.http import limit_sessions

        server = build_server(runtime)
        app = server.streamable_http_app(transport_security=local_transport_security(host))
        limit_sessions(app, server)  # per client address: no sign-in here
    # log_config=None: uvicorn's records go through xcourier's handler (one line for an expected failure),
    # not through a handler of its own that prints every traceback.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", log_config=None)
    # A line tests and supervisors can wait for; on stderr like every log.
    print(f"xcourier: serving MCP over streamable HTTP at {bound}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def local_transport_security(bound_host: str) -> Any:
    """DNS-rebinding protection for a server bound to a loopback address, decided from the address.

    The SDK turns its protection on only for the spellings "127.0.0.1", "localhost" and "::1", so
    `--host 127.0.0.2` (all of 127/8 is loopback) or `--host 0:0:0:0:0:0:0:1` answered any Host,
    and a web page on attacker.example, resolved to 127.0.0.2 by its own DNS, could drive the server.
    Here the bound address (as the kernel reports it, so in one spelling) is parsed; on loopback only
    loopback names are accepted as Host and Origin. A server bound elsewhere (--insecure-no-auth, a
    trusted network) is reached under names we can't know, so there the SDK's default (off) stays.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    try:
        address = ipaddress.ip_address(bound_host)
    except ValueError:
        return None  # uvicorn bound a name, not an address: not reached here (we bind the socket ourselves)
    if not address.is_loopback:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    own = f"[{address.compressed}]" if address.version == 6 else address.compressed
    names = list(dict.fromkeys((*_LOOPBACK_NAMES, own)))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:*" for name in names],
        allowed_origins=[f"http://{name}:*" for name in names],
    )
