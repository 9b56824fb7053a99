"""Accountability: what the agent did on the account, and what it cost.

Every write (and every refusal of one) is appended to the store: time, account, tool, the X
ids involved, the outcome and its estimated price. Post text is kept; DM text never is, only
the recipient and the length. The same records drive the pace and spend guards, so the
limits hold across restarts and across processes sharing a store.

Reads cost money too (X bills each post or user returned, once per UTC day): a Meter sees
every answer that reached X (it is the X client's meter hook, so a cached lookup is never
billed), prices it with tools.billing, and records it as a read (write=False). Within a
`metering(...)` block (a watcher round, a resource read, a tool call) everything read is
gathered into the one entry of that call, so a watcher polling thousands of users adds one
entry per round, not one per post; the ids billed today ride along in that entry, which is
how the once-a-day rule survives a restart.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from xcourier.tools import billing

from .auth.store import TokenStore

logger = logging.getLogger("xcourier.audit")

HOUR = 3600.0
DAY = 24 * HOUR

# X's pay-per-use prices (USD per request for writes, per resource returned for reads), from
# docs.x.com/x-api/getting-started/pricing as of 2026-08; see tools/billing.py for the rules.
# Every key can be overridden in the config file's [pricing] table.
DEFAULT_PRICES: dict[str, float] = {
    "post_create": 0.015,
    "post_create_with_url": 0.20,
    "dm": 0.015,
    "like": 0.015,  # User Interaction: Create
    "repost": 0.015,  # User Interaction: Create
    # X's playground prices DELETE /2/tweets/{id} as Content: Manage ($0.005); the higher Interaction:
    # Delete price is kept until X's console says which applies: a spend guard had better err high.
    "delete": 0.010,
    "interaction_delete": 0.010,  # User Interaction: Delete (unlike, unrepost)
    "post_create_summoned": 0.010,  # a reply where the replied-to author summoned the account
    billing.POST_READ: 0.005,
    billing.USER_READ: 0.010,
    billing.OWNED_READ: 0.001,
    # Not on X's pricing page: X's API Playground bills each upload request as ContentCreate, $0.010.
    billing.MEDIA_UPLOAD: 0.010,
    # X Activity API: each post.create event delivered (post.delete events are free).
    billing.POST_EVENT: 0.005,
}

# Outcomes after which X may have done (and billed) the work.
_REACHED_X = ("ok", "unknown")
# A write admitted and on its way to X (see Guards.admitted): it counts as done until its outcome is in.
RESERVED = "reserved"
_COUNTED = (*_REACHED_X, RESERVED)
# How long one instance may hold the check-and-reserve lease, and how often another tries for it (~10 s in all).
_ADMISSION_LEASE = 10.0
_ADMISSION_TRIES = 60
# A shared Meter reads back entries from this much before its last look: an entry is stamped with its
# writer's clock before it is stored, so one may land a little "in the past" (clock skew, a slow write).
_SHARED_LOOKBACK = 60.0


def has_url(text: str | None) -> bool:
    """Whether X bills this post text as a post with a URL: a link as twitter-text finds it.

    X prices "post with a URL" by the links it detects, which twitter-text defines (its TLD lists:
    x.ai, .de, .me, ...); tools/text.py holds that extraction, in near-linear time. Imported here
    rather than at the top because this one function is all of the audit that needs it.
    """
    from xcourier.tools.text import has_url as twitter_text_has_url

    return bool(text) and twitter_text_has_url(text or "")


@dataclass(frozen=True)
class Entry:
    at: float
    account: str
    tool: str
    outcome: str  # ok | error | refused | unknown | not-sent | dry-run | reserved (a write on its way to X)
    cost: float
    ids: Mapping[str, str]
    detail: str = ""
    text: str | None = None  # post text only; a DM's text is never recorded
    write: bool = True
    account_id: str = ""  # hosted mode: the X user id, which, unlike a username, is never reused
    billed: Mapping[str, list[str]] = field(default_factory=dict)  # reads: kind -> ids X billed today
    # A write admitted under the pace and spend limits holds its place with a "reserved" entry (this
    # ticket) until the entry of its outcome, which `settles` it, is written.
    reservation: str = ""
    settles: str = ""

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
        if self.billed:
            record["billed"] = {kind: list(ids) for kind, ids in self.billed.items()}
        if self.reservation:
            record["reservation"] = self.reservation
        if self.settles:
            record["settles"] = self.settles
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
            billed=_billed_of(record.get("billed")),
            reservation=str(record.get("reservation", "")),
            settles=str(record.get("settles", "")),
        )


def _billed_of(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(kind): [str(i) for i in ids] for kind, ids in value.items() if isinstance(ids, list)}


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
        reads: billing.Bill | None = None,
    ) -> None:
        """Append one entry. What this call read from X (inside `metering`) is billed in it too,
        whatever the outcome: those answers reached X and were billed by it."""
        billed = cost if outcome in _REACHED_X else 0.0
        metered = reads or _take_from_tab(self)
        if metered:
            billed += metered.cost
            detail = "; ".join(part for part in (detail, f"read from X: {metered.summary()}") if part)
        held = _open_reservation.get()
        settles = ""
        if write and held is not None and held.audit is self and not held.settled:
            held.settled = True
            settles = held.ticket
        entry = Entry(
            self.now(),
            self.account,
            tool,
            outcome,
            round(billed, 6),
            ids,
            detail,
            text,
            write,
            self.account_id,
            billed=metered.billed if metered else {},
            settles=settles,
        )
        await self._store.append_audit(entry.at, entry.record())

    async def reserve(self, cost: float, tool: str = "") -> _Reservation:
        """Hold a write's place (and its estimated cost) in the shared trail until its outcome is recorded."""
        ticket = secrets.token_hex(8)
        entry = Entry(self.now(), self.account, tool, RESERVED, round(cost, 6), {}, "", None, True, self.account_id)
        await self._store.append_audit(entry.at, {**entry.record(), "reservation": ticket})
        return _Reservation(self, ticket)

    async def since(self, seconds: float) -> list[Entry]:
        """The entries of the last `seconds`, without the reservations their outcome has settled."""
        records = await self._store.audit_since(self.now() - seconds)
        entries = [Entry.from_record(at, record) for at, record in records]
        if self.account_id:
            entries = [e for e in entries if e.account_id == self.account_id]
        settled = {e.settles for e in entries if e.settles}
        return [e for e in entries if not (e.outcome == RESERVED and e.reservation in settled)]


