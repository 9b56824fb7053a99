"""Toolsets (posting, engagement, messages, reading, watching): which tools a server exposes, through real
MCP sessions on the sandbox; and the undo tools of the engagement toolset.

The `all` schema snapshot (tests/snapshots/tools_list_all.json) is refreshed on purpose, like the default one:
XCOURIER_UPDATE_SNAPSHOTS=1 pytest tests/mcp/test_toolsets.py
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.cli import build_parser, settings_from_args
from xcourier.server.inventory import TOOLS, select_tools
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings, SettingsError

pytestmark = pytest.mark.anyio

MODES = ["legacy", "auto"]
SNAPSHOTS = Path(__file__).parent.parent / "snapshots"
TODAY = {"createPost", "deletePost", "likePost", "repostPost", "sendDirectMessage", "getNewPosts"}
READING = {"getPost", "getUser", "getUserPosts", "searchRecentPosts", "getMentions", "getBookmarks"}


@asynccontextmanager
async def serving(sandbox, **settings) -> AsyncIterator[Runtime]:
    """A runtime whose tools are chosen from `settings` by the inventory, as the server's start-up does."""
    config = Settings(sandbox=True, **settings)
    async with Runtime.open(config, sandbox_server=sandbox, run_watcher=False, clock=time.time) as runtime:
        runtime.tools = select_tools(
            read_only=config.read_only, allow=config.tools, deny=config.exclude_tools, toolsets=config.toolsets
        )
        yield runtime


@asynccontextmanager
async def connected(sandbox, mode: str = "legacy", **settings) -> AsyncIterator[tuple[Runtime, Client]]:
    async with serving(sandbox, **settings) as runtime, Client(build_server(runtime), mode=mode) as client:
        yield runtime, client


async def listed(runtime: Runtime) -> tuple[set[str], list[str]]:
    async with Client(build_server(runtime), mode="legacy") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
    return tools, templates


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# --- which tools exist ---------------------------------------------------------------------------


def test_every_tool_belongs_to_one_known_toolset():
    assert {spec.toolset for spec in TOOLS} == {"posting", "engagement", "messages", "reading", "watching"}
    assert {spec.name for spec in TOOLS if spec.default} == TODAY


async def test_without_toolsets_the_server_exposes_exactly_todays_tools(sandbox):
    async with serving(sandbox) as runtime:
        tools, templates = await listed(runtime)
    assert tools == TODAY
    assert "x://posts/{id}" not in templates


async def test_toolsets_choose_whole_toolsets_and_the_reading_one_brings_the_post_resource(sandbox):
    async with serving(sandbox, toolsets=("reading", "engagement")) as runtime:
        tools, templates = await listed(runtime)
    assert tools == READING | {"likePost", "repostPost", "unlikePost", "unrepostPost"}
    assert "x://posts/{id}" in templates


async def test_default_can_be_combined_with_a_toolset(sandbox):
    async with serving(sandbox, toolsets=("default", "reading")) as runtime:
        tools, _ = await listed(runtime)
    assert tools == TODAY | READING


async def test_read_only_and_exclude_tools_apply_on_top_of_toolsets(sandbox):
    async with serving(sandbox, toolsets=("all",), read_only=True, exclude_tools=("getBookmarks",)) as runtime:
        tools, _ = await listed(runtime)
    assert tools == READING - {"getBookmarks"} | {"getNewPosts"}


async def test_an_allow_list_without_toolsets_names_tools_of_any_toolset(sandbox):
    async with serving(sandbox, tools=("getPost", "createThread")) as runtime:
        tools, _ = await listed(runtime)
    assert tools == {"getPost", "createThread"}


async def test_create_post_keeps_the_contract_s_parameters_unless_the_posting_toolset_is_chosen(sandbox):
    async def create_post_parameters(**settings) -> set[str]:
        async with connected(sandbox, "legacy", **settings) as (_runtime, client):
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        return set(tools["createPost"].input_schema["properties"])

    assert await create_post_parameters() == {"text", "media"}
    assert await create_post_parameters(tools=("createPost",)) == {"text", "media"}
    assert await create_post_parameters(toolsets=("default",)) == {"text", "media"}
    wider = {"text", "media", "reply_to", "quote", "poll", "reply_settings"}
    assert await create_post_parameters(toolsets=("default", "posting")) == wider
    assert await create_post_parameters(toolsets=("all",)) == wider


def test_an_allow_list_naming_a_tool_outside_the_chosen_toolsets_is_an_error():
    with pytest.raises(ValueError, match=r"getPost \(toolset reading\), outside the chosen toolsets posting"):
        select_tools(toolsets=("posting",), allow=("createPost", "getPost"))


