"""Benchmark 6: what hosted mode costs per tool call, next to local mode.

Hosted mode (`xcourier serve --transport http --auth x`) verifies the bearer token on every HTTP
request (a sealed access record and the user's sealed X login, both read from Redis), then finds
the caller's account; local mode acts as its one account. Every cell below makes the same tool
calls through the same MCP client stack (httpx2 + streamable HTTP, one session per caller):

  local --sandbox        `xcourier serve --sandbox --transport http`: the sandbox in-process
  local token            `xcourier serve --transport http --api-base-url SANDBOX` with
                         XCOURIER_ACCESS_TOKEN: the same sandbox process the hosted cells use,
                         so this is the baseline that differs from them only in hosted mode
  local token, 2 conc    two sessions of that server calling at once (the baseline for 2 users)
  hosted 1 instance      alice signed in (OAuth through the consent page and the sandbox) on one
                         `--auth x` instance, calling it
  hosted 2 users conc    alice and bob, each with their own token, calling that instance at once
  hosted alternating     alice's one token, calls alternating between two instances (the second
                         started with the first's --public-url, as behind a balancer)

Everything runs on 127.0.0.1: one sandbox process (tests/bench/sandbox_proc.py, rate limits
lifted), a redis-server on a unix socket in a temporary directory (database 1), and the server
processes. Per cell and tool: WARMUP calls per session first (not measured: the first call builds
the caller's account), then CALLS calls split into ROUNDS rounds, the rounds of all cells
interleaved so drift on the machine hits every cell alike. Concurrent cells measure CALLS calls
per session. Redis commands per call are counted with INFO commandstats around each hosted cell
(the instances' lease renewals, one every few seconds, are included). Server CPU per call is the
user + system time of the cell's xcourier processes around each round (psutil), over its calls;
for local --sandbox it includes the sandbox, which runs in that process.

    python -m tests.bench.hosted [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from ..hosted.signin import sign_in
from ..redis_server import redis_server
from .common import Process, SandboxProcess, child_env, percentile, summary, table, write_results, xcourier_command

TOOLS = ("getNewPosts", "likePost")
CALLS = 200
ROUNDS = 4
WARMUP = 20
CELL_BUDGET = 120.0  # seconds for one round of one cell, whatever happens
STARTUP = 60.0


# ---- processes ----------------------------------------------------------------------------------


def serve_http(stack: contextlib.ExitStack, args: list[str], env: dict[str, str]) -> tuple[Process, str]:
    """Start `xcourier serve --transport http --port 0 ARGS`; its process and its MCP URL as announced."""
    process = stack.enter_context(
        Process([*xcourier_command(), "serve", "--transport", "http", "--port", "0", *args], env=env)
    )
    line = process.wait_line("serving MCP over streamable HTTP at ", stream="err", timeout=STARTUP)
    return process, line.split(" at ", 1)[1].strip()


def listening_url(process: Process) -> str:
    """The MCP URL of a process announcing another (its --public-url): its own listening port."""
    import psutil

    ports = [c.laddr.port for c in psutil.Process(process.popen.pid).net_connections("tcp") if c.status == "LISTEN"]
    if len(ports) != 1:
        raise RuntimeError(f"expected one listening port, found {ports}")
    return f"http://127.0.0.1:{ports[0]}/mcp"


def lift_rate_limits(base_url: str) -> None:
    """The in-process sandbox of `serve --sandbox` keeps X's limits (likePost: 50 per 15 minutes)."""
    from xcourier.server.sandbox.config import DEFAULT_RATE_LIMITS

    with httpx.Client(base_url=base_url, timeout=10) as admin:
        for endpoint in DEFAULT_RATE_LIMITS:
            admin.post("/_sandbox/rate-limits", json={"endpoint": endpoint, "limit": 10**9}).raise_for_status()


def post_to_like(base_url: str) -> str:
    response = httpx.post(
        f"{base_url}/_sandbox/posts", json={"username": "carol", "text": "like me, hosted benchmark"}, timeout=10
    )
    return str(response.raise_for_status().json()["data"]["id"])


