"""Safety switches, the audit trail and the spend guards, through real MCP sessions on the sandbox."""

from __future__ import annotations

import inspect
import json
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import ElicitResult

from xcourier.server.app import build_server
from xcourier.server.audit import AuditLog
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings, SettingsError
from xcourier.server.tool_handlers import registered

from ..clock import Clock
from ..e2e.conftest import XCOURIER, child_env

pytestmark = pytest.mark.anyio

WRITES = {"createPost", "deletePost", "likePost", "repostPost", "sendDirectMessage"}
MODES = ["legacy", "auto"]


@asynccontextmanager
async def serving(sandbox, clock: Clock | None = None, **settings) -> AsyncIterator[Runtime]:
    config = Settings(sandbox=True, **settings)
    async with Runtime.open(config, sandbox_server=sandbox, run_watcher=False, clock=clock or time.time) as runtime:
        yield runtime


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content)


async def tool_names(runtime: Runtime) -> set[str]:
    async with Client(build_server(runtime), mode="legacy") as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_read_only_exposes_only_reads_and_the_resource(sandbox):
    async with serving(sandbox, read_only=True) as runtime:
        assert await tool_names(runtime) == {"getNewPosts"}
        async with Client(build_server(runtime), mode="legacy") as client:
            templates = (await client.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["x://users/{username}/posts"]
            result = await client.call_tool("createPost", {"text": "not allowed"})
            assert result.is_error is True


async def test_allow_and_deny_lists_are_applied_in_one_place(sandbox):
    async with serving(sandbox, tools=("createPost", "likePost", "deletePost"), exclude_tools=("deletePost",)) as rt:
        assert await tool_names(rt) == {"createPost", "likePost"}
    async with serving(sandbox, exclude_tools=("sendDirectMessage",)) as rt:
        assert await tool_names(rt) == WRITES - {"sendDirectMessage"} | {"getNewPosts"}
    with pytest.raises(SettingsError, match="unknown tool name"):
        async with serving(sandbox, tools=("tweetStorm",)):
            pass


def _answering(approve: bool | None, asked: list[str]):
    async def callback(context, params) -> ElicitResult:
        asked.append(params.message)
        if approve is None:
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content={"approve": approve})

    return callback


@pytest.mark.parametrize("mode", MODES)
async def test_confirm_destructive_asks_before_delete_and_honours_the_answer(sandbox, admin, mode):
    async with serving(sandbox, confirm="destructive") as runtime:
        server = build_server(runtime)
        asked: list[str] = []
        async with Client(server, mode=mode, elicitation_callback=_answering(True, asked)) as client:
            post = (await client.call_tool("createPost", {"text": "delete me later"})).structured_content
            assert asked == []  # not destructive: nobody is asked
            deleted = await client.call_tool("deletePost", {"id": post["data"]["id"]})
            assert deleted.structured_content == {"data": {"deleted": True}}
            assert len(asked) == 1 and "deletePost" in asked[0] and post["data"]["id"] in asked[0]
        for answer, word in ((False, "did not approve"), (None, "declined")):
            keep = admin.post_as("xcourier_demo", f"keep me {word}")["data"]["id"]
            async with Client(server, mode=mode, elicitation_callback=_answering(answer, [])) as client:
                result = await client.call_tool("deletePost", {"id": keep})
            assert result.is_error is True and word in text_of(result)
            assert not next(p for p in admin.state()["posts"] if p["id"] == keep)["deleted"]


@pytest.mark.parametrize("mode", MODES)
async def test_confirm_refuses_when_the_client_cannot_be_asked(sandbox, admin, mode):
    async with serving(sandbox, confirm="writes") as runtime, Client(build_server(runtime), mode=mode) as client:
        result = await client.call_tool("likePost", {"tweet_id": admin.post_as("bob", "like?")["data"]["id"]})
    assert result.is_error is True
    assert "does not support MCP elicitation" in text_of(result)
    assert "POST /2/users/{id}/likes" not in admin.calls()