@dataclass
class _Reservation:
    audit: AuditLog
    ticket: str
    settled: bool = False


# The reservation of the write the current task is making, settled by the first write entry it records.
_open_reservation: ContextVar[_Reservation | None] = ContextVar("xcourier_open_reservation", default=None)


@dataclass
class _Tab:
    """What one call read from X, per meter (a hosted call may read with more than one login)."""

    tool: str
    bills: dict[int, tuple[Meter, billing.Bill]] = field(default_factory=dict)


_open_tab: ContextVar[_Tab | None] = ContextVar("xcourier_metering_tab", default=None)


def _take_from_tab(audit: AuditLog) -> billing.Bill | None:
    tab = _open_tab.get()
    if tab is None:
        return None
    for key, (meter, bill) in list(tab.bills.items()):
        if meter.audit is audit:
            del tab.bills[key]
            return bill
    return None


@asynccontextmanager
async def metering(tool: str) -> AsyncIterator[None]:
    """Gather what this block reads from X into one audit entry per account, named `tool`.

    An entry the block records itself (a write's) takes its reads in; what is left is recorded
    when the block ends, also when it fails: the answers that did come back were billed.
    """
    tab = _Tab(tool)
    token = _open_tab.set(tab)
    try:
        yield
    finally:
        _open_tab.reset(token)
        if tab.bills:  # most calls' reads went into their own entry: nothing is left, no scope to open
            with anyio.CancelScope(shield=True):
                for meter, bill in tab.bills.values():
                    await meter.flush(tool, bill)


