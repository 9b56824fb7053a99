"""Benchmark 4: watcher efficiency. N watched users under a per-window budget B, in simulated time.

An in-process sandbox (HTTP on loopback, in a thread) and the real Watcher share one simulated
clock (SandboxConfig(clock=...), Runtime.open(..., run_watcher=False, clock=...)); this loop
drives watcher.poll_due() itself, jumping the clock to the next due poll or the next post. Posts
are made at random times through the sandbox admin API (each watched user has one older post, so
every user has a cursor and can be folded into search from the start) (POST /_sandbox/posts), each by a random
watched user; a post counts as notified when the watcher publishes that user's URI.

The budget: GET /2/users/{id}/tweets and GET /2/tweets/search/recent both get B requests per
W = 900 s window per user (the baseline at subscription time runs unlimited, then the clock jumps a
window ahead so the budget starts whole). --poll-interval is 1 s so the budget, not the floor on
the interval, is what binds. Measured over one simulated hour after a 15-minute warm-up.

Floor for per-user polling: each user polled every N*W/B seconds at best, so the mean delay from a
post to its notification is at least N*W/(2B).

    python -m tests.bench.watcher [--budget B] [--runs R]
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import time
from typing import Any

import anyio
import httpx

from .common import summary, table, write_results

W = 900.0
WARMUP = 900.0
HOUR = 3600.0
USERS = (10, 100, 1000)
POSTS = 200
MAX_STEPS = 200_000


class SimClock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


async def simulate(n: int, budget: int, use_search: bool, seed: int) -> dict[str, Any]:
    from xcourier.server.runtime import Runtime
    from xcourier.server.sandbox import Sandbox, SandboxConfig, SandboxServer
    from xcourier.server.sandbox.config import DEFAULT_RATE_LIMITS, GET_SEARCH_RECENT, GET_USER_TWEETS
    from xcourier.server.settings import Settings

    rng = random.Random(seed)
    clock = SimClock(math.floor(time.time()))
    config = SandboxConfig(
        clock=clock, rate_limits={k: 10**9 for k in DEFAULT_RATE_LIMITS}, rate_limit_window=W, access_token_ttl=10**8
    )
    sandbox = Sandbox(config)
    names = [f"w{i}" for i in range(n)]
    for name in names:
        # one old post each: a user with no post yet has no cursor and can't be searched
        sandbox.create_post(sandbox.add_user(name), f"hello from {name}", None)
    clock.t += 3600
    pending: dict[str, list[float]] = {name: [] for name in names}
    delays: list[float] = []

    with SandboxServer(sandbox) as server, httpx.Client(base_url=server.base_url) as admin:
        settings = Settings(sandbox=True, poll_interval=1.0, watch_search=use_search, log_level="WARNING")
        async with Runtime.open(settings, sandbox_server=server, run_watcher=False, clock=clock) as runtime:
            watcher = runtime.watcher

            async def on_publish(uri: str) -> None:
                name = uri.split("/")[3]
                delays.extend(clock.t - posted for posted in pending[name])
                pending[name].clear()

            watcher.publishers.append(on_publish)
            for name in names:
                await watcher.subscribe(f"x://users/{name}/posts", "bench")
            # The budget starts now, whole.
            sandbox.set_rate_limit(GET_USER_TWEETS, budget)
            sandbox.set_rate_limit(GET_SEARCH_RECENT, budget)
            clock.t += W
            start = clock.t
            measure_from, measure_to = start + WARMUP, start + WARMUP + HOUR
            post_times = sorted(rng.uniform(measure_from, measure_to) for _ in range(POSTS))
            drain = 3 * n * W / budget + W
            end = measure_to + drain
            calls_at: dict[str, dict[str, int]] = {}
            posts_made = 0
            steps = 0
            watched = watcher._watched
            while clock.t < end and steps < MAX_STEPS:
                steps += 1
                next_due = min(w.next_due for w in watched.values())
                next_post = post_times[posts_made] if posts_made < len(post_times) else math.inf
                for label, at in (("from", measure_from), ("to", measure_to)):
                    if label not in calls_at and min(next_due, next_post) >= at:
                        clock.t = max(clock.t, at)
                        calls_at[label] = sandbox.calls()
                if next_post <= next_due:
                    clock.t = max(clock.t, next_post)
                    author = rng.choice(names)
                    admin.post(
                        "/_sandbox/posts", json={"username": author, "text": f"post {posts_made} by {author}"}
                    ).raise_for_status()
                    pending[author].append(clock.t)
                    posts_made += 1
                else:
                    clock.t = max(clock.t, next_due)
                    await watcher.poll_due()
                if posts_made == len(post_times) and not any(pending.values()) and clock.t >= measure_to:
                    break
            calls_at.setdefault("to", sandbox.calls())
            used = {
                k: calls_at["to"].get(k, 0) - calls_at.get("from", {}).get(k, 0)
                for k in (GET_USER_TWEETS, GET_SEARCH_RECENT)
            }
    undelivered = sum(len(v) for v in pending.values())
    return {
        "users": n,
        "mode": "batched (search)" if use_search else "per-user (timeline)",
        "seed": seed,
        "requests_per_hour": sum(used.values()),
        "requests_by_endpoint": used,
        "mean_delay_s": sum(delays) / len(delays) if delays else math.nan,
        "p99_delay_s": sorted(delays)[max(0, math.ceil(0.99 * len(delays)) - 1)] if delays else math.nan,
        "delivered": len(delays),
        "undelivered": undelivered,
        "floor_mean_delay_s": n * W / (2 * budget),
        "budget_per_hour": budget * HOUR / W,
        "steps": steps,
    }


async def run(budget: int = 300, runs: int = 1) -> dict[str, Any]:
    logging.getLogger("xcourier").setLevel(logging.ERROR)
    results: list[dict[str, Any]] = []
    for n in USERS:
        for use_search in (False, True):
            for seed in range(runs):
                with anyio.fail_after(240):
                    results.append(await simulate(n, budget, use_search, seed))
    rows = []
    for n in USERS:
        for mode in ("per-user (timeline)", "batched (search)"):
            rs = [r for r in results if r["users"] == n and r["mode"] == mode]
            delay = summary([r["mean_delay_s"] for r in rs])
            rows.append(
                {
                    "users": n,
                    "mode": mode,
                    "runs": len(rs),
                    "posts": POSTS * len(rs),
                    "requests_per_hour": summary([r["requests_per_hour"] for r in rs]),
                    "mean_delay_s": delay,
                    "p99_delay_s": summary([r["p99_delay_s"] for r in rs]),
                    "floor_mean_delay_s": rs[0]["floor_mean_delay_s"],
                    "delay_over_floor": delay["median"] / rs[0]["floor_mean_delay_s"],
                    "undelivered": sum(r["undelivered"] for r in rs),
                }
            )
    print(
        table(
            [
                "N",
                "mode",
                "runs",
                "requests/h median",
                "min-max",
                "mean delay s (median)",
                "min-max s",
                "p99 delay s",
                "floor N*W/(2B) s",
                "delay / floor",
                "undelivered",
            ],
            [
                [
                    r["users"],
                    r["mode"],
                    r["runs"],
                    r["requests_per_hour"]["median"],
                    f"{r['requests_per_hour']['min']:.0f}-{r['requests_per_hour']['max']:.0f}",
                    r["mean_delay_s"]["median"],
                    f"{r['mean_delay_s']['min']:.1f}-{r['mean_delay_s']['max']:.1f}",
                    r["p99_delay_s"]["median"],
                    r["floor_mean_delay_s"],
                    r["delay_over_floor"],
                    r["undelivered"],
                ]
                for r in rows
            ],
            f"4. Watcher efficiency: budget B = {budget} requests per {W:.0f} s window per endpoint "
            f"({budget * HOUR / W:.0f}/h), {POSTS} posts in one simulated hour",
        )
    )
    data = {"budget": budget, "window_s": W, "posts": POSTS, "rows": rows, "runs": results}
    print(f"\nwrote {write_results('watcher', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--runs", type=int, default=1, help="seeds per cell (default 1)")
    args = parser.parse_args()
    anyio.run(run, args.budget, args.runs)


if __name__ == "__main__":
    main()