# ---- MCP sessions -------------------------------------------------------------------------------


@asynccontextmanager
async def mcp_session(url: str, access_token: str | None) -> AsyncIterator[Client]:
    """One MCP session, the same client stack for local and hosted (tests/hosted/signin.py's session)."""
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


Call = Callable[[], Awaitable[bool]]  # one tool call -> ok


def caller(client: Client, tool: str, liked: str) -> Call:
    args: dict[str, Any] = {"username": "alice"} if tool == "getNewPosts" else {"tweet_id": liked}

    async def call() -> bool:
        result = await client.call_tool(tool, args)
        return not result.is_error

    return call


@dataclass
class Cell:
    name: str
    sessions: list[Client]  # one per concurrent caller, or the instances to alternate between
    liked: str  # the post likePost likes, in this cell's sandbox
    pids: list[int]  # the xcourier processes serving it, whose CPU time is counted
    alternate: bool = False
    redis: bool = False  # count Redis commands around it
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=dict)
    redis_commands: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # seconds of the servers' CPU, per tool
    # The first call of each session on the first tool: on a hosted instance it builds the caller's tenant
    # (account, X client, audit, guards) from the store; locally it is the first call after start.
    first_ms: list[float] = field(default_factory=list)

    async def warm(self, tool: str) -> None:
        for client in self.sessions:
            call = caller(client, tool, self.liked)
            for number in range(WARMUP):
                started = time.perf_counter()
                await call()
                if number == 0 and tool == TOOLS[0]:
                    self.first_ms.append((time.perf_counter() - started) * 1000)

    async def round(self, tool: str, calls: int) -> None:
        """`calls` calls per session (concurrent), or in all (alternating), back to back."""
        latencies = self.latencies.setdefault(tool, [])
        failures = self.failures.setdefault(tool, [])
        calls_by_session = [caller(client, tool, self.liked) for client in self.sessions]

        async def one(call: Call) -> None:
            started = time.perf_counter()
            try:
                ok = await call()
            except Exception as exc:  # counted and reported, not fatal
                ok = False
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
            latencies.append((time.perf_counter() - started) * 1000)
            self.errors[tool] = self.errors.get(tool, 0) + (not ok)

        async def worker(call: Call) -> None:
            for _ in range(calls):
                await one(call)

        cpu_before = cpu_seconds(self.pids)
        started = time.perf_counter()
        with anyio.fail_after(CELL_BUDGET):
            if self.alternate:
                for i in range(calls):
                    await one(calls_by_session[i % len(calls_by_session)])
            else:
                async with anyio.create_task_group() as group:
                    for call in calls_by_session:
                        group.start_soon(worker, call)
        self.elapsed[tool] = self.elapsed.get(tool, 0.0) + time.perf_counter() - started
        self.cpu[tool] = self.cpu.get(tool, 0.0) + cpu_seconds(self.pids) - cpu_before


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far."""
    import psutil

    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


class RedisCounter:
    """Commands Redis executed, from INFO commandstats (reset before each measured round)."""

    def __init__(self, url: str) -> None:
        import redis

        self.connection = redis.Redis.from_url(url)

    def reset(self) -> None:
        self.connection.config_resetstat()

    def count(self) -> dict[str, int]:
        """Calls per command since the reset; our own CONFIG RESETSTAT and INFO are not the servers'."""
        stats = self.connection.info("commandstats")
        return {
            k.removeprefix("cmdstat_"): int(v["calls"])
            for k, v in stats.items()
            if not k.startswith(("cmdstat_config", "cmdstat_info"))
        }

    def close(self) -> None:
        self.connection.close()


# ---- the benchmark ------------------------------------------------------------------------------


