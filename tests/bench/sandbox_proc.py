"""A sandbox in its own process for the benchmarks: prints one JSON line, exits when stdin closes.

    python -m tests.bench.sandbox_proc [--limit N] [--ttl S] [--plan PLAN]

--limit sets every endpoint's rate limits, the 15-minute ones and the 24-hour ones per user and per
app (the benchmarks make far more calls than X's published limits allow: a run likes one post
thousands of times, past X's 1,000 likes per user and day). --plan picks the X plan the sandbox plays (default: the
sandbox's own, pay-per-use, which refuses likes as X does on self-serve plans since 2026-04-20).
"""

from __future__ import annotations

import argparse
import json
import sys

from xcourier.server.sandbox import Sandbox, SandboxConfig, SandboxServer
from xcourier.server.sandbox.config import DEFAULT_APP_DAILY_LIMITS, DEFAULT_RATE_LIMITS, DEFAULT_USER_DAILY_LIMITS
from xcourier.server.sandbox.plans import DEFAULT_PLAN, PLANS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=10**9)
    parser.add_argument("--ttl", type=float, default=7200.0)
    parser.add_argument("--plan", choices=PLANS, default=DEFAULT_PLAN)
    args = parser.parse_args()
    config = SandboxConfig(
        rate_limits={key: args.limit for key in DEFAULT_RATE_LIMITS},
        user_daily_limits={key: args.limit for key in DEFAULT_USER_DAILY_LIMITS},
        app_daily_limits={key: args.limit for key in DEFAULT_APP_DAILY_LIMITS},
        access_token_ttl=args.ttl,
        plan=args.plan,
    )
    server = SandboxServer(Sandbox(config), host="127.0.0.1", port=0).start()
    token, _ = server.sandbox.mint_token("xcourier_demo")
    user = server.sandbox.user_by_username("xcourier_demo")
    assert user is not None
    print(
        json.dumps(
            {"base_url": server.base_url, "access_token": token, "user_id": user.id, "username": "xcourier_demo"}
        ),
        flush=True,
    )
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
