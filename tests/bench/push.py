"""Benchmark: newPost pushed by X (X Activity API) vs polled, for N = 10 / 100 / 1,000 watched users.

Push, in real time: an in-process sandbox (HTTP on loopback, in a thread) and a Runtime with the push
source on and the poll loop off. All N users are subscribed (each gets a `post.create` subscription;
`post.delete` ones while the self-serve limit of 1,500 leaves room), then POSTS posts are made at
random watched users, one every PACE seconds, straight into the sandbox (no HTTP request of the
benchmark counts as X's). Detection delay: from just before the sandbox makes the post to the
watcher publishing that user's URI (what a subscriber's notification follows). X requests per
hour: the requests xcourier made to the sandbox while the posts flowed, per hour of that time (the
stream itself is one request, opened before).

Poll, in simulated time (tests/bench/watcher.py's method, --watch poll): the same N users under
X's per-user budget of B = 300 requests per 900 s window on each read endpoint, 200 posts at random
times in one simulated hour, both poll modes (per-user timelines, and users batched into recent
searches). The delay is from a post's creation to the poll that finds it.

    python -m tests.bench.push [--posts P]
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import time
from typing import Any

import anyio

from .common import percentile, table, write_results
from .watcher import HOUR, POSTS, WARMUP, SimClock, W

USERS = (10, 100, 1000)
PUSH_POSTS = 200
PACE = 0.02
BUDGET = 300


async def measure_push(n: int, posts: int, seed: int = 0) -> dict[str, Any]:
    from xcourier.server.runtime import Runtime
    from xcourier.server.sandbox import Sandbox, SandboxConfig, SandboxServer
    from xcourier.server.sandbox.config import DEFAULT_RATE_LIMITS
    from xcourier.server.settings import Settings

    rng = random.Random(seed)
    # Subscribing 1,000 users looks each one up: lift the per-15-minute limits for the set-up.
    sandbox = Sandbox(SandboxConfig(rate_limits={k: 10**9 for k in DEFAULT_RATE_LIMITS}, access_token_ttl=10**8))
    names = [f"w{i}" for i in range(n)]
    users = {name: sandbox.add_user(name) for name in names}
    pending: dict[str, list[float]] = {name: [] for name in names}
    delays: list[float] = []
    with SandboxServer(sandbox) as server:
        settings = Settings(sandbox=True, poll_interval=60.0, log_level="WARNING")
        async with Runtime.open(settings, sandbox_server=server, run_watcher=False, run_push=True) as runtime:
            watcher, push = runtime.watcher, runtime.push
            assert push is not None

            async def on_publish(uri: str) -> None:
                now = time.perf_counter()
                name = uri.split("/")[3]
                delays.extend(now - made for made in pending[name])
                pending[name].clear()

            watcher.publishers.append(on_publish)
            for name in names:
                await watcher.subscribe(f"x://users/{name}/posts", "bench")
            with anyio.fail_after(60):
                while push.state != "streaming":
                    await anyio.sleep(0.01)
            pushed = sum(1 for w in watcher.status()["watched"] if w["via"] == "push")
            calls_before = sum(sandbox.calls().values())
            started = time.perf_counter()
            for index in range(posts):
                author = rng.choice(names)
                pending[author].append(time.perf_counter())
                sandbox.create_post(users[author], f"post {index} by {author}", None)
                await anyio.sleep(PACE)  # the posting rate, not a synchronisation
            with anyio.fail_after(60):
                while any(pending.values()):
                    await anyio.sleep(0.01)
            elapsed = time.perf_counter() - started
            requests = sum(sandbox.calls().values()) - calls_before
            subscriptions = sandbox.activity.count()
    return {
        "users": n,
        "mode": "push (X Activity API)",
        "posts": posts,
        "pushed_users": pushed,
        "subscriptions": subscriptions,
        "delivered": len(delays),
        "p50_delay_s": percentile(delays, 50),
        "p99_delay_s": percentile(delays, 99),
        "requests_per_hour": requests / elapsed * HOUR,
        "seconds": elapsed,
    }


async def simulate_poll(n: int, use_search: bool, seed: int = 0) -> dict[str, Any]:
    """tests/bench/watcher.py's simulation, keeping every delay (for the median)."""
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
    users = {}
    for name in names:
        users[name] = sandbox.add_user(name)
        sandbox.create_post(users[name], f"hello from {name}", None)
    clock.t += 3600
    pending: dict[str, list[float]] = {name: [] for name in names}
    delays: list[float] = []
    with SandboxServer(sandbox) as server:
        settings = Settings(sandbox=True, poll_interval=1.0, watch="poll", watch_search=use_search, log_level="WARNING")
        async with Runtime.open(settings, sandbox_server=server, run_watcher=False, clock=clock) as runtime:
            watcher = runtime.watcher

            async def on_publish(uri: str) -> None:
                name = uri.split("/")[3]
                delays.extend(clock.t - posted for posted in pending[name])
                pending[name].clear()

            watcher.publishers.append(on_publish)
            for name in names:
                await watcher.subscribe(f"x://users/{name}/posts", "bench")
            sandbox.set_rate_limit(GET_USER_TWEETS, BUDGET)
            sandbox.set_rate_limit(GET_SEARCH_RECENT, BUDGET)
            clock.t += W
            measure_from = clock.t + WARMUP
            measure_to = measure_from + HOUR
            post_times = sorted(rng.uniform(measure_from, measure_to) for _ in range(POSTS))
            end = measure_to + 3 * n * W / BUDGET + W
            made = 0
            calls: dict[str, int] = {}
            while clock.t < end and (made < len(post_times) or any(pending.values())):
                next_due = min(w.next_due for w in watcher._watched.values())
                next_post = post_times[made] if made < len(post_times) else math.inf
                for label, at in (("from", measure_from), ("to", measure_to)):
                    if label not in calls and min(next_due, next_post) >= at:
                        calls[label] = sum(sandbox.calls().get(k, 0) for k in (GET_USER_TWEETS, GET_SEARCH_RECENT))
                if next_post <= next_due:
                    clock.t = max(clock.t, next_post)
                    author = rng.choice(names)
                    sandbox.create_post(users[author], f"post {made} by {author}", None)
                    pending[author].append(clock.t)
                    made += 1
                else:
                    clock.t = max(clock.t, next_due)
                    await watcher.poll_due()
            calls.setdefault("to", sum(sandbox.calls().get(k, 0) for k in (GET_USER_TWEETS, GET_SEARCH_RECENT)))
    return {
        "users": n,
        "mode": "poll, batched searches" if use_search else "poll, per-user timelines",
        "posts": POSTS,
        "delivered": len(delays),
        "p50_delay_s": percentile(delays, 50),
        "p99_delay_s": percentile(delays, 99),
        "requests_per_hour": calls["to"] - calls.get("from", 0),
    }


