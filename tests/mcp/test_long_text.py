"""A long or pathological post is refused through MCP without stalling anyone else on the server.

Issue 12: a 3,000-character post held the event loop for ~40 s in twitter-text's URL regex, and every
other session waited. These run through real MCP client sessions on the sandbox; instead of timing
anything, they show that the super-linear path is never taken, and that while a post's text is being
counted off the loop, another session's request is answered.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client

from xcourier.tools import text as text_module

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import twitter_text

pytestmark = pytest.mark.anyio


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


@pytest.fixture
def no_super_linear_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_tweet and twitter-text's URL extractor fail the test if anything in the server calls them."""

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("twitter-text's super-linear path was called")

    for module in (twitter_text, twitter_text.parse_tweet, twitter_text.extract_urls):
        for name in ("parse_tweet", "extract_urls_with_indices", "extract_urls"):
            if callable(getattr(module, name, None)):
                monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        pytest.param("a" * 3000, "The post text is 3000 weighted characters; X allows 280", id="3000-plain"),
        pytest.param("a." * 1500, "The post text is 3000 weighted characters; X allows 280", id="a-dot-1500"),
        pytest.param("word. " * 200_000, "The post text is 1,200,000 characters long (UTF-16 code units)", id="1.2MB"),
    ],
)
async def test_a_pathological_post_is_refused_while_another_session_is_answered(
    mcp_server, admin, no_super_linear_path, text: str, refusal: str
):
    results: dict[str, Any] = {}
    async with Client(mcp_server) as poster, Client(mcp_server) as other:

        async def post() -> None:
            results["post"] = await poster.call_tool("createPost", {"text": text})

        async def list_tools() -> None:
            results["tools"] = await other.list_tools()

        async with anyio.create_task_group() as group:
            group.start_soon(post)
            group.start_soon(list_tools)

    assert results["post"].is_error is True
    assert refusal in text_of(results["post"])
    assert "createPost" in {tool.name for tool in results["tools"].tools}
    assert admin.calls().get("POST /2/tweets", 0) == 0


async def test_counting_non_ascii_text_leaves_the_event_loop_to_other_sessions(mcp_server, admin, monkeypatch):
    # The count of non-ASCII text (NFC, emoji tables) runs in a worker thread; hold it there until
    # another session has been answered, which can only happen if the loop is free meanwhile.
    counting = threading.Event()
    may_finish = threading.Event()
    count = text_module._full_weighted_length

    def held_count(text: str) -> int:
        counting.set()
        may_finish.wait()
        return count(text)

    monkeypatch.setattr(text_module, "_full_weighted_length", held_count)
    results: dict[str, Any] = {}
    async with Client(mcp_server) as poster, Client(mcp_server) as other:

        async def post() -> None:
            results["post"] = await poster.call_tool("createPost", {"text": "漢" * 3000})

        async with anyio.create_task_group() as group:
            group.start_soon(post)
            await anyio.to_thread.run_sync(counting.wait)
            try:
                results["tools"] = await other.list_tools()
            finally:
                may_finish.set()

    assert "createPost" in {tool.name for tool in results["tools"].tools}
    assert results["post"].is_error is True
    assert "The post text is 6000 weighted characters; X allows 280" in text_of(results["post"])
    assert admin.calls().get("POST /2/tweets", 0) == 0


async def test_a_post_with_two_cashtags_is_refused_before_reaching_x(mcp_server, admin):
    async with Client(mcp_server) as client:
        result = await client.call_tool("createPost", {"text": "Earnings: $TSLA and $AAPL"})
    assert result.is_error is True
    assert "2 cashtags ($TSLA, $AAPL)" in text_of(result) and "at most 1 cashtag per post" in text_of(result)
    assert admin.calls().get("POST /2/tweets", 0) == 0


async def test_a_full_length_post_with_a_long_link_still_goes_out(mcp_server, admin):
    text = "https://example.com/" + "x" * 300 + " " + "a" * 256
    async with Client(mcp_server) as client:
        result = await client.call_tool("createPost", {"text": text})
    assert result.is_error is False, text_of(result)
    assert admin.calls()["POST /2/tweets"] == 1
