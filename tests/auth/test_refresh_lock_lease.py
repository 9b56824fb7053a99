"""The Redis refresh lock: a holder killed mid-refresh costs the next caller seconds, a live one keeps it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import anyio
import pytest

from xcourier.server.auth.redis_store import LOCK_LEASE, RedisTokenStore

pytestmark = pytest.mark.anyio

HOLD_LOCK = textwrap.dedent(
    """
    import sys, anyio
    from xcourier.server.auth.redis_store import RedisTokenStore

    async def main():
        async with RedisTokenStore(sys.argv[1], prefix=sys.argv[2]).refresh_lock("42"):
            print("locked", flush=True)
            await anyio.sleep_forever()  # a refresh that never ends, until SIGKILL

    anyio.run(main)
    """
)


async def test_a_holder_killed_during_a_refresh_holds_the_lock_for_one_lease_at_most(redis_url: str):
    import redis.asyncio as redis

    prefix = f"test-{uuid.uuid4().hex}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, redis_url, prefix], stdout=subprocess.PIPE, text=True)
    raw = redis.from_url(redis_url, decode_responses=True)
    store = RedisTokenStore(redis_url, prefix=prefix)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holder.kill()  # SIGKILL mid-refresh: no release, no clean-up
        holder.wait(timeout=30)
        left = await raw.pttl(f"{prefix}:refresh-lock:42")
        assert 0 < left <= LOCK_LEASE * 1000  # was 60 s: the whole refresh timeout and then some
        # Bounded only so a regression fails instead of hanging; the lease decides when it is free.
        with anyio.fail_after(LOCK_LEASE * 6):
            async with store.refresh_lock("42"):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
        await store.aclose()
        await raw.aclose()


async def test_a_live_holder_keeps_the_lock_past_its_lease(redis_url: str):
    import redis.asyncio as redis

    prefix = f"test-{uuid.uuid4().hex}"
    lease = 0.3
    store = RedisTokenStore(redis_url, prefix=prefix, lock_lease=lease)
    raw = redis.from_url(redis_url, decode_responses=True)
    try:
        async with store.refresh_lock("42"):
            owner = await raw.get(f"{prefix}:refresh-lock:42")
            await anyio.sleep(lease * 4)  # a slow refresh (X taking its time), not a synchronisation
            # Still ours: renewed while we lived, so no second refresher could have taken it.
            assert await raw.get(f"{prefix}:refresh-lock:42") == owner
            assert not await raw.set(f"{prefix}:refresh-lock:42", "intruder", nx=True, px=10_000)
        assert await raw.get(f"{prefix}:refresh-lock:42") is None  # released on the way out
    finally:
        await store.aclose()
        await raw.aclose()


async def test_an_error_under_the_lock_comes_out_as_itself_and_frees_the_lock(redis_url: str):
    import redis.asyncio as redis

    prefix = f"test-{uuid.uuid4().hex}"
    store = RedisTokenStore(redis_url, prefix=prefix)
    raw = redis.from_url(redis_url, decode_responses=True)
    try:
        # Not an ExceptionGroup: callers catch LoginRequiredError and the like by their own class.
        with pytest.raises(LookupError, match="refused"):
            async with store.refresh_lock("42"):
                raise LookupError("refused")
        assert await raw.get(f"{prefix}:refresh-lock:42") is None
    finally:
        await store.aclose()
        await raw.aclose()
