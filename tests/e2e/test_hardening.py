"""A local `xcourier serve` attacked as a real process: through HTTP and the process table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
from mcp import Client

from .conftest import Running, _serve_http

pytestmark = pytest.mark.slow

TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@contextlib.contextmanager
def serving(*extra: str) -> Iterator[tuple[str, Running]]:
    yield from _serve_http(*extra)


@pytest.mark.parametrize(
    ("host", "own_name"),
    [("127.0.0.2", "127.0.0.2"), ("0:0:0:0:0:0:0:1", "[::1]"), ("::1", "[::1]"), ("127.0.0.1", "127.0.0.1")],
)
def test_dns_rebinding_is_refused_whatever_the_spelling_of_the_loopback_address(host: str, own_name: str):
    with serving("--host", host) as (url, _):
        port = url.rsplit(":", 1)[1].split("/", 1)[0]
        with httpx.Client(timeout=20, trust_env=False) as http:
            # A page on attacker.example whose DNS answers with the loopback address: its requests carry its name.
            rebound = http.post(url, json=TOOLS_LIST, headers={**HEADERS, "Host": f"attacker.example:{port}"})
            assert rebound.status_code == 421, rebound.text
            foreign = http.post(url, json=TOOLS_LIST, headers={**HEADERS, "Origin": "http://attacker.example"})
            assert foreign.status_code == 403, foreign.text
            # The server's own name, and the usual loopback names, still pass the Host check.
            for name in (own_name, "localhost"):
                answered = http.post(url, json=TOOLS_LIST, headers={**HEADERS, "Host": f"{name}:{port}"})
                assert answered.status_code not in (403, 421), (name, answered.status_code, answered.text)


# -- local media paths, through an MCP session ---------------------------------------------------------


def _text(result: object) -> str:
    return "\n".join(block.text for block in result.content)  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_local_media_paths_are_no_file_existence_oracle(mcp_server, runtime, tmp_path):
    existing = tmp_path / "present.png"
    existing.write_bytes(b"\x89PNG\r\n\x1a\n")
    async with Client(mcp_server) as client:
        answers = {}
        for path in (str(existing), str(tmp_path / "absent.png"), "/etc/passwd", "/root/.ssh/id_rsa"):
            result = await client.call_tool("createPost", {"text": "t", "media": [{"url": path, "name": "m"}]})
            assert result.is_error
            answers[path] = _text(result)
    assert len(set(answers.values())) == 1, answers  # the same words whether the file exists or not
    message = next(iter(answers.values()))
    assert "outside the allowed media directories" in message
    for root in runtime_media_roots(runtime):
        assert str(root) not in message  # the operator's layout is not the agent's business


def runtime_media_roots(runtime: object) -> tuple[object, ...]:
    return tuple(runtime.media.roots)  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_nul_byte_in_a_media_path_is_a_clear_error_with_an_audit_entry(mcp_server, runtime, caplog):
    root = runtime_media_roots(runtime)[0]
    async with Client(mcp_server) as client:
        result = await client.call_tool(
            "createPost", {"text": "nul", "media": [{"url": f"{root}/a\x00.png", "name": "m"}]}
        )
    assert result.is_error and "NUL byte" in _text(result)
    assert "Traceback" not in caplog.text
    entries = await runtime.audit.since(3600)
    assert [(entry.tool, entry.outcome) for entry in entries] == [("createPost", "error")]
    assert "NUL byte" in entries[0].detail


@pytest.mark.anyio
async def test_one_address_cannot_take_every_session_of_a_local_http_server():
    from xcourier.server.hosted.http import MAX_SESSIONS_PER_SOURCE

    from ..hosted.signin import post_mcp

    with serving() as (url, _running):
        opened = [await post_mcp(url) for _ in range(MAX_SESSIONS_PER_SOURCE + 2)]
        statuses = [response.status_code for response in opened]
        assert statuses == [200] * MAX_SESSIONS_PER_SOURCE + [429] * 2, statuses
        assert "Too many open MCP sessions" in opened[-1].json()["error"]["message"]
