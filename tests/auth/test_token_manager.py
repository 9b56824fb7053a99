"""The token manager on the sandbox: refresh with rotation, single-flight across coroutines and processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.auth import oauth
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.tokens import TokenManager
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

from .conftest import log_in

# likePost is the sample write here: the sandbox plays an Enterprise account, where likes exist.
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("enterprise")]

REPO = Path(__file__).parents[2]


async def test_expired_token_is_refreshed_once_then_the_call_succeeds(public_app, store, store_path, admin, grants):
    await log_in(public_app, store)
    post = admin.post_as("alice", "like me")["data"]["id"]
    admin.http.post("/tokens/expire", json={}).raise_for_status()
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is False, result.content[0].text
    assert grants()["refresh_token"] == 1
    stored = await store.load()
    assert stored.version == 2
    assert runtime.tokens.account == stored  # the token in use is the committed one


async def test_refresh_happens_before_expiry_without_a_401(public_app, store, admin, grants):
    tokens = await log_in(public_app, store)
    clock = [tokens.expires_at - 60]  # inside the default 300 s refresh skew
    manager = TokenManager(store, tokens, clock=lambda: clock[0])
    fresh = await manager.access_token()
    assert fresh != tokens.access_token
    assert grants()["refresh_token"] == 1
    assert (await store.load()).access_token == fresh
    assert await manager.access_token() == fresh  # no second rotation
    assert grants()["refresh_token"] == 1


async def test_concurrent_calls_in_one_process_share_one_refresh(public_app, store, store_path, admin, grants):
    await log_in(public_app, store)
    post = admin.post_as("bob", "many likes")["data"]["id"]
    admin.http.post("/tokens/expire", json={}).raise_for_status()
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        results = []

        async def like() -> None:
            results.append(await client.call_tool("likePost", {"tweet_id": post}))

        async with anyio.create_task_group() as group:
            for _ in range(16):
                group.start_soon(like)
    assert [r.is_error for r in results] == [False] * 16
    assert grants()["refresh_token"] == 1


async def test_a_rotation_by_another_process_is_picked_up_from_the_store(public_app, store, grants, admin):
    tokens = await log_in(public_app, store)
    first = TokenManager(store, tokens)
    second = TokenManager(SQLiteTokenStore(Path(store.location)), tokens)  # as if in another process
    admin.http.post("/tokens/expire", json={}).raise_for_status()
    rotated = await first.refresh_after_unauthorized(tokens.access_token)
    assert await second.refresh_after_unauthorized(tokens.access_token) == rotated
    assert grants()["refresh_token"] == 1


async def test_a_revoked_login_says_to_log_in_again_and_the_server_keeps_running(
    public_app, store, store_path, admin, grants
):
    tokens = await log_in(public_app, store)
    post = admin.post_as("alice", "still here")["data"]["id"]
    # Reusing a spent refresh token revokes the whole family at X.
    await oauth.refresh(public_app, tokens.refresh_token)
    with pytest.raises(oauth.GrantRejected):
        await oauth.refresh(public_app, tokens.refresh_token)
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        for _ in range(2):
            result = await client.call_tool("likePost", {"tweet_id": post})
            assert result.is_error is True
            assert "xcourier auth login" in result.content[0].text
        # Logging in again is picked up by the running server.
        await log_in(public_app, store)
        result = await client.call_tool("likePost", {"tweet_id": post})
        assert result.is_error is False, result.content[0].text


async def test_a_missing_scope_is_refused_before_calling_x(public_app, store, store_path, admin):
    await log_in(public_app, store, scopes=("tweet.read", "users.read", "offline.access"))
    post = admin.post_as("alice", "no likes for you")["data"]["id"]
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is True
    assert "like.write" in result.content[0].text and "xcourier auth login --scopes" in result.content[0].text
    assert "POST /2/users/{id}/likes" not in admin.calls()


async def test_a_401_mid_flight_gets_one_refresh_and_one_retry(public_app, store, store_path, admin, grants):
    await log_in(public_app, store)
    post = admin.post_as("alice", "retry me")["data"]["id"]
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        assert (await client.call_tool("likePost", {"tweet_id": post})).is_error is False
        before = admin.calls()["POST /2/users/{id}/likes"]
        admin.http.post("/tokens/expire", json={}).raise_for_status()
        assert (await client.call_tool("repostPost", {"tweet_id": post})).is_error is False
    assert grants()["refresh_token"] == 1
    assert admin.calls()["POST /2/users/{id}/retweets"] == 2  # the 401, then the retry
    assert admin.calls()["POST /2/users/{id}/likes"] == before


def _worker(store_path: Path, mode: str, tweet_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.auth.worker", str(store_path), mode, tweet_id],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_four_processes_with_eight_calls_each_make_exactly_one_refresh_grant(
    public_app, store, store_path, admin, grants
):
    await log_in(public_app, store)
    post = admin.post_as("bob", "like me from everywhere")["data"]["id"]
    admin.http.post("/tokens/expire", json={}).raise_for_status()
    workers = [_worker(store_path, "calls", post) for _ in range(4)]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.stdout.readline()) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
    assert [r["is_error"] for report in reports for r in report["results"]] == [False] * 32
    assert sum(report["refreshes"] for report in reports) == 1
    assert grants()["refresh_token"] == 1


async def _kill_at(store_path: Path, mode: str, tweet_id: str) -> None:
    worker = _worker(store_path, mode, tweet_id)
    try:
        line = await anyio.to_thread.run_sync(worker.stdout.readline)
        assert line.strip() == mode, worker.stderr.read()
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(timeout=30)


@pytest.mark.slow
async def test_killed_before_refreshing_the_next_process_uses_the_committed_set(
    public_app, store, store_path, admin, grants
):
    tokens = await log_in(public_app, store)
    post = admin.post_as("alice", "crash test")["data"]["id"]
    await store.save(replace(tokens, expires_at=0.0))  # due for a refresh
    await _kill_at(store_path, "stop-before-refresh", post)
    assert await store.load() == replace(tokens, expires_at=0.0)  # intact
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is False, result.content[0].text
    assert grants()["refresh_token"] == 1


@pytest.mark.slow
async def test_killed_after_x_rotated_but_before_commit_the_next_process_asks_for_a_clean_login(
    public_app, store, store_path, admin
):
    tokens = await log_in(public_app, store)
    post = admin.post_as("alice", "crash test two")["data"]["id"]
    await store.save(replace(tokens, expires_at=0.0))
    await _kill_at(store_path, "stop-before-commit", post)
    assert await store.load() == replace(tokens, expires_at=0.0)  # intact: the old set, never half-written
    async with Runtime.open(Settings(store=str(store_path))) as runtime, Client(build_server(runtime)) as client:
        result = await client.call_tool("likePost", {"tweet_id": post})
    assert result.is_error is True
    assert "Run `xcourier auth login` to log in again" in result.content[0].text


async def test_a_refresh_cancelled_by_the_caller_still_commits_the_new_tokens(public_app, store, monkeypatch):
    from xcourier.server.auth import tokens as tokens_module

    tokens = await log_in(public_app, store)
    manager = TokenManager(store, replace(tokens, expires_at=0.0))
    answered, release = anyio.Event(), anyio.Event()
    real_refresh = oauth.refresh

    async def slow_to_answer(app, refresh_token):
        token = await real_refresh(app, refresh_token)  # X has rotated now
        answered.set()
        await release.wait()
        return token

    monkeypatch.setattr(tokens_module.oauth, "refresh", slow_to_answer)
    async with anyio.create_task_group() as group:
        group.start_soon(manager.access_token)
        await answered.wait()
        group.cancel_scope.cancel()  # the client gave up on its call
        release.set()
    stored = await store.load()
    assert stored.version == 2 and stored.refresh_token != tokens.refresh_token
    assert manager.account == stored


async def test_hours_of_use_across_three_servers_make_exactly_one_grant_per_rotation(
    public_app, store, store_path, admin, grants
):
    """Simulated hours: each round the access token expires and three servers sharing the store call at once."""
    await log_in(public_app, store)
    post = admin.post_as("bob", "long-running")["data"]["id"]
    admin.rate_limit("POST /2/users/{id}/likes", 10_000)
    rounds = 8
    async with (
        Runtime.open(Settings(store=str(store_path)), run_watcher=False) as first,
        Runtime.open(Settings(store=str(store_path)), run_watcher=False) as second,
        Runtime.open(Settings(store=str(store_path)), run_watcher=False) as third,
        Client(build_server(first)) as a,
        Client(build_server(second)) as b,
        Client(build_server(third)) as c,
    ):
        for _ in range(rounds):
            admin.http.post("/tokens/expire", json={}).raise_for_status()
            results: list = []

            async def like(client, into: list) -> None:
                into.append(await client.call_tool("likePost", {"tweet_id": post}))

            async with anyio.create_task_group() as group:
                for client in (a, b, c, a, b, c):
                    group.start_soon(like, client, results)
            assert [r.is_error for r in results] == [False] * 6, [r.content[0].text for r in results]
    assert grants()["refresh_token"] == rounds
    assert (await store.load()).version == rounds + 1


async def test_three_servers_sharing_a_redis_store_make_one_grant_per_rotation(public_app, redis_url, admin, grants):
    from xcourier.server.auth.redis_store import RedisTokenStore

    url = f"{redis_url}?db=3"
    shared = RedisTokenStore(url)
    await shared._redis.flushdb()
    await log_in(public_app, shared)
    post = admin.post_as("alice", "shared over redis")["data"]["id"]
    async with (
        Runtime.open(Settings(store=url), run_watcher=False) as first,
        Runtime.open(Settings(store=url), run_watcher=False) as second,
        Runtime.open(Settings(store=url), run_watcher=False) as third,
        Client(build_server(first)) as a,
        Client(build_server(second)) as b,
        Client(build_server(third)) as c,
    ):
        for _ in range(3):
            admin.http.post("/tokens/expire", json={}).raise_for_status()
            results: list = []

            async def like(client, into: list) -> None:
                into.append(await client.call_tool("likePost", {"tweet_id": post}))

            async with anyio.create_task_group() as group:
                for client in (a, b, c):
                    group.start_soon(like, client, results)
            assert [r.is_error for r in results] == [False] * 3, [r.content[0].text for r in results]
    assert grants()["refresh_token"] == 3
    assert (await shared.load()).version == 4
    await shared.aclose()
