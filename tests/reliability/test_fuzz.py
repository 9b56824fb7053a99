"""Any input through a real MCP session: a result or a clear error, never a crash; bad input never reaches X."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from xcourier.server.app import build_server

pytestmark = pytest.mark.anyio

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: the suite stays deterministic
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
TOOLS = {
    "createPost": ("text", "media"),
    "deletePost": ("id",),
    "likePost": ("tweet_id",),
    "repostPost": ("tweet_id",),
    "sendDirectMessage": ("username", "text", "media"),
    "getNewPosts": ("username", "since_id"),
}
WRITES = (
    "POST /2/tweets",
    "DELETE /2/tweets/{id}",
    "POST /2/users/{id}/likes",
    "POST /2/users/{id}/retweets",
    "POST /2/dm_conversations/with/{participant_id}/messages",
    "POST /2/media/upload",
)


@pytest.fixture
async def client(runtime):
    async with Client(build_server(runtime)) as connected:
        yield connected


def _text(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@st.composite
def any_call(draw):
    tool = draw(st.sampled_from(sorted(TOOLS)))
    keys = draw(st.lists(st.sampled_from([*TOOLS[tool], "extra", "url"]), unique=True, max_size=4))
    return tool, {key: draw(json_values) for key in keys}


@FUZZ
@given(call=any_call())
async def test_any_arguments_give_a_result_or_a_clear_error(client, call):
    tool, arguments = call
    result = await client.call_tool(tool, arguments)
    text = _text(result)
    assert text.strip(), f"{tool}{arguments}: empty result"
    # "Error executing tool" is the SDK's wording for a crash (and for raw schema errors, which we rewrite).
    assert "Traceback" not in text and "Error executing tool" not in text and "pydantic" not in text, text
    if not result.is_error:
        assert result.structured_content is not None


bad_ids = st.one_of(
    st.text(max_size=25).filter(lambda s: not (s.isascii() and s.isdigit() and 1 <= len(s) <= 19)),
    st.text(alphabet=string.digits, min_size=20, max_size=30),
)
bad_usernames = st.one_of(
    st.text(max_size=30).filter(lambda s: not (1 <= len(s.lstrip("@")) <= 15 and s.lstrip("@").isidentifier())),
    st.text(alphabet=string.ascii_letters, min_size=16, max_size=30),
)
too_long = st.text(alphabet=string.ascii_letters + " ", min_size=281, max_size=400)
bad_media = st.lists(
    st.fixed_dictionaries(
        {"url": st.sampled_from(["http://127.0.0.1/x.png", "file:///etc/passwd", "data:text/plain,hi", "gopher://x"])}
    ),
    min_size=1,
    max_size=6,
)
invalid_calls = st.one_of(
    st.tuples(st.just("deletePost"), st.fixed_dictionaries({"id": bad_ids})),
    st.tuples(st.just("likePost"), st.fixed_dictionaries({"tweet_id": bad_ids})),
    st.tuples(st.just("repostPost"), st.fixed_dictionaries({"tweet_id": bad_ids})),
    st.tuples(st.just("createPost"), st.fixed_dictionaries({"text": too_long})),
    st.tuples(st.just("createPost"), st.fixed_dictionaries({"media": bad_media})),
    st.tuples(st.just("sendDirectMessage"), st.fixed_dictionaries({"username": bad_usernames, "text": st.just("hi")})),
    st.tuples(st.just("getNewPosts"), st.fixed_dictionaries({"username": st.just("alice"), "since_id": bad_ids})),
)


@FUZZ
@given(call=invalid_calls)
async def test_invalid_input_never_reaches_the_sandbox(client, admin, call):
    tool, arguments = call
    before = admin.calls()
    result = await client.call_tool(tool, arguments)
    assert result.is_error is True, f"{tool}{arguments} was accepted"
    assert _text(result).strip() and "Traceback" not in _text(result)
    after = admin.calls()
    assert {k: after.get(k, 0) for k in WRITES} == {k: before.get(k, 0) for k in WRITES}, f"{tool}{arguments}"
    if tool != "getNewPosts":
        assert after == before, f"{tool}{arguments} reached X"