class Meter:
    """The X client's meter hook: prices each answer as X bills it, once per resource per UTC day."""

    def __init__(
        self, audit: AuditLog, prices: Mapping[str, float], *, owner_id: str | None = None, shared: bool = False
    ) -> None:
        self.audit = audit
        self._prices = prices
        # Whose reads are Owned Reads. Learnt from GET /2/users/me when not given; X also wants
        # the user to own the X app, which a client can't see: assumed (README, "What X bills").
        self.owner_id = owner_id
        self._ledger = billing.Ledger()
        self._lock = anyio.Lock()
        # A fleet's instances bill one X app into one audit account: X bills each resource once per UTC
        # day app-wide, so before each bill a shared Meter takes in what the others recorded since it last
        # looked (say a new stream holder replaying, in its backfill, events the dead one had billed).
        self._shared = shared
        self._looked_at: float | None = None

    async def __call__(
        self, method: str, path_template: str, path_params: Mapping[str, str], body: Mapping[str, Any]
    ) -> None:
        try:
            await self._observe(method, path_template, path_params, body)
        except Exception:
            # Metering must never turn a call X performed into a failure.
            logger.exception("could not record the cost of %s %s", method, path_template)

    async def _observe(
        self, method: str, path_template: str, path_params: Mapping[str, str], body: Mapping[str, Any]
    ) -> None:
        me = billing.authenticated_user(method, path_template, body)
        if me is not None and self.owner_id is None:
            self.owner_id = me
        found = billing.charges(method, path_template, path_params, body, owner_id=self.owner_id)
        await self._bill(found, f"{method} {path_template}")

    async def events(self, event_type: str, resource_ids: list[str], tool: str) -> None:
        """Activity events delivered on X's stream: billed by X per event, once per UTC day."""
        found = [charge for i in resource_ids for charge in billing.event_charges(event_type, i)]
        try:
            await self._bill(found, tool)
        except Exception:
            logger.exception("could not record the cost of %s events", event_type)

    async def _bill(self, found: list[billing.Charge], name: str) -> None:
        if not found:
            return
        async with self._lock:
            await self._start_day_if_new()
            bill = self._ledger.bill(found, self._prices)
        if not bill:
            return
        tab = _open_tab.get()
        if tab is None:
            # Outside any metered call: an entry of its own, named after the endpoint or the events.
            await self.flush(name, bill)
            return
        _, gathered = tab.bills.setdefault(id(self), (self, billing.Bill()))
        gathered.add(bill)

    async def _start_day_if_new(self) -> None:
        now = self.audit.now()
        day = billing.utc_day(now)
        midnight = billing.utc_midnight(now)
        if self._ledger.day == day:
            if self._shared and self._looked_at is not None:
                since = max(self._looked_at - _SHARED_LOOKBACK, midnight)
                self._ledger.take_in(_billed_in(await self.audit.since(now - since)))
                self._looked_at = now
            return
        # After a restart, what was billed earlier today (by this or another process) is in the audit.
        entries = await self.audit.since(now - midnight)
        self._ledger.start_day(day, _billed_in(entries))
        self._looked_at = now

    async def flush(self, tool: str, bill: billing.Bill) -> None:
        if not bill:
            return
        try:
            await self.audit.record(tool, "ok", cost=0.0, ids={}, write=False, reads=bill)
        except Exception:
            logger.exception("could not record the cost of reading from X for %s", tool)


def _billed_in(entries: list[Entry]) -> Iterator[tuple[str, str]]:
    return ((kind, i) for e in entries for kind, ids in e.billed.items() for i in ids)


@dataclass(frozen=True)
class Refusal:
    reason: str
    until: float  # epoch seconds when enough budget frees up


