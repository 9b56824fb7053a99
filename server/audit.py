"""Accountability: what the agent did on the account, and what it cost.

Every write (and every refusal of one) is appended to the store: time, account, tool, the X
ids involved, the outcome and its estimated price. Post text is kept; DM text never is, only
the recipient and the length. The same records drive the pace and spend guards, so the
limits hold across restarts and across processes sharing a store.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .auth.store import TokenStore

HOUR = 3600.0
DAY = 24 * HOUR

# X's published pay-per-use prices (USD per request or per resource), as of 2026.
DEFAULT_PRICES: dict[str, float] = {
    "post_create": 0.015,
    "post_create_with_url": 0.20,
    "dm": 0.015,
    "like": 0.015,
    "repost": 0.015,
    "delete": 0.010,
    "post_read": 0.005,
    "user_read": 0.010,
}

# Outcomes after which X may have done (and billed) the work.
_REACHED_X = ("ok", "unknown")
_URL = re.compile(r"https?://|\b[a-z0-9-]+\.(com|org|net|io|co|dev|app|ly)\b", re.IGNORECASE)


def has_url(text: str | None) -> bool:
    return bool(text and _URL.search(text))


@dataclass(frozen=True)
class Entry:
    at: float
    account: str
    tool: str
    outcome: str  # ok | error | refused | unknown | dry-run
    cost: float
    ids: Mapping[str, str]
    detail: str = ""
    text: str | None = None  # post text only; a DM's text is never recorded
    write: bool = True
    account_id: str = ""  # hosted mode: the X user id, which, unlike a username, is never reused

    def record(self) -> dict[str, Any]:
        record = {
            "write": self.write,
            "account": self.account,
            "tool": self.tool,
            "outcome": self.outcome,
            "cost": self.cost,
            "ids": dict(self.ids),
            "detail": self.detail,
            "text": self.text,
        }
        return {**record, "account_id": self.account_id} if self.account_id else record

    @classmethod
    def from_record(cls, at: float, record: Mapping[str, Any]) -> Entry:
        return cls(
            at=at,
            account=str(record.get("account", "")),
            tool=str(record.get("tool", "")),
            outcome=str(record.get("outcome", "")),
            cost=float(record.get("cost", 0.0)),
            ids=dict(record.get("ids") or {}),
            detail=str(record.get("detail", "")),
            text=record.get("text"),
            write=bool(record.get("write", True)),
            account_id=str(record.get("account_id", "")),
        )


class AuditLog:
    def __init__(
        self, store: TokenStore, account: str, *, account_id: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.account = account
        # Hosted mode: many users share the store, and each sees (and is limited by) only their own,
        # by user id: a username freed by a rename and taken by someone else doesn't bring its history.
        self.account_id = account_id
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    async def record(
        self,
        tool: str,
        outcome: str,
        *,
        cost: float,
        ids: Mapping[str, str],
        detail: str = "",
        text: str | None = None,
        write: bool = True,
    ) -> None:
        billed = cost if outcome in _REACHED_X else 0.0
        entry = Entry(self.now(), self.account, tool, outcome, billed, ids, detail, text, write, self.account_id)
        await self._store.append_audit(entry.at, entry.record())

    async def since(self, seconds: float) -> list[Entry]:
        records = await self._store.audit_since(self.now() - seconds)
        entries = [Entry.from_record(at, record) for at, record in records]
        return [e for e in entries if e.account_id == self.account_id] if self.account_id else entries


class Guards:
    """--max-writes-per-hour and --daily-budget: refuse a write before it reaches X."""

    def __init__(self, audit: AuditLog, *, max_writes_per_hour: int | None, daily_budget: float | None) -> None:
        self._audit = audit
        self.max_writes_per_hour = max_writes_per_hour
        self.daily_budget = daily_budget

    async def refusal(self, cost: float) -> str | None:
        """Why this write must not go ahead, with when the limit frees up; None if it may."""
        if self.max_writes_per_hour is not None:
            writes = [e for e in await self._audit.since(HOUR) if e.write and e.outcome in _REACHED_X]
            if len(writes) >= self.max_writes_per_hour:
                frees = writes[len(writes) - self.max_writes_per_hour].at + HOUR
                return (
                    f"the pace limit --max-writes-per-hour {self.max_writes_per_hour} is reached ({len(writes)} "
                    f"writes in the last hour); the next write is allowed at {_clock(frees)}."
                )
        if self.daily_budget is not None:
            spent_entries = [e for e in await self._audit.since(DAY) if e.cost > 0]
            spent = sum(e.cost for e in spent_entries)
            if spent + cost > self.daily_budget + 1e-9:
                frees = _budget_frees_at(spent_entries, spent + cost - self.daily_budget)
                return (
                    f"the spend limit --daily-budget {self.daily_budget:.2f} USD would be passed (spent "
                    f"{spent:.3f} USD in the last 24 h; this call costs about {cost:.3f} USD); enough budget frees "
                    f"up at {_clock(frees)}."
                )
        return None

    async def totals(self) -> dict[str, Any]:
        hour = [e for e in await self._audit.since(HOUR) if e.write and e.outcome in _REACHED_X]
        day = await self._audit.since(DAY)
        return {
            "writes_last_hour": len(hour),
            "max_writes_per_hour": self.max_writes_per_hour,
            "spent_last_24h_usd": round(sum(e.cost for e in day), 6),
            "daily_budget_usd": self.daily_budget,
        }


def _budget_frees_at(entries: list[Entry], excess: float) -> float:
    released = 0.0
    for entry in entries:  # oldest first: they leave the 24 h window first
        released += entry.cost
        if released >= excess - 1e-9:
            return entry.at + DAY
    return entries[-1].at + DAY if entries else time.time()


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_duration(text: str) -> float:
    """'90s', '15m', '2h', '7d' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 7d")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": HOUR, "d": DAY}[match.group(2)]


def render(entries: list[Entry], totals: Mapping[str, Any]) -> str:
    lines = []
    for entry in entries:
        ids = " ".join(f"{k}={v}" for k, v in entry.ids.items())
        what = f' "{entry.text}"' if entry.text else ""
        detail = f" - {entry.detail}" if entry.detail else ""
        lines.append(
            f"{_clock(entry.at)}  @{entry.account}  {entry.tool:<17} {entry.outcome:<8} "
            f"${entry.cost:.3f}  {ids}{what}{detail}"
        )
    lines.append(
        f"totals: {totals['writes_last_hour']} write(s) in the last hour"
        + (f" (limit {totals['max_writes_per_hour']})" if totals.get("max_writes_per_hour") else "")
        + f"; {totals['spent_last_24h_usd']:.3f} USD in the last 24 h"
        + (f" (budget {totals['daily_budget_usd']:.2f} USD)" if totals.get("daily_budget_usd") else "")
    )
    return "\n".join(lines)
