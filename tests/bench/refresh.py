"""Benchmark 5: refresh contention. 4 processes x 32 concurrent likePost calls across a token rotation.

One login (the sandbox's public client, authorization code + PKCE, the test playing the browser)
is stored in a temporary SQLite file shared by 4 worker processes (tests/bench/refresh_worker.py).
Rounds alternate: "fresh" (the access token is valid) and "expired" (every token is expired at the
sandbox through its admin API just before the round, so each process meets a 401 and the
TokenManagers must agree on one rotation). Reported: refresh grants per round at the sandbox
(must be 0 for fresh, exactly 1 for expired), errors, per-call latency and the round's wall
time; the added latency is expired minus fresh.

    python -m tests.bench.refresh [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from xcourier.server.auth import oauth
from xcourier.server.auth.login import login
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.sandbox import PUBLIC_CLIENT_ID

from .common import PYTHON, Process, SandboxProcess, child_env, summary, table, write_results

PROCESSES = 4
CALLS = 32


async def follow(url: str) -> None:
    """What a browser does: open the authorize page, follow its redirect to the callback."""
    async with httpx.AsyncClient() as http:
        authorize = await http.get(url)
        await http.get(authorize.headers["location"])


async def log_in(base_url: str, store: SQLiteTokenStore) -> None:
    app = oauth.OAuthApp(client_id=PUBLIC_CLIENT_ID, api_base_url=base_url)
    send, receive = anyio.create_memory_object_stream[str](1)

    async def browse() -> None:
        await follow(await receive.receive())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(browse)
        await login(app, oauth.DEFAULT_SCOPES, store, port=0, timeout=30, show_url=send.send_nowait)


def refresh_grants(admin: httpx.Client) -> int:
    return int(admin.get("/_sandbox/oauth/grants").raise_for_status().json()["grants"].get("refresh_token", 0))


def run(rounds: int = 5) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {"fresh": [], "expired": []}
    with (
        SandboxProcess() as sandbox,
        tempfile.TemporaryDirectory() as tmp,
        httpx.Client(base_url=sandbox.base_url, timeout=30) as admin,
    ):
        store_path = Path(tmp) / "store" / "xcourier.db"
        anyio.run(log_in, sandbox.base_url, SQLiteTokenStore(store_path))
        tweet = admin.post("/_sandbox/posts", json={"username": "bob", "text": "like me from everywhere"}).json()
        tweet_id = tweet["data"]["id"]
        workers = [
            Process(
                [PYTHON, "-m", "tests.bench.refresh_worker", str(store_path), tweet_id, str(CALLS)],
                env=child_env(),
            )
            for _ in range(PROCESSES)
        ]
        try:
            for worker in workers:
                worker.wait_line("ready")
            for index in range(rounds * 2):
                kind = "fresh" if index % 2 == 0 else "expired"
                if kind == "expired":
                    admin.post("/_sandbox/tokens/expire", json={}).raise_for_status()
                before = refresh_grants(admin)
                for worker in workers:
                    worker.send("go\n")
                reports = [json.loads(worker.wait_line("latencies", timeout=60)) for worker in workers]
                grants = refresh_grants(admin) - before
                results[kind].append(
                    {
                        "grants": grants,
                        "errors": sum(len(r["errors"]) for r in reports),
                        "error_texts": sorted({e for r in reports for e in r["errors"]})[:3],
                        "latencies": [x for r in reports for x in r["latencies"]],
                        "wall_ms": max(r["wall_ms"] for r in reports),
                    }
                )
                time.sleep(0.05)
        finally:
            for worker in workers:
                worker.stop()

    rows = []
    for kind, rs in results.items():
        rows.append(
            {
                "tokens": kind,
                "rounds": len(rs),
                "grants_per_round": [r["grants"] for r in rs],
                "errors": sum(r["errors"] for r in rs),
                "error_texts": sorted({e for r in rs for e in r["error_texts"]})[:3],
                "latency_ms": summary([x for r in rs for x in r["latencies"]]),
                "wall_ms": summary([r["wall_ms"] for r in rs]),
            }
        )
    fresh, expired = rows
    added = {
        "latency_median_ms": expired["latency_ms"]["median"] - fresh["latency_ms"]["median"],
        "latency_p99_ms": expired["latency_ms"]["p99"] - fresh["latency_ms"]["p99"],
        "wall_median_ms": expired["wall_ms"]["median"] - fresh["wall_ms"]["median"],
    }
    met = all(g == 1 for g in expired["grants_per_round"]) and all(g == 0 for g in fresh["grants_per_round"])
    met = met and fresh["errors"] == 0 and expired["errors"] == 0
    print(
        table(
            [
                "tokens",
                "rounds",
                "refresh grants per round",
                "errors",
                "call median ms",
                "call p99 ms",
                "call min-max ms",
                "round wall median ms",
                "round wall min-max ms",
            ],
            [
                [
                    r["tokens"],
                    r["rounds"],
                    ",".join(map(str, r["grants_per_round"])),
                    r["errors"],
                    r["latency_ms"]["median"],
                    r["latency_ms"]["p99"],
                    f"{r['latency_ms']['min']:.1f}-{r['latency_ms']['max']:.1f}",
                    r["wall_ms"]["median"],
                    f"{r['wall_ms']['min']:.0f}-{r['wall_ms']['max']:.0f}",
                ]
                for r in rows
            ],
            f"5. Refresh contention: {PROCESSES} processes x {CALLS} concurrent likePost calls",
        )
    )
    print(
        f"\nadded by the rotation: median {added['latency_median_ms']:.1f} ms, p99 {added['latency_p99_ms']:.1f} ms, "
        f"round wall {added['wall_median_ms']:.1f} ms; one grant per rotation and no errors: "
        f"{'met' if met else 'MISSED'}"
    )
    data = {"processes": PROCESSES, "calls": CALLS, "rows": rows, "added": added, "met": met}
    print(f"\nwrote {write_results('refresh', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each kind (default 5)")
    args = parser.parse_args()
    run(args.rounds)


if __name__ == "__main__":
    main()
