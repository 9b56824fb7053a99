"""Benchmark 3: memory. Idle RSS of `xcourier serve`, and RSS with 1,000 and 10,000 watched users.

Idle: `xcourier serve` (token mode against a sandbox process, and --sandbox) and the floor, each
spawned over stdio by the SDK client; RSS read once tools/list has been answered.

Watched users: a worker process (`python -m tests.bench.memory --worker`) opens the Runtime the
way `serve --sandbox` does (MemoryTokenStore for cursors, SandboxTokenProvider) but never starts
the sandbox's HTTP server: the XClient's httpx transport is an httpx.MockTransport answering
user lookups, timelines (20 posts of ~100 characters per user, so each watched user's `recent`
buffer is full) and searches. Users are subscribed through runtime.watcher.subscribe(uri,
subscriber); the watcher itself is the real one. RSS after 0, 1,000 and 10,000 subscriptions
(cumulative, after gc.collect()), then after one forced poll round over all of them.

    python -m tests.bench.memory [--runs N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from .common import (
    PYTHON,
    ROOT,
    Process,
    SandboxProcess,
    child_env,
    rss_bytes,
    summary,
    table,
    write_results,
    xcourier_command,
)

MB = 1024 * 1024
STEPS = (1_000, 10_000)
POSTS_PER_USER = 20
_EPOCH_MS = 1288834974657


def snowflake(seconds: float, seq: int) -> str:
    return str((int(seconds * 1000) - _EPOCH_MS) << 22 | (seq & 0x3FFFFF))


def mock_x() -> httpx.MockTransport:
    """X as far as the watcher asks: users by username, timelines, recent search."""
    now = time.time() - 3600
    user_path = re.compile(r"/2/users/by/username/([A-Za-z0-9_]+)$")
    timeline_path = re.compile(r"/2/users/(\d+)/tweets$")
    headers = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": "899", "x-rate-limit-reset": str(int(now) + 7200)}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if match := user_path.match(path):
            name = match.group(1)
            user_id = str(10**12 + int(name.removeprefix("user")))
            return httpx.Response(200, json={"data": {"id": user_id, "username": name, "name": name}}, headers=headers)
        if match := timeline_path.match(path):
            user_id = int(match.group(1))
            if request.url.params.get("since_id"):
                return httpx.Response(200, json={"meta": {"result_count": 0}}, headers=headers)
            posts = [
                {
                    "id": snowflake(now - 60 * k, user_id % 4096 * 32 + k),
                    "text": f"post {k} by user {user_id}: " + "lorem ipsum dolor sit amet " * 3,
                    "edit_history_tweet_ids": [snowflake(now - 60 * k, user_id % 4096 * 32 + k)],
                    # As X sends it: the id's own time, in whole seconds (data-dictionary.mdx's sample).
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(now - 60 * k))),
                    "author_id": str(user_id),
                }
                for k in range(POSTS_PER_USER)
            ]
            return httpx.Response(200, json={"data": posts, "meta": {"result_count": len(posts)}}, headers=headers)
        if path == "/2/tweets/search/recent":
            return httpx.Response(200, json={"meta": {"result_count": 0}}, headers=headers)
        return httpx.Response(404, json={"title": "Not Found", "detail": path, "status": 404})

    return httpx.MockTransport(handler)


def rss_now() -> int:
    gc.collect()
    return rss_bytes(os.getpid())


async def worker() -> None:
    from mcp.server.mcpserver import MCPServer  # noqa: F401 - as serve imports it

    from xcourier.server.app import build_server
    from xcourier.server.runtime import Runtime
    from xcourier.server.sandbox import SandboxServer
    from xcourier.server.settings import Settings

    sandbox = SandboxServer()  # never started: no HTTP server, the mock transport plays X
    sandbox.base_url = "http://sandbox.invalid"
    settings = Settings(sandbox=True, log_level="WARNING")
    async with Runtime.open(settings, sandbox_server=sandbox, run_watcher=False) as runtime:
        server = build_server(runtime)
        runtime.client._http = httpx.AsyncClient(transport=mock_x())
        report: dict[str, Any] = {"idle": rss_now()}
        watched = 0
        started = time.perf_counter()
        for target in STEPS:
            while watched < target:
                await runtime.watcher.subscribe(f"x://users/user{watched}/posts", f"subscriber-{watched}")
                watched += 1
            report[str(target)] = rss_now()
        report["subscribe_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        report["poll_requests"] = await runtime.watcher.poll_due(force=True)
        report["poll_seconds"] = time.perf_counter() - started
        report["after_poll"] = rss_now()
        # Every user's resource read once, as subscribers do on each update: what reading holds on to.
        started = time.perf_counter()
        for number in range(watched):
            await server.read_resource(f"x://users/user{number}/posts")
        report["read_seconds"] = time.perf_counter() - started
        report["after_read"] = rss_now()
        report["watched"] = len(runtime.watcher.status()["watched"])
    print(json.dumps(report), flush=True)


async def idle_rss(argv: list[str], env: dict[str, str]) -> int:
    import psutil  # the idle measurement needs the child's pid
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(ROOT))
    with open(os.devnull, "w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await client.list_tools()
            await anyio.sleep(0.5)  # let start-up garbage settle
            children = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
            return sum(p.memory_info().rss for p in children)


def run(runs: int = 3) -> dict[str, Any]:
    idle: dict[str, list[float]] = {}
    watched: dict[str, list[float]] = {}
    extra: list[dict[str, Any]] = []
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory() as tmp:
        contenders = {
            "floor (minimal MCPServer)": (
                [PYTHON, str(Path(__file__).with_name("floor_server.py"))],
                child_env(FLOOR_API_BASE=sandbox.base_url, FLOOR_TOKEN=sandbox.token),
            ),
            "xcourier serve (token)": (
                [*xcourier_command(), "serve", "--api-base-url", sandbox.base_url],
                child_env(XCOURIER_ACCESS_TOKEN=sandbox.token, XCOURIER_STORE=str(Path(tmp) / "x.db")),
            ),
            "xcourier serve --sandbox": ([*xcourier_command(), "serve", "--sandbox"], child_env()),
        }
        for _ in range(runs):
            for name, (argv, env) in contenders.items():
                idle.setdefault(name, []).append(anyio.run(idle_rss, argv, env) / MB)
    for _ in range(runs):
        with Process([PYTHON, "-m", "tests.bench.memory", "--worker"]) as process:
            report = json.loads(process.wait_line("idle", timeout=300))
        extra.append(report)
        for key in ("idle", *map(str, STEPS), "after_poll", "after_read"):
            watched.setdefault(key, []).append(report[key] / MB)
    rows = [{"what": f"idle: {name}", "rss_mb": summary(v)} for name, v in idle.items()]
    base = summary(watched["idle"])["median"]
    labels = {
        "idle": "in-process runtime, 0 watched",
        "1000": "1,000 watched",
        "10000": "10,000 watched",
        "after_poll": "10,000 watched, after one poll round",
        "after_read": "10,000 watched, after every resource was read",
    }
    for key, values in watched.items():
        s = summary(values)
        users = 10_000 if key.startswith("after") else int(key) if key.isdigit() else 0
        rows.append(
            {"what": labels[key], "rss_mb": s, "kb_per_user": (s["median"] - base) * 1024 / users if users else None}
        )
    print(
        table(
            ["what", "runs", "RSS median MB", "p99 MB", "min-max MB", "KB per watched user"],
            [
                [
                    r["what"],
                    r["rss_mb"]["n"],
                    r["rss_mb"]["median"],
                    r["rss_mb"]["p99"],
                    f"{r['rss_mb']['min']:.1f}-{r['rss_mb']['max']:.1f}",
                    "-" if r.get("kb_per_user") is None else f"{r['kb_per_user']:.1f}",
                ]
                for r in rows
            ],
            f"3. Memory (RSS); watched users each hold up to {POSTS_PER_USER} recent posts",
        )
    )
    print(
        f"\nsubscribing 10,000 users took {summary([e['subscribe_seconds'] for e in extra])['median']:.1f} s "
        f"(2 mock requests each); one forced poll round: "
        f"{summary([e['poll_seconds'] for e in extra])['median']:.2f} s, {extra[0]['poll_requests']} requests"
    )
    data = {"runs": runs, "posts_per_user": POSTS_PER_USER, "rows": rows, "worker_reports": extra}
    print(f"\nwrote {write_results('memory', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker)
    else:
        run(args.runs)


if __name__ == "__main__":
    main()