class Guards:
    """--max-writes-per-hour and --daily-budget: refuse a write before it reaches X."""

    def __init__(
        self,
        audit: AuditLog,
        *,
        max_writes_per_hour: int | None,
        daily_budget: float | None,
        store: TokenStore | None = None,
    ) -> None:
        self._audit = audit
        self.max_writes_per_hour = max_writes_per_hour
        self.daily_budget = daily_budget
        self._store = store
        self._admission = anyio.Lock()
        self._holder = secrets.token_hex(8)

    @asynccontextmanager
    async def admitted(self, cost: float, tool: str = "") -> AsyncIterator[str | None]:
        """Check and reserve in one step: yields why the write must not go ahead (None if it may).

        An admitted write holds its place in the audit trail with a reservation, which counts as a
        write (and its estimated cost as spent) until the write's outcome is recorded. Check and
        reservation happen under a lock in this process and, with a store, under a store lease per
        account, so concurrent calls, here or on other instances sharing the store, can't all pass
        the same check.
        """
        if self.max_writes_per_hour is None and self.daily_budget is None:
            yield None
            return
        async with self._admission, self._shared_admission() as refusal:
            if refusal is None:
                refusal = await self.refusal(cost)
            reservation = await self._audit.reserve(cost, tool) if refusal is None else None
        previous = _open_reservation.get()
        _open_reservation.set(reservation)
        try:
            yield refusal
        finally:
            if reservation is not None and not reservation.settled:
                # The call ended without recording an outcome (cancelled, or failed in an unforeseen way):
                # X may have been reached, so the place stays taken, as "unknown".
                with anyio.CancelScope(shield=True):
                    await self._audit.record(
                        tool, "unknown", cost=cost, ids={}, detail="the call ended before its outcome was recorded"
                    )
            _open_reservation.set(previous)

    @asynccontextmanager
    async def _shared_admission(self) -> AsyncIterator[str | None]:
        """The store lease that makes check-and-reserve atomic across instances; yields a refusal
        (instead of waiting forever) when another instance holds it for longer than a check takes."""
        if self._store is None:
            yield None
            return
        lease = f"guards|{self._audit.account_id or self._audit.account}"
        delay = 0.005
        for _ in range(_ADMISSION_TRIES):
            if await self._store.hold_lease(lease, self._holder, _ADMISSION_LEASE):
                break
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.2)
        else:
            yield (
                "another xcourier instance sharing this store has been checking the pace and spend limits for "
                "this account for several seconds; try again shortly."
            )
            return
        try:
            yield None
        finally:
            with anyio.CancelScope(shield=True):
                await self._store.release_lease(lease, self._holder)

    async def refusal(self, cost: float) -> str | None:
        """Why this write must not go ahead, with when the limit frees up; None if it may."""
        if self.max_writes_per_hour is not None:
            writes = [e for e in await self._audit.since(HOUR) if e.write and e.outcome in _COUNTED]
            pending = sum(e.outcome == RESERVED for e in writes)
            if len(writes) >= self.max_writes_per_hour:
                done = [e for e in writes if e.outcome != RESERVED]
                if len(done) < self.max_writes_per_hour:
                    return (
                        f"the pace limit --max-writes-per-hour {self.max_writes_per_hour} is reached ({len(done)} "
                        f"writes in the last hour and {pending} on their way to X); try again once they finish."
                    )
                frees = done[len(done) - self.max_writes_per_hour].at + HOUR
                return (
                    f"the pace limit --max-writes-per-hour {self.max_writes_per_hour} is reached ({len(done)} "
                    f"writes in the last hour); the next write is allowed at {_clock(frees)}."
                )
        if self.daily_budget is not None:
            spent_entries = [e for e in await self._audit.since(DAY) if e.cost > 0]
            spent = sum(e.cost for e in spent_entries)
            if spent + cost > self.daily_budget + 1e-9:
                frees = _budget_frees_at(spent_entries, spent + cost - self.daily_budget)
                return (
                    f"the spend limit --daily-budget {self.daily_budget:.2f} USD would be passed (spent "
                    f"{spent:.3f} USD in the last 24 h, writes on their way to X included; this call costs about "
                    f"{cost:.3f} USD); enough budget frees up at {_clock(frees)}."
                )
        return None

    async def read_refusal(self) -> Refusal | None:
        """Why a read that would reach X must not go ahead: the daily budget is spent. None if it may.

        A read is billed by what it returns, unknown before it is made, so reads stop when
        nothing is left rather than when the next one would pass the budget.
        """
        if self.daily_budget is None:
            return None
        spent_entries = [e for e in await self._audit.since(DAY) if e.cost > 0]
        spent = sum(e.cost for e in spent_entries)
        if spent < self.daily_budget - 1e-9:
            return None
        # Free again once more than the overshoot has left the 24 h window.
        frees = _budget_frees_at(spent_entries, spent - self.daily_budget + 1e-6)
        return Refusal(
            f"the spend limit --daily-budget {self.daily_budget:.2f} USD is used up (spent {spent:.3f} USD in the "
            f"last 24 h, reads of X included); reading from X resumes at {_clock(frees)}.",
            frees,
        )

    async def totals(self) -> dict[str, Any]:
        hour = [e for e in await self._audit.since(HOUR) if e.write and e.outcome in _COUNTED]
        day = await self._audit.since(DAY)
        return {
            "writes_last_hour": len(hour),
            "max_writes_per_hour": self.max_writes_per_hour,
            "spent_last_24h_usd": round(sum(e.cost for e in day), 6),
            "spent_on_reads_last_24h_usd": round(sum(e.cost for e in day if not e.write), 6),
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
        + (f" ({reads:.3f} on reads)" if (reads := totals.get("spent_on_reads_last_24h_usd")) else "")
        + (f" (budget {totals['daily_budget_usd']:.2f} USD)" if totals.get("daily_budget_usd") else "")
    )
    return "\n".join(lines)