async def sign_in_as(instance_url: str, sandbox_url: str, username: str) -> str:
    """The OAuth flow through xcourier's consent page and the sandbox's, as `username`."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as admin:
        consent = {"approve": True, "username": username}
        (await admin.post("/_sandbox/oauth/consent", json=consent)).raise_for_status()
    with anyio.fail_after(STARTUP):
        return (await sign_in(instance_url)).tokens.access_token


async def measure_all(tmp: Path, redis_url: str, quick: bool) -> tuple[list[Cell], dict[str, Any]]:
    from cryptography.fernet import Fernet

    from xcourier.server.sandbox import PUBLIC_CLIENT_ID

    calls = CALLS // (4 if quick else 1)
    store = f"{redis_url}?db=1"
    # Enterprise: self-serve plans can't like through the API (2026-04-20); likePost is measured as a like.
    with SandboxProcess(plan="enterprise") as sandbox, contextlib.ExitStack() as processes:
        liked = post_to_like(sandbox.base_url)
        # local --sandbox: its own in-process sandbox, whose URL it logs before it serves
        local = processes.enter_context(
            Process(
                [*xcourier_command(), "serve", "--sandbox", "--transport", "http", "--port", "0"],
                env=child_env(XCOURIER_STORE=str(tmp / "local-sandbox.db")),
            )
        )
        line = local.wait_line("xcourier sandbox (an offline X emulator) at ", stream="err", timeout=STARTUP)
        inner_sandbox = line.split(" at ", 1)[1].strip()
        line = local.wait_line("serving MCP over streamable HTTP at ", stream="err", timeout=STARTUP)
        local_sandbox_url = line.split(" at ", 1)[1].strip()
        lift_rate_limits(inner_sandbox)
        inner_liked = post_to_like(inner_sandbox)
        local_token_server, local_token_url = serve_http(
            processes,
            ["--api-base-url", sandbox.base_url],
            child_env(XCOURIER_ACCESS_TOKEN=sandbox.token, XCOURIER_STORE=str(tmp / "local-token.db")),
        )
        hosted_env = child_env(XCOURIER_X_CLIENT_ID=PUBLIC_CLIENT_ID, XCOURIER_STORE_KEY=Fernet.generate_key().decode())
        hosted_args = ["--auth", "x", "--api-base-url", sandbox.base_url, "--store", store]
        first, first_url = serve_http(processes, hosted_args, hosted_env)
        first_origin = first_url.removesuffix("/mcp")
        second, _ = serve_http(processes, [*hosted_args, "--public-url", first_origin], hosted_env)
        second_url = listening_url(second)
        alice = await sign_in_as(first_url, sandbox.base_url, "alice")
        bob = await sign_in_as(first_url, sandbox.base_url, "bob")

        counter = RedisCounter(store)
        try:
            async with AsyncExitStack() as sessions:

                async def open_session(url: str, token: str | None) -> Client:
                    return await sessions.enter_async_context(mcp_session(url, token))

                local_token = await open_session(local_token_url, None)
                hosted_alice = await open_session(first_url, alice)
                local_pid, token_pid = local.popen.pid, local_token_server.popen.pid
                first_pid, second_pid = first.popen.pid, second.popen.pid
                cells = [
                    Cell("local --sandbox", [await open_session(local_sandbox_url, None)], inner_liked, [local_pid]),
                    Cell("local token", [local_token], liked, [token_pid]),
                    Cell(
                        "local token, 2 conc",
                        [local_token, await open_session(local_token_url, None)],
                        liked,
                        [token_pid],
                    ),
                    Cell("hosted 1 instance", [hosted_alice], liked, [first_pid], redis=True),
                    Cell(
                        "hosted 2 users conc",
                        [hosted_alice, await open_session(first_url, bob)],
                        liked,
                        [first_pid],
                        redis=True,
                    ),
                    Cell(
                        "hosted alternating",
                        [hosted_alice, await open_session(second_url, alice)],
                        liked,
                        [first_pid, second_pid],
                        alternate=True,
                        redis=True,
                    ),
                ]
                for tool in TOOLS:
                    for cell in cells:
                        await cell.warm(tool)
                    for _ in range(ROUNDS):
                        for cell in cells:
                            if cell.redis:
                                counter.reset()
                            await cell.round(tool, calls // ROUNDS)
                            if cell.redis:
                                counts = cell.redis_commands.setdefault(tool, {})
                                for command, n in counter.count().items():
                                    counts[command] = counts.get(command, 0) + n
        finally:
            counter.close()
    return cells, {"calls": calls}


def rows_of(cells: list[Cell]) -> list[dict[str, Any]]:
    rows = []
    for tool in TOOLS:
        for cell in cells:
            latencies = cell.latencies.get(tool, [])
            rows.append(
                {
                    "cell": cell.name,
                    "tool": tool,
                    "sessions": len(cell.sessions),
                    "calls": len(latencies),
                    "errors": cell.errors.get(tool, 0),
                    "failures": sorted(set(cell.failures.get(tool, [])))[:5],
                    "p50_ms": percentile(latencies, 50),
                    "p95_ms": percentile(latencies, 95),
                    "latency_ms": summary(latencies),
                    "server_cpu_ms_per_call": cell.cpu[tool] * 1000 / len(latencies) if latencies else float("nan"),
                    "calls_per_s": len(latencies) / cell.elapsed[tool] if cell.elapsed.get(tool) else float("nan"),
                    "redis_commands_per_call": (
                        sum(cell.redis_commands[tool].values()) / len(latencies)
                        if tool in cell.redis_commands
                        else None
                    ),
                    "redis_commands": cell.redis_commands.get(tool),
                    "first_call_ms": list(cell.first_ms) if tool == TOOLS[0] else [],
                }
            )
    return rows


async def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("redis-server") is None:
        print("hosted: skipped, redis-server is not installed (apt-get install redis-server)")
        return {"skipped": "redis-server is not installed"}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "redis").mkdir()
        with redis_server(tmp / "redis") as redis_url:
            cells, info = await measure_all(tmp, redis_url, quick)
    rows = rows_of(cells)
    baseline = {r["tool"]: r for r in rows if r["cell"] == "local token"}
    for r in rows:
        r["p50_over_local_token_ms"] = r["p50_ms"] - baseline[r["tool"]]["p50_ms"]
    print(
        table(
            [
                "cell",
                "tool",
                "sessions",
                "calls",
                "err",
                "p50 ms",
                "p95 ms",
                "max ms",
                "p50 - local token",
                "server CPU ms/call",
                "calls/s",
                "redis cmds/call",
            ],
            [
                [
                    r["cell"],
                    r["tool"],
                    r["sessions"],
                    r["calls"],
                    r["errors"],
                    r["p50_ms"],
                    r["p95_ms"],
                    r["latency_ms"]["max"],
                    f"{r['p50_over_local_token_ms']:+.2f}",
                    r["server_cpu_ms_per_call"],
                    f"{r['calls_per_s']:.0f}",
                    "-" if r["redis_commands_per_call"] is None else f"{r['redis_commands_per_call']:.1f}",
                ]
                for r in rows
            ],
            "6. Hosted mode: per-call latency (local vs --auth x on Redis)",
        )
    )
    for r in rows:
        if r["failures"]:
            print(f"  {r['cell']} {r['tool']}: {r['failures'][0]}")
    for r in rows:
        if r["first_call_ms"]:
            r["first_call_extra_ms"] = max(r["first_call_ms"]) - r["p50_ms"]
            print(
                f"  first {r['tool']} per session, {r['cell']}: {', '.join(f'{ms:.1f}' for ms in r['first_call_ms'])} "
                f"ms (p50 {r['p50_ms']:.1f} ms; hosted: the caller's tenant is built on this call)"
            )
    data = {
        "calls_per_cell": info["calls"],
        "rounds": ROUNDS,
        "warmup_per_session": WARMUP,
        "tools": list(TOOLS),
        "rows": rows,
    }
    print(f"\nwrote {write_results('hosted', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a quarter of the calls (a smoke run)")
    args = parser.parse_args()
    anyio.run(run, args.quick)


if __name__ == "__main__":
    main()
