"""Profile xcourier's tool-call hot path in one process (pyinstrument), against a sandbox process.

    python -m tests.bench.profile_calls [--tool createPost|likePost] [--calls N] [--store memory|sqlite]
                                        [--chars N] [--cjk] [--html PATH]

--chars sets createPost's text to N weighted characters (--cjk: of CJK characters and emoji), as
tests/bench/latency.py posts them.

The MCP client is in-process (no transport), so what shows is xcourier's own work per call:
the tool pipeline, the X client, the audit trail and the store. Needs pyinstrument.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.auth.memory_store import MemoryTokenStore
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings

from .common import SandboxProcess
from .latency import unique_text


async def run(
    tool: str, calls: int, store_kind: str, html: str | None, profile: bool, chars: int | None = None, cjk: bool = False
) -> float:
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory() as tmp:
        liked = httpx.post(f"{sandbox.base_url}/_sandbox/posts", json={"username": "alice", "text": "like"}).json()
        settings = Settings(
            access_token=sandbox.token,
            api_base_url=sandbox.base_url,
            store=str(Path(tmp) / "x.db"),
            log_level="WARNING",
        )
        async with Runtime.open(settings, run_watcher=False) as runtime, Client(build_server(runtime)) as client:
            for noisy in ("httpx", "httpcore"):  # as `xcourier serve` does (cli.configure_logging)
                logging.getLogger(noisy).setLevel(logging.WARNING)
            if store_kind == "memory":  # what a store without per-call SQLite work would cost
                runtime.audit._store = MemoryTokenStore()

            def args(i: int) -> dict[str, str]:
                if tool != "createPost":
                    return {"tweet_id": liked["data"]["id"]}
                if chars is not None:
                    return {"text": unique_text("profile", chars, cjk)}
                return {"text": f"profile {i} {time.monotonic_ns()}"}

            for i in range(20):
                await client.call_tool(tool, args(i))
            profiler = None
            if profile:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005, async_mode="disabled")
                profiler.start()
            started = time.perf_counter()
            for i in range(calls):
                result = await client.call_tool(tool, args(i + 100))
                assert not result.is_error, result
            per_call = (time.perf_counter() - started) / calls * 1000
            if profiler is not None:
                profiler.stop()
                print(profiler.output_text(unicode=False, color=False, show_all=False, timeline=False))
                if html:
                    Path(html).write_text(profiler.output_html())
            print(f"{tool} store={store_kind}: {per_call:.2f} ms per call (in-process client, {calls} calls)")
            return per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", default="createPost")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--chars", type=int, help="createPost text of this many weighted characters")
    parser.add_argument("--cjk", action="store_true", help="with --chars: CJK characters and emoji")
    parser.add_argument("--html")
    parser.add_argument("--no-profile", action="store_true")
    a = parser.parse_args()
    anyio.run(run, a.tool, a.calls, a.store, a.html, not a.no_profile, a.chars, a.cjk)


if __name__ == "__main__":
    main()
