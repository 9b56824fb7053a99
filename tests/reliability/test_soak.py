"""A bounded soak: many mixed calls and subscriptions while the sandbox misbehaves.

Zero duplicate posts or DMs, every call answered, every new post delivered exactly once, and
memory that doesn't keep growing. XCOURIER_SOAK_ROUNDS makes it longer (default 25 rounds of 16).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import anyio
import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.tools.client import RetryPolicy

pytestmark = pytest.mark.anyio

ROUNDS = int(os.environ.get("XCOURIER_SOAK_ROUNDS", "25"))
PER_ROUND = 16
FAULTS = [
    ("POST /2/tweets", "drop", {}),
    ("POST /2/tweets", "status", {"status": 503}),
    ("POST /2/dm_conversations/with/{participant_id}/messages", "drop", {}),
    ("POST /2/users/{id}/likes", "status", {"status": 502}),
    ("POST /2/users/{id}/retweets", "status", {"status": 429, "times": 3}),
    ("GET /2/users/{id}/tweets", "status", {"status": 503}),
    ("DELETE /2/tweets/{id}", "latency", {"latency_ms": 20}),
]


def rss_kb() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


async def _no_wait(_seconds: float) -> None:
    return None


async def test_soak_with_faults_loses_and_duplicates_nothing(runtime, admin, sandbox):
    runtime.client.retry = RetryPolicy(sleep=_no_wait)
    rng = random.Random(7)  # the same "random" run every time
    for name, limit in (
        ("POST /2/tweets", 10_000),
        ("POST /2/users/{id}/likes", 10_000),
        ("POST /2/users/{id}/retweets", 10_000),
        ("DELETE /2/tweets/{id}", 10_000),
        ("POST /2/dm_conversations/with/{participant_id}/messages", 10_000),
    ):
        admin.rate_limit(name, limit)
    watched = {"alice": [], "bob": []}
    answered = 0
    sent_posts: list[str] = []
    sent_dms: list[str] = []
    async with Client(build_server(runtime)) as client:
        for name in watched:
            await runtime.watcher.subscribe(f"x://users/{name}/posts", "soak")
        baseline = rss_kb()
        for round_number in range(ROUNDS):
            endpoint, kind, extra = rng.choice(FAULTS)
            admin.fault(endpoint, kind, **extra)
            if round_number % 5 == 4:
                admin.http.post("/tokens/expire", json={}).raise_for_status()
            mine = [p["id"] for p in admin.state()["posts"] if p["author_id"] == "1700000000000000001"]
            calls = []
            for i in range(PER_ROUND):
                roll = rng.random()
                tag = f"r{round_number}-{i}"
                if roll < 0.3:
                    sent_posts.append(f"soak post {tag}")
                    calls.append(("createPost", {"text": f"soak post {tag}"}))
                elif roll < 0.45:
                    sent_dms.append(f"soak dm {tag}")
                    calls.append(("sendDirectMessage", {"username": "bob", "text": f"soak dm {tag}"}))
                elif roll < 0.6 and mine:
                    calls.append(("likePost", {"tweet_id": rng.choice(mine)}))
                elif roll < 0.7 and mine:
                    calls.append(("repostPost", {"tweet_id": rng.choice(mine)}))
                elif roll < 0.8 and mine:
                    calls.append(("deletePost", {"id": mine.pop()}))
                else:
                    calls.append(("getNewPosts", {"username": rng.choice(["alice", "bob"])}))

            async def call(name: str, arguments: dict) -> None:
                nonlocal answered
                result = await client.call_tool(name, arguments)
                assert result.content and result.content[0].text.strip()
                answered += 1

            async with anyio.create_task_group() as group:
                for name, arguments in calls:
                    group.start_soon(call, name, arguments)
            for name in watched:
                watched[name].append(admin.post_as(name, f"{name} says {round_number}")["data"]["id"])
            await runtime.watcher.poll_due(force=True)
            admin.http.delete("/faults").raise_for_status()
        await runtime.watcher.poll_due(force=True)  # whatever a faulty poll left for later
        growth = rss_kb() - baseline

    assert answered == ROUNDS * PER_ROUND
    state = admin.state()
    posts = Counter(p["text"] for p in state["posts"] if p["text"].startswith("soak post"))
    assert max(posts.values(), default=1) == 1, "a post was created twice"
    assert set(posts) <= set(sent_posts)
    dms = Counter(d["text"] for d in state["dms"] if d["text"].startswith("soak dm"))
    assert max(dms.values(), default=1) == 1, "a DM was sent twice"
    for name, made in watched.items():
        followed = runtime.watcher.recent(name)
        assert followed.delivered == len(made), f"@{name}: {followed.delivered} delivered of {len(made)}"
        # Pushed posts move the cursor only to a point safely behind them (X's stream is not ordered),
        # polled ones to the newest read: never past the newest post, never missing one.
        assert followed.cursor is not None and int(followed.cursor) <= int(made[-1])
        assert {post.id for post in followed.recent} >= set(made[-5:])
    assert growth < 64 * 1024, f"RSS grew by {growth} KB"