async def test_without_confirmation_no_approval_is_resolved_and_the_contract_is_the_same(sandbox):
    # A server that never asks registers its handlers without the hidden approval parameter (no resolver round
    # per call); one that asks keeps it. Either way clients see the same tools.
    listed = {}
    for confirm in ("none", "writes"):
        async with serving(sandbox, confirm=confirm) as runtime:
            async with Client(build_server(runtime), mode="legacy") as client:
                listed[confirm] = [tool.model_dump(mode="json") for tool in (await client.list_tools()).tools]
            handlers = {spec.name: registered(runtime, spec) for spec in runtime.tools}
        asks = {name for name, handler in handlers.items() if "approval" in inspect.signature(handler).parameters}
        assert asks == (set() if confirm == "none" else WRITES)
    assert listed["none"] == listed["writes"]


async def test_dry_run_validates_and_shows_the_request_but_sends_nothing(sandbox, admin):
    async with serving(sandbox, dry_run=True) as runtime, Client(build_server(runtime)) as client:
        result = await client.call_tool("createPost", {"text": "just checking"})
        assert result.is_error is True and "DRY RUN" in text_of(result) and "just checking" in text_of(result)
        bad = await client.call_tool("createPost", {"text": "x" * 281})
        assert bad.is_error is True and "281 weighted characters" in text_of(bad)
        dm = await client.call_tool("sendDirectMessage", {"username": "alice", "text": "hi"})
        assert "DRY RUN" in text_of(dm)
    assert admin.x_calls() == 0


async def test_every_write_and_refusal_is_audited_once_and_dm_text_never(sandbox, admin, enterprise):
    secret = "the DM text that must never be stored"
    async with serving(sandbox, max_writes_per_hour=4) as runtime, Client(build_server(runtime)) as client:
        post = (await client.call_tool("createPost", {"text": "audited post"})).structured_content["data"]["id"]
        await client.call_tool("likePost", {"tweet_id": post})
        await client.call_tool("sendDirectMessage", {"username": "alice", "text": secret})
        failed = await client.call_tool("createPost", {"text": "x" * 300})  # never reaches X: not counted
        await client.call_tool("deletePost", {"id": post})
        refused = await client.call_tool("repostPost", {"tweet_id": post})
        audit = json.loads((await client.read_resource("x://audit")).contents[0].text)
    assert refused.is_error and "--max-writes-per-hour 4" in text_of(refused)
    assert failed.is_error
    rows = [(e["tool"], e["outcome"]) for e in audit["entries"]]
    assert rows == [
        ("createPost", "ok"),
        ("likePost", "ok"),
        ("sendDirectMessage", "ok"),
        ("createPost", "error"),
        ("deletePost", "ok"),
        ("repostPost", "refused"),
    ]
    entries = audit["entries"]
    assert entries[0]["ids"] == {"post_id": post} and entries[0]["text"] == "audited post"
    assert entries[1]["ids"] == {"post_id": post} and entries[4]["ids"] == {"post_id": post}
    assert entries[2]["ids"]["recipient"] == "alice" and entries[2]["detail"].startswith(f"{len(secret)} characters")
    assert secret not in json.dumps(audit)
    assert audit["totals"]["writes_last_hour"] == 4
    # Post, like, DM and delete, plus the two reads X bills on the way: users/me for the like and
    # the recipient's lookup for the DM (0.010 each).
    assert audit["totals"]["spent_last_24h_usd"] == pytest.approx(0.015 + 0.015 + 0.015 + 0.010 + 2 * 0.010)


