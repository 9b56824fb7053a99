"""The pace and spend guards' reservations, on the store the audit trail lives in."""

from __future__ import annotations

import pytest

from xcourier.server.audit import RESERVED, AuditLog, Guards
from xcourier.server.auth.memory_store import MemoryTokenStore

pytestmark = pytest.mark.anyio


def guards(store: MemoryTokenStore, **limits: object) -> tuple[AuditLog, Guards]:
    audit = AuditLog(store, "me")
    return audit, Guards(audit, store=store, **{"max_writes_per_hour": None, "daily_budget": None, **limits})


async def test_an_admitted_write_counts_until_its_outcome_settles_it() -> None:
    store = MemoryTokenStore()
    audit, limits = guards(store, max_writes_per_hour=1)
    async with limits.admitted(0.015, "createPost") as refusal:
        assert refusal is None
        assert [e.outcome for e in await audit.since(3600)] == [RESERVED]
        assert "on their way to X" in (await limits.refusal(0.015) or "")
        await audit.record("createPost", "ok", cost=0.015, ids={"post_id": "1"})
    # The outcome replaced the reservation: one write, shown once.
    assert [(e.tool, e.outcome) for e in await audit.since(3600)] == [("createPost", "ok")]
    assert "next write is allowed at" in (await limits.refusal(0.015) or "")


async def test_a_refused_write_reserves_nothing() -> None:
    store = MemoryTokenStore()
    audit, limits = guards(store, daily_budget=0.01)
    async with limits.admitted(0.015, "createPost") as refusal:
        assert refusal is not None and "--daily-budget" in refusal
    assert await audit.since(3600) == []


async def test_a_call_that_ends_without_an_outcome_keeps_its_place_as_unknown() -> None:
    store = MemoryTokenStore()
    audit, limits = guards(store, max_writes_per_hour=5)
    with pytest.raises(RuntimeError):
        async with limits.admitted(0.015, "sendDirectMessage"):
            raise RuntimeError("failed before the outcome was recorded")
    entries = await audit.since(3600)
    assert [(e.tool, e.outcome, e.cost) for e in entries] == [("sendDirectMessage", "unknown", 0.015)]


async def test_without_limits_nothing_is_reserved_or_locked() -> None:
    store = MemoryTokenStore()
    audit, limits = guards(store)
    async with limits.admitted(0.015, "createPost") as refusal:
        assert refusal is None
    assert await audit.since(3600) == []
