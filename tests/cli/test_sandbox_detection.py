"""Whether the X API a server acts on is an `xcourier sandbox`: asked of loopback http only, so X itself is
never probed, and anything but the sandbox's own answer counts as X."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from xcourier.server import serve
from xcourier.server.serve import is_xcourier_sandbox

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def answering(raw: bytes) -> AsyncIterator[str]:
    """A loopback server that answers every request with `raw` and closes: the base URL to probe."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def answer(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(raw)

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, answer)
        yield f"http://127.0.0.1:{port}"
        group.cancel_scope.cancel()


def http(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def test_the_sandbox_is_recognised_by_its_admin_api(sandbox):
    assert await is_xcourier_sandbox(sandbox.base_url)


async def test_x_itself_is_never_asked(monkeypatch: pytest.MonkeyPatch):
    async def no_connection(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("X was probed")

    monkeypatch.setattr(anyio, "connect_tcp", no_connection)
    assert not await is_xcourier_sandbox("https://api.x.com")
    assert not await is_xcourier_sandbox("https://127.0.0.1:8443")  # https: a tunnel to X, perhaps
    assert not await is_xcourier_sandbox("http://api.x.com")  # not loopback


async def test_the_sandboxs_own_answer_is_what_counts():
    async with answering(http("200 OK", json.dumps({"calls": {"GET /2/users/me": 1}}).encode())) as url:
        assert await is_xcourier_sandbox(url)


@pytest.mark.parametrize(
    "raw",
    [
        http("404 Not Found", b'{"title": "Not Found Error"}'),
        http("200 OK", b'{"data": {"id": "1"}}'),
        http("200 OK", b"<html>", "text/html"),
        b"not http at all",
        b"",
    ],
)
async def test_any_other_answer_on_loopback_counts_as_x(raw: bytes):
    async with answering(raw) as url:
        assert not await is_xcourier_sandbox(url)


async def test_an_endless_answer_is_cut_off_and_counts_as_x(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(serve, "_PROBE_LIMIT", 1024)
    async with answering(http("200 OK", b'{"calls": {' + b" " * 4096 + b"}}")) as url:
        assert not await is_xcourier_sandbox(url)


async def test_nothing_listening_counts_as_x():
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        assert not await is_xcourier_sandbox(f"http://127.0.0.1:{bound.getsockname()[1]}")
