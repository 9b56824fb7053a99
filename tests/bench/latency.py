"""Benchmark 1: tool-call latency and throughput, xcourier vs the raw X call vs the SDK floor.

createPost and likePost against one sandbox process on loopback, over stdio and streamable
HTTP, at concurrency 1 and 16. Three contenders make the same X call to the same sandbox:

  raw       httpx straight to the sandbox from this process (no MCP at all)
  floor     tests/bench/floor_server.py: a minimal MCPServer tool doing the same httpx call
  xcourier  `xcourier serve --api-base-url SANDBOX` with XCOURIER_ACCESS_TOKEN (no --sandbox, so
            the same sandbox process serves everyone)

Repeats are interleaved (floor, xcourier, floor, ...) so drift on the machine hits both alike.
Target: xcourier within 15% of the floor. Server CPU per call is the server process's user + system
time (psutil) around each measured batch, over the batch's calls: what the server itself spends,
whatever the client and the sandbox do, and what a busy machine cannot stretch the way it stretches
latency. The load average is printed with the tables: on a machine shared with other work, ratios near
a goal are noisy (the min-max columns show how much).

    python -m tests.bench.latency [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from .common import (
    PYTHON,
    ROOT,
    Process,
    SandboxProcess,
    child_env,
    load_average,
    load_note,
    summary,
    table,
    write_results,
    xcourier_command,
)

TOOLS = ("createPost", "likePost")
CONCURRENCY = (1, 16)
# createPost at the sizes users post (weighted characters, twitter-text v3: CJK and emoji count 2), at
# concurrency 1: "createPost" is the 37-character ASCII post.
SIZED = {
    "createPost 240": (240, False),
    "createPost 280": (280, False),
    "createPost 37 CJK/emoji": (37, True),
    "createPost 280 CJK/emoji": (280, True),
}
CELLS = [
    *itertools.product(TOOLS, CONCURRENCY),
    *((case, 1) for case in SIZED),
]
TARGET = 1.15
_counter = itertools.count()
_ASCII = "Release notes for the new version, with fixes and docs. "
_CJK = "新しいリリースを公開しました😀🎉"


def unique_text(who: str, weighted: int = 37, cjk: bool = False) -> str:
    """A post of exactly `weighted` weighted characters, unique (the sandbox refuses a duplicate, like X)."""
    tag = f"#{who[0]}{next(_counter)}x{time.monotonic_ns() % 10**9}"
    room = weighted - len(tag) - 1
    # Each CJK character and emoji weighs 2; an odd remainder is made up with one ASCII character.
    body = (_CJK * 40)[: room // 2] + "." * (room % 2) if cjk else (_ASCII * 10)[:room]
    return body + " " + tag


def tool_of(case: str) -> str:
    return case.split()[0]


def arguments(case: str, who: str, liked: str) -> dict[str, Any]:
    if case == "likePost":
        return {"tweet_id": liked}
    weighted, cjk = SIZED.get(case, (37, False))
    return {"text": unique_text(who, weighted, cjk)}


Call = Callable[[str, dict[str, Any]], Awaitable[bool]]  # -> ok


async def measure(
    call: Call, tool: str, who: str, liked: str, calls: int, concurrency: int, budget: float
) -> dict[str, Any]:
    """`calls` calls in `concurrency` workers (bounded by `budget` seconds). Latencies in ms."""
    latencies: list[float] = []
    failures: list[str] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + budget

    async def worker() -> None:
        nonlocal errors, issued
        while issued < calls and time.perf_counter() < deadline:
            issued += 1
            args = arguments(tool, who, liked)
            started = time.perf_counter()
            try:
                ok = await call(tool_of(tool), args)
            except Exception as exc:  # a transport failure is counted and reported, not fatal
                ok = False
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    elapsed = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "failures": failures, "throughput": len(latencies) / elapsed}


def mcp_call(client: Client) -> Call:
    async def call(tool: str, args: dict[str, Any]) -> bool:
        result = await client.call_tool(tool, args)
        return not result.is_error

    return call


def raw_call(http: httpx.AsyncClient, user_id: str) -> Call:
    async def call(tool: str, args: dict[str, Any]) -> bool:
        if tool == "createPost":
            response = await http.post("/2/tweets", json=args)
        else:
            response = await http.post(f"/2/users/{user_id}/likes", json=args)
        return response.is_success

    return call


async def open_stdio(stack: AsyncExitStack, argv: list[str], env: dict[str, str], errlog: Any) -> tuple[Client, int]:
    """The client and the server's pid (the SDK spawns the process: it is the one new child)."""
    before = {child.pid for child in psutil.Process().children()}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(ROOT))
    client = await stack.enter_async_context(Client(stdio_client(params, errlog=errlog)))
    (pid,) = [child.pid for child in psutil.Process().children() if child.pid not in before]
    return client, pid