def test_an_unknown_toolset_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown toolset.*readng.*reading"):
        select_tools(toolsets=("readng",))


def _settings(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    args = build_parser().parse_args(["serve", "--sandbox", *argv])
    return settings_from_args(args, environ or {})


def test_toolsets_come_from_the_flag_then_the_environment_then_the_config_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[serve]\ntoolsets = ["reading", "watching"]\n')
    file_only = {"XCOURIER_CONFIG": str(config)}
    assert _settings([], file_only).toolsets == ("reading", "watching")
    assert _settings([], {**file_only, "XCOURIER_TOOLSETS": "posting,engagement"}).toolsets == ("posting", "engagement")
    assert _settings(["--toolsets", "all"], {**file_only, "XCOURIER_TOOLSETS": "posting"}).toolsets == ("all",)
    assert _settings([]).toolsets is None


def test_a_wrong_toolset_on_the_command_line_is_a_settings_error():
    with pytest.raises(SettingsError, match="--toolsets: unknown toolset"):
        _settings(["--toolsets", "posting,tweeting"])


async def test_the_runtime_exposes_the_toolsets_the_settings_name(sandbox):
    async with Runtime.open(Settings(sandbox=True, toolsets=("reading",)), sandbox_server=sandbox) as runtime:
        assert {spec.name for spec in runtime.tools} == READING


async def test_the_all_toolsets_schema_matches_its_snapshot(sandbox):
    async with connected(sandbox, "legacy", toolsets=("all",)) as (_runtime, client):
        tools = (await client.list_tools()).tools
    current = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
    rendered = json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    snapshot = SNAPSHOTS / "tools_list_all.json"
    if os.environ.get("XCOURIER_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(rendered, encoding="utf-8")
    assert rendered == snapshot.read_text(encoding="utf-8"), (
        "tools/list with --toolsets all changed. If intended, refresh with XCOURIER_UPDATE_SNAPSHOTS=1 and review."
    )
    assert {tool.name for tool in tools} == {spec.name for spec in TOOLS}


# --- unlikePost and unrepostPost ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_unlike_undoes_a_like_and_is_harmless_twice(sandbox, admin, enterprise, mode):
    target = admin.post_as("bob", "like me, then don't")["data"]["id"]
    async with connected(sandbox, mode, toolsets=("engagement",)) as (_runtime, client):
        await client.call_tool("likePost", {"tweet_id": target})
        assert admin.state()["likes"] == [{"user_id": "1700000000000000001", "tweet_id": target}]
        first = await client.call_tool("unlikePost", {"tweet_id": target})
        again = await client.call_tool("unlikePost", {"tweet_id": target})
    assert first.structured_content == again.structured_content == {"data": {"liked": False}}
    assert admin.state()["likes"] == []
    assert admin.calls()["DELETE /2/users/{id}/likes/{tweet_id}"] == 2


@pytest.mark.parametrize("mode", MODES)
async def test_unrepost_undoes_a_repost_and_is_harmless_twice(sandbox, admin, mode):
    target = admin.post_as("alice", "repost me, then don't")["data"]["id"]
    async with connected(sandbox, mode, toolsets=("engagement",)) as (_runtime, client):
        await client.call_tool("repostPost", {"tweet_id": target})
        first = await client.call_tool("unrepostPost", {"tweet_id": target})
        again = await client.call_tool("unrepostPost", {"tweet_id": target})
    assert first.structured_content == again.structured_content == {"data": {"retweeted": False}}
    assert admin.state()["retweets"] == []


async def test_unlike_on_a_self_serve_plan_says_likes_need_enterprise(sandbox, admin):
    target = admin.post_as("bob", "can't unlike on pay-per-use")["data"]["id"]
    async with connected(sandbox, "legacy", toolsets=("engagement",)) as (_runtime, client):
        result = await client.call_tool("unlikePost", {"tweet_id": target})
    assert result.is_error is True
    assert "refused the undoing of the like" in text_of(result) and "Enterprise" in text_of(result)


async def test_unrepost_is_audited_with_its_interaction_delete_price(sandbox, admin):
    target = admin.post_as("alice", "audit the undo")["data"]["id"]
    async with connected(sandbox, "legacy", toolsets=("engagement",)) as (runtime, client):
        await client.call_tool("unrepostPost", {"tweet_id": target})
        entries = [e for e in await runtime.audit.since(3600) if e.tool == "unrepostPost"]
    # $0.010 for the undo (User Interaction: Delete) and $0.010 for the one user read (GET /2/users/me).
    assert [(e.outcome, e.cost, dict(e.ids)) for e in entries] == [("ok", 0.02, {"post_id": target})]
    assert "1 user read(s)" in entries[0].detail
