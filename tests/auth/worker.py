"""A separate xcourier process for the multi-process tests: `python -m tests.auth.worker STORE MODE`.

calls          print "ready", wait for a line on stdin, make 8 concurrent likePost calls, print results
stop-before-refresh / stop-before-commit
               make one call; just before asking X to refresh (or just before committing X's
               answer) print the MODE and block, so the test can SIGKILL the process right there
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.auth import oauth, tokens
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings


async def _block(mode: str) -> None:
    print(mode, flush=True)
    await anyio.sleep_forever()


def _install_stop(mode: str) -> None:
    if mode == "stop-before-refresh":

        async def stopped_refresh(app: Any, refresh_token: str) -> Any:
            await _block(mode)

        tokens.oauth.refresh = stopped_refresh  # type: ignore[assignment]
    elif mode == "stop-before-commit":
        real_refresh = oauth.refresh

        async def refresh_then_stop(app: Any, refresh_token: str) -> Any:
            await real_refresh(app, refresh_token)  # X has rotated: the old refresh token is dead now
            await _block(mode)

        tokens.oauth.refresh = refresh_then_stop  # type: ignore[assignment]


async def main(store_path: str, mode: str, tweet_id: str) -> None:
    _install_stop(mode)
    async with Runtime.open(Settings(store=store_path)) as runtime, Client(build_server(runtime)) as client:
        if mode != "calls":
            await client.call_tool("likePost", {"tweet_id": tweet_id})
            return
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        results: list[dict[str, Any]] = []

        async def call() -> None:
            result = await client.call_tool("likePost", {"tweet_id": tweet_id})
            results.append({"is_error": result.is_error, "text": result.content[0].text})

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(call)
        manager = runtime.tokens
        assert isinstance(manager, tokens.TokenManager)
        print(json.dumps({"results": results, "refreshes": manager.refreshes}), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