async def open_http(stack: AsyncExitStack, argv: list[str], env: dict[str, str]) -> tuple[Client, int]:
    process = stack.enter_context(Process(argv, env=env))
    line = process.wait_line("serving MCP over streamable HTTP at ", stream="err")
    url = line.split(" at ", 1)[1].strip()
    return await stack.enter_async_context(Client(url)), process.popen.pid


def thread_cpu_ns(pid: int) -> dict[int, int] | None:
    """CPU time (ns) of each of the process's threads, from Linux's /proc/PID/task/TID/schedstat; None elsewhere.

    psutil's cpu_times count clock ticks (10 ms): over a batch of 60 calls of ~2.5 ms each that is +-7 %,
    too coarse for a goal of 1.15x. schedstat's first field is the thread's time on a CPU in nanoseconds.
    """
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return None
    found: dict[int, int] = {}
    for task in tasks.iterdir():
        try:
            found[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended between listing and reading: its time is in no batch
    return found


def cpu_ms_between(before: dict[int, int] | float, after: dict[int, int] | float) -> float:
    if isinstance(before, dict) and isinstance(after, dict):
        # Per thread, so a worker thread that ends during the batch doesn't subtract its whole life.
        return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e6
    return (float(after) - float(before)) * 1000  # type: ignore[arg-type]


def cpu_sample(pid: int) -> dict[int, int] | float:
    per_thread = thread_cpu_ns(pid)
    if per_thread is not None:
        return per_thread
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def measure_server(
    call: Call, pid: int, tool: str, who: str, liked: str, calls: int, concurrency: int, budget: float
) -> dict[str, Any]:
    """measure(), with the server process's CPU time per call (ms) over the batch."""
    before = cpu_sample(pid)
    result = await measure(call, tool, who, liked, calls, concurrency, budget)
    result["cpu_ms_per_call"] = cpu_ms_between(before, cpu_sample(pid)) / max(1, len(result["latencies"]))
    return result


def contenders(sandbox: SandboxProcess, store: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    found = {
        "floor": (
            [PYTHON, str(Path(__file__).with_name("floor_server.py"))],
            child_env(FLOOR_API_BASE=sandbox.base_url, FLOOR_TOKEN=sandbox.token),
        ),
        "xcourier": (
            [*xcourier_command(), "serve", "--api-base-url", sandbox.base_url],
            child_env(XCOURIER_ACCESS_TOKEN=sandbox.token, XCOURIER_STORE=str(store)),
        ),
    }
    return found


async def run(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    """`repeats`: batches per cell and contender (default 4, 2 with `quick`: even, so each goes first as often);
    more narrow a noisy machine's spread."""
    repeats = repeats or (4 if not quick else 2)
    calls = {1: 60 if not quick else 30, 16: 192 if not quick else 96}
    budget = 20.0  # seconds per measured batch, whatever happens
    cells: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    # Enterprise: X refuses likes through the API on self-serve plans (2026-04-20), and likePost is measured
    # here as a like that X makes, not as a refusal.
    with SandboxProcess(plan="enterprise") as sandbox, tempfile.TemporaryDirectory() as tmp:
        liked = httpx.post(
            f"{sandbox.base_url}/_sandbox/posts", json={"username": "alice", "text": "like me, benchmark"}
        ).json()["data"]["id"]
        errlog = open(Path(tmp) / "stderr.log", "w")  # noqa: SIM115 - closed below
        try:
            # raw: this process straight to the sandbox
            async with httpx.AsyncClient(
                base_url=sandbox.base_url,
                headers={"Authorization": f"Bearer {sandbox.token}"},
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            ) as http:
                call = raw_call(http, sandbox.user_id)
                for tool, conc in CELLS:
                    await measure(call, tool, "raw", liked, 10, conc, budget)  # warm-up
                    for _ in range(repeats):
                        cells.setdefault(("raw", "-", tool, conc), []).append(
                            await measure(call, tool, "raw", liked, calls[conc], conc, budget)
                        )
            for transport in ("stdio", "http"):
                async with AsyncExitStack() as stack:
                    clients: dict[str, tuple[Call, int]] = {}
                    for name, (argv, env) in contenders(sandbox, Path(tmp) / f"{transport}.db").items():
                        if transport == "stdio":
                            client, pid = await open_stdio(stack, argv, env, errlog)
                        else:
                            client, pid = await open_http(
                                stack,
                                [*argv, "--transport", "http", *(["--port", "0"] if name == "xcourier" else [])],
                                env,
                            )
                        clients[name] = (mcp_call(client), pid)
                    for tool, conc in CELLS:
                        for name, (call, _) in clients.items():
                            await measure(call, tool, name, liked, 20, conc, budget)  # warm-up
                        for repeat in range(repeats):
                            # Each repeat runs both back to back, in turns first: whatever drifts during a
                            # run (the sandbox holding more posts, the machine's load) falls on neither alone.
                            order = list(clients.items())
                            for name, (call, pid) in order if repeat % 2 == 0 else reversed(order):
                                cells.setdefault((name, transport, tool, conc), []).append(
                                    await measure_server(call, pid, tool, name, liked, calls[conc], conc, budget)
                                )
        finally:
            errlog.close()

    rows: list[dict[str, Any]] = []
    for (name, transport, tool, conc), runs in cells.items():
        latencies = [x for r in runs for x in r["latencies"]]
        throughputs = [r["throughput"] for r in runs]
        cpu = [r["cpu_ms_per_call"] for r in runs if "cpu_ms_per_call" in r]
        rows.append(
            {
                "server": name,
                "transport": transport,
                "tool": tool,
                "concurrency": conc,
                "calls": len(latencies),
                "errors": sum(r["errors"] for r in runs),
                "failures": sorted({f for r in runs for f in r["failures"]})[:5],
                "latency_ms": summary(latencies),
                "throughput_per_s": summary(throughputs),
                **({"server_cpu_ms_per_call": summary(cpu)} if cpu else {}),
            }
        )
    by_key = {(r["server"], r["transport"], r["tool"], r["concurrency"]): r for r in rows}
    ratios = []
    variants = sorted({r["server"] for r in rows if r["server"].startswith("xcourier")})
    for variant, transport, (tool, conc) in itertools.product(variants, ("stdio", "http"), CELLS):
        xc, floor = by_key[(variant, transport, tool, conc)], by_key[("floor", transport, tool, conc)]
        raw = by_key[("raw", "-", tool, conc)]
        lat = xc["latency_ms"]["median"] / floor["latency_ms"]["median"]
        p99 = xc["latency_ms"]["p99"] / floor["latency_ms"]["p99"]
        thr = floor["throughput_per_s"]["median"] / xc["throughput_per_s"]["median"]
        ratios.append(
            {
                "server": variant,
                "transport": transport,
                "tool": tool,
                "concurrency": conc,
                "latency_median_xcourier_over_floor": lat,
                "latency_p99_xcourier_over_floor": p99,
                "throughput_floor_over_xcourier": thr,
                "latency_median_xcourier_over_raw": xc["latency_ms"]["median"] / raw["latency_ms"]["median"],
                "latency_median_floor_over_raw": floor["latency_ms"]["median"] / raw["latency_ms"]["median"],
                # Median over the repeats of each one's CPU per call; min-max of the ratio pairs the
                # repeats run back to back (in turns first), so drift shows as spread.
                "server_cpu_xcourier_over_floor": xc["server_cpu_ms_per_call"]["median"]
                / floor["server_cpu_ms_per_call"]["median"],
                "server_cpu_ratio_min_max": _paired_cpu_ratios(cells, variant, transport, tool, conc),
                # the headline: median latency at concurrency 1, throughput at 16
                "met": (lat if conc == 1 else thr) <= TARGET,
            }
        )
    print(
        table(
            [
                "server",
                "transport",
                "tool",
                "conc",
                "calls",
                "err",
                "lat median ms",
                "lat p99 ms",
                "lat min-max ms",
                "calls/s median",
                "calls/s min-max",
                "server CPU ms/call",
            ],
            [
                [
                    r["server"],
                    r["transport"],
                    r["tool"],
                    r["concurrency"],
                    r["calls"],
                    r["errors"],
                    r["latency_ms"]["median"],
                    r["latency_ms"]["p99"],
                    f"{r['latency_ms']['min']:.2f}-{r['latency_ms']['max']:.2f}",
                    r["throughput_per_s"]["median"],
                    f"{r['throughput_per_s']['min']:.0f}-{r['throughput_per_s']['max']:.0f}",
                    r["server_cpu_ms_per_call"]["median"] if "server_cpu_ms_per_call" in r else "-",
                ]
                for r in rows
            ],
            "1. Tool-call latency and throughput",
        )
    )
    print()
    print(
        table(
            [
                "server",
                "transport",
                "tool",
                "conc",
                "xc/floor lat median",
                "xc/floor lat p99",
                "floor/xc calls/s",
                "xc/raw lat",
                "floor/raw lat",
                "xc/floor server CPU (min-max)",
                f"target <= {TARGET}",
            ],
            [
                [
                    r["server"],
                    r["transport"],
                    r["tool"],
                    r["concurrency"],
                    r["latency_median_xcourier_over_floor"],
                    r["latency_p99_xcourier_over_floor"],
                    r["throughput_floor_over_xcourier"],
                    r["latency_median_xcourier_over_raw"],
                    r["latency_median_floor_over_raw"],
                    f"{r['server_cpu_xcourier_over_floor']:.2f} ({r['server_cpu_ratio_min_max'][0]:.2f}-"
                    f"{r['server_cpu_ratio_min_max'][1]:.2f})",
                    "met" if r["met"] else "MISSED",
                ]
                for r in ratios
            ],
            "1. Ratios (target: xcourier within 15% of the floor)",
        )
    )
    print(f"\n{load_note()}")
    data = {
        "repeats": repeats,
        "calls_per_repeat": calls,
        "rows": rows,
        "ratios": ratios,
        "target": TARGET,
        "load": load_average(),
    }
    print(f"\nwrote {write_results('latency', data)}")
    return data


def _paired_cpu_ratios(
    cells: dict[tuple[str, str, str, int], list[dict[str, Any]]], variant: str, transport: str, tool: str, conc: int
) -> list[float]:
    pairs = zip(cells[(variant, transport, tool, conc)], cells[("floor", transport, tool, conc)], strict=True)
    ratios = [xc["cpu_ms_per_call"] / floor["cpu_ms_per_call"] for xc, floor in pairs]
    return [min(ratios), max(ratios)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--repeats", type=int, help="batches per cell and contender (default 4)")
    args = parser.parse_args()
    anyio.run(run, args.quick, args.repeats)


if __name__ == "__main__":
    main()
