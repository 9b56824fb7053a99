"""Benchmark 2: cold start, process spawn to the answer of tools/list on stdio.

  floor               tests/bench/floor_server.py (a minimal MCPServer, two tools)
  xcourier --sandbox  `xcourier serve --sandbox` (starts the in-process sandbox too)
  xcourier token      `xcourier serve --api-base-url SANDBOX` with XCOURIER_ACCESS_TOKEN

Each run spawns a fresh process through the SDK's stdio client (mcp.Client) and stops the
clock when tools/list is answered; runs are interleaved. Target: within 30% of the floor.

    python -m tests.bench.coldstart [--runs N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from .common import PYTHON, ROOT, SandboxProcess, child_env, summary, table, write_results, xcourier_command

TARGET = 1.30


async def spawn_to_tools_list(argv: list[str], env: dict[str, str], errlog: Any) -> tuple[float, int]:
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(ROOT))
    started = time.perf_counter()
    with anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = await client.list_tools()
            elapsed = time.perf_counter() - started
    return elapsed * 1000, len(tools.tools)


async def run(runs: int = 10) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    tool_counts: dict[str, int] = {}
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "xcourier.db")
        contenders = {
            "floor (minimal MCPServer)": (
                [PYTHON, str(Path(__file__).with_name("floor_server.py"))],
                child_env(FLOOR_API_BASE=sandbox.base_url, FLOOR_TOKEN=sandbox.token),
            ),
            "xcourier serve --sandbox": ([*xcourier_command(), "serve", "--sandbox"], child_env(XCOURIER_STORE=store)),
            "xcourier serve (token)": (
                [*xcourier_command(), "serve", "--api-base-url", sandbox.base_url],
                child_env(XCOURIER_ACCESS_TOKEN=sandbox.token, XCOURIER_STORE=store),
            ),
        }
        with open(Path(tmp) / "stderr.log", "w") as errlog:
            for argv, env in contenders.values():  # warm the OS page cache and .pyc files
                await spawn_to_tools_list(argv, env, errlog)
            for _ in range(runs):
                for name, (argv, env) in contenders.items():
                    ms, count = await spawn_to_tools_list(argv, env, errlog)
                    samples.setdefault(name, []).append(ms)
                    tool_counts[name] = count
    floor = summary(samples["floor (minimal MCPServer)"])
    rows = []
    for name, values in samples.items():
        s = summary(values)
        ratio = s["median"] / floor["median"]
        rows.append(
            {
                "server": name,
                "tools": tool_counts[name],
                "ms": s,
                "ratio_to_floor": ratio,
                "min_ratio_to_floor": s["min"] / floor["min"],
                "met": ratio <= TARGET,
            }
        )
    print(
        table(
            [
                "server",
                "tools",
                "runs",
                "median ms",
                "p99 ms",
                "min-max ms",
                "median / floor",
                "min / floor",
                f"target <= {TARGET}",
            ],
            [
                [
                    r["server"],
                    r["tools"],
                    r["ms"]["n"],
                    r["ms"]["median"],
                    r["ms"]["p99"],
                    f"{r['ms']['min']:.0f}-{r['ms']['max']:.0f}",
                    r["ratio_to_floor"],
                    r["min_ratio_to_floor"],
                    "-" if r["server"].startswith("floor") else ("met" if r["met"] else "MISSED"),
                ]
                for r in rows
            ],
            "2. Cold start: spawn to tools/list answered (stdio)",
        )
    )
    data = {"runs": runs, "rows": rows, "target": TARGET}
    print(f"\nwrote {write_results('coldstart', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    anyio.run(run, args.runs)


if __name__ == "__main__":
    main()