def delay(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"


async def run(posts: int = PUSH_POSTS) -> dict[str, Any]:
    logging.getLogger("xcourier").setLevel(logging.ERROR)
    rows: list[dict[str, Any]] = []
    for n in USERS:
        with anyio.fail_after(300):
            rows.append(await measure_push(n, posts))
        for use_search in (False, True):
            with anyio.fail_after(300):
                rows.append(await simulate_poll(n, use_search))
    print(
        table(
            ["N", "mode", "posts", "delivered", "p50 delay", "p99 delay", "X requests/h"],
            [
                [
                    r["users"],
                    r["mode"],
                    r["posts"],
                    r["delivered"],
                    delay(r["p50_delay_s"]),
                    delay(r["p99_delay_s"]),
                    f"{r['requests_per_hour']:.0f}",
                ]
                for r in rows
            ],
            f"newPost push vs poll: detection delay and X requests per hour (poll budget {BUDGET} requests "
            f"per {W:.0f} s window per endpoint)",
        )
    )
    data = {"budget": BUDGET, "window_s": W, "pace_s": PACE, "rows": rows}
    print(f"\nwrote {write_results('push', data)}")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=PUSH_POSTS, help=f"posts pushed per N (default {PUSH_POSTS})")
    args = parser.parse_args()
    anyio.run(run, args.posts)


if __name__ == "__main__":
    main()