async def test_the_hourly_cap_refuses_before_x_and_frees_up_as_the_window_moves(sandbox, admin, enterprise):
    clock = Clock()
    posts = [admin.post_as("bob", f"post {i}")["data"]["id"] for i in range(3)]
    async with serving(sandbox, clock, max_writes_per_hour=2) as rt, Client(build_server(rt)) as client:
        for post in posts[:2]:
            assert (await client.call_tool("likePost", {"tweet_id": post})).is_error is False
        likes = admin.calls()["POST /2/users/{id}/likes"]
        refused = await client.call_tool("likePost", {"tweet_id": posts[2]})
        assert refused.is_error and "next write is allowed at" in text_of(refused)
        assert admin.calls()["POST /2/users/{id}/likes"] == likes
        clock.now += 3601
        assert (await client.call_tool("likePost", {"tweet_id": posts[2]})).is_error is False


async def test_the_daily_budget_refuses_the_call_that_would_pass_it(sandbox, admin):
    clock = Clock()
    async with serving(sandbox, clock, daily_budget=0.04) as rt, Client(build_server(rt)) as client:
        for i in range(2):
            assert (await client.call_tool("createPost", {"text": f"cheap {i}"})).is_error is False
        refused = await client.call_tool("createPost", {"text": "one too many"})
        assert refused.is_error and "--daily-budget 0.04 USD" in text_of(refused) and "frees up at" in text_of(refused)
        url_post = await client.call_tool("createPost", {"text": "see https://example.com"})
        assert url_post.is_error  # a post with a link is priced at 0.20
        assert sum(1 for p in admin.state()["posts"] if p["text"].startswith(("one too many", "see https"))) == 0
        clock.now += 24 * 3600 + 1
        assert (await client.call_tool("createPost", {"text": "one too many"})).is_error is False


async def test_audit_command_lists_the_trail_with_totals(tmp_path: Path):
    store = SQLiteTokenStore(tmp_path / "s.db")
    log = AuditLog(store, "someone")
    await log.record("createPost", "ok", cost=0.015, ids={"post_id": "123"}, text="hello")
    await log.record("sendDirectMessage", "refused", cost=0.015, ids={"recipient": "bob"}, detail="5 characters")
    completed = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [*XCOURIER, "audit", "--store", str(tmp_path / "s.db"), "--since", "1h"],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
        )
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "createPost" in out and "post_id=123" in out and '"hello"' in out
    assert "sendDirectMessage" in out and "refused" in out and "recipient=bob" in out
    assert "1 write(s) in the last hour" in out and "0.015 USD in the last 24 h" in out


def test_serve_help_shows_every_switch():
    completed = subprocess.run([*XCOURIER, "serve", "--help"], capture_output=True, text=True, timeout=60)
    for flag in (
        "--read-only",
        "--tools",
        "--exclude-tools",
        "--confirm",
        "--dry-run",
        "--max-writes-per-hour",
        "--daily-budget",
        "--media-root",
    ):
        assert flag in completed.stdout


def test_switches_come_from_the_environment_and_the_config_file(tmp_path: Path):
    from xcourier.server.cli import build_parser, settings_from_args

    config = tmp_path / "c.toml"
    config.write_text('[serve]\nconfirm = "writes"\nexclude_tools = ["deletePost"]\n\n[pricing]\ndm = 0.5\n')
    args = build_parser().parse_args(["serve", "--sandbox"])
    env = {"XCOURIER_CONFIG": str(config), "XCOURIER_READ_ONLY": "1", "XCOURIER_MAX_WRITES_PER_HOUR": "7"}
    settings = settings_from_args(args, env)
    assert (settings.read_only, settings.confirm, settings.exclude_tools) == (True, "writes", ("deletePost",))
    assert settings.max_writes_per_hour == 7 and dict(settings.prices) == {"dm": 0.5}
    flags = build_parser().parse_args(["serve", "--sandbox", "--confirm", "none", "--max-writes-per-hour", "3"])
    overridden = settings_from_args(flags, env)
    assert (overridden.confirm, overridden.max_writes_per_hour) == ("none", 3)
    with pytest.raises(SettingsError, match="XCOURIER_DRY_RUN"):
        settings_from_args(args, {**env, "XCOURIER_DRY_RUN": "maybe"})
