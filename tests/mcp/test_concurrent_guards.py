"""The pace and spend guards hold under concurrency: a write holds its place from the check until its
outcome is recorded, so twenty calls at once can't all pass a limit of three (issue: check-then-act)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

pytestmark = pytest.mark.anyio

X = "https://api.x.com"
CALLS = 20


class Gate:
    """Holds requests at X until opened, and tells how many have arrived."""

    def __init__(self) -> None:
        self.opened = anyio.Event()
        self.arrived = 0
        self._counted: list[tuple[int, anyio.Event]] = []

    async def hold(self) -> None:
        self.arrived += 1
        for count, event in self._counted:
            if self.arrived >= count:
                event.set()
        await self.opened.wait()

    async def wait_for(self, count: int) -> None:
        event = anyio.Event()
        self._counted.append((count, event))
        if self.arrived >= count:
            event.set()
        await event.wait()

    def set(self) -> None:
        self.opened.set()


@asynccontextmanager
async def held_at_x(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Client, respx.Route, Gate]]:
    """xcourier on respx's X, where every POST /2/tweets waits until the test opens the gate."""
    gate = Gate()
    made = iter(range(10**6))

    async def slow_x(request: httpx.Request) -> httpx.Response:
        await gate.hold()
        post_id = str(1445880548472328192 + next(made))
        text = json.loads(request.content)["text"]
        return httpx.Response(201, json={"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}})

    config = Settings(access_token="t", store=str(tmp_path / "store.db"), api_base_url=X, **settings)
    with respx.mock(base_url=X, assert_all_mocked=True) as x:
        route = x.post("/2/tweets").mock(side_effect=slow_x)
        async with Runtime.open(config, run_watcher=False) as runtime, Client(build_server(runtime)) as client:
            yield client, route, gate


async def _burst(client: Client, route: respx.Route, gate: Gate, refusals_expected: int) -> list[Any]:
    results: list[Any] = []
    refused = anyio.Event()

    async def call(n: int) -> None:
        result = await client.call_tool("createPost", {"text": f"burst {n}"})
        results.append(result)
        if sum(r.is_error for r in results) == refusals_expected:
            refused.set()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for n in range(CALLS):
                group.start_soon(call, n)
            # Every refusal is in while the admitted calls are still held at X: the refusals came from
            # the reservations, not from finished writes in the audit trail.
            await refused.wait()
            await gate.wait_for(CALLS - refusals_expected)
            assert gate.arrived == CALLS - refusals_expected
            gate.set()
    return results


async def test_twenty_concurrent_posts_under_a_pace_limit_of_three_send_three(tmp_path: Path) -> None:
    async with held_at_x(tmp_path, max_writes_per_hour=3) as (client, route, gate):
        results = await _burst(client, route, gate, refusals_expected=CALLS - 3)
        audit = json.loads((await client.read_resource("x://audit")).contents[0].text)
    assert route.call_count == 3
    assert sum(not r.is_error for r in results) == 3
    refusal = next(r for r in results if r.is_error).content[0].text
    assert "--max-writes-per-hour 3" in refusal
    outcomes = sorted(e["outcome"] for e in audit["entries"] if e["write"])
    assert outcomes == ["ok"] * 3 + ["refused"] * (CALLS - 3)


async def test_twenty_concurrent_posts_under_a_budget_for_two_send_two(tmp_path: Path) -> None:
    # 0.035 USD buys two posts at 0.015 and not a third.
    async with held_at_x(tmp_path, daily_budget=0.035) as (client, route, gate):
        results = await _burst(client, route, gate, refusals_expected=CALLS - 2)
        totals = json.loads((await client.read_resource("x://audit")).contents[0].text)["totals"]
    assert route.call_count == 2
    assert "--daily-budget" in next(r for r in results if r.is_error).content[0].text
    assert totals["spent_last_24h_usd"] == pytest.approx(0.030)


async def test_a_refused_or_finished_write_gives_its_place_back(tmp_path: Path) -> None:
    async with held_at_x(tmp_path, max_writes_per_hour=2) as (client, route, gate):
        gate.set()
        first = await client.call_tool("createPost", {"text": "one"})
        bad = await client.call_tool("createPost", {"text": "x" * 300})  # refused locally: never reached X
        second = await client.call_tool("createPost", {"text": "two"})
        third = await client.call_tool("createPost", {"text": "three"})
    assert not first.is_error and bad.is_error and not second.is_error
    assert third.is_error and "--max-writes-per-hour 2" in third.content[0].text
    assert route.call_count == 2


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_two_instances_sharing_a_store_admit_three_writes_between_them(tmp_path: Path, backend, request) -> None:
    """Two servers on one login and one store (two clients, or two hosted instances): the limit is the
    account's, so concurrent calls on both can't each pass it."""
    store = str(tmp_path / "store.db") if backend == "sqlite" else request.getfixturevalue("redis_url")
    gate = Gate()
    made = iter(range(10**6))

    async def slow_x(request: httpx.Request) -> httpx.Response:
        await gate.hold()
        post_id = str(1445880548472328192 + next(made))
        text = json.loads(request.content)["text"]
        return httpx.Response(201, json={"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}})

    config = Settings(access_token="t", store=store, api_base_url=X, max_writes_per_hour=3)
    results: list[Any] = []
    refused = anyio.Event()
    with respx.mock(base_url=X, assert_all_mocked=True) as x:
        route = x.post("/2/tweets").mock(side_effect=slow_x)
        async with (
            Runtime.open(config, run_watcher=False) as one,
            Runtime.open(config, run_watcher=False) as two,
            Client(build_server(one)) as first,
            Client(build_server(two)) as second,
        ):

            async def call(client: Client, n: int) -> None:
                results.append(await client.call_tool("createPost", {"text": f"shared {n}"}))
                if sum(r.is_error for r in results) == CALLS - 3:
                    refused.set()

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    for n in range(CALLS):
                        group.start_soon(call, first if n % 2 else second, n)
                    await refused.wait()
                    await gate.wait_for(3)
                    assert gate.arrived == 3
                    gate.set()
    assert route.call_count == 3
    assert sum(not r.is_error for r in results) == 3
