"""One xcourier process for the refresh-contention benchmark (the pattern of tests/auth/worker.py).

    python -m tests.bench.refresh_worker STORE TWEET_ID CALLS

Opens a Runtime on the stored login (a TokenManager over the SQLite store), prints "ready",
then for every line read on stdin makes CALLS concurrent likePost calls through an in-process
MCP client and prints one JSON line: per-call latencies (ms), errors, the round's wall time and
the refresh grants this process has made so far. Exits when stdin closes.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import anyio
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.auth.tokens import TokenManager
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings


async def main(store_path: str, tweet_id: str, calls: int) -> None:
    async with (
        Runtime.open(Settings(store=store_path, log_level="WARNING"), run_watcher=False) as runtime,
        Client(build_server(runtime)) as client,
    ):
        await client.call_tool("likePost", {"tweet_id": tweet_id})  # warm: users/me cached, pool open
        print("ready", flush=True)
        while (await anyio.to_thread.run_sync(sys.stdin.readline)).strip():
            latencies: list[float] = []
            errors: list[str] = []

            async def call(latencies: list[float] = latencies, errors: list[str] = errors) -> None:
                started = time.perf_counter()
                result = await client.call_tool("likePost", {"tweet_id": tweet_id})
                latencies.append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    errors.append(result.content[0].text)  # type: ignore[union-attr]

            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(call)
            wall = (time.perf_counter() - started) * 1000
            manager = runtime.tokens
            assert isinstance(manager, TokenManager)
            report: dict[str, Any] = {
                "latencies": latencies,
                "errors": errors,
                "wall_ms": wall,
                "refreshes": manager.refreshes,
            }
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
