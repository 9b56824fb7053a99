"""newPost pushed by X: X Activity API subscriptions per watched user, and one stream per process.

For each watched user the push source keeps one `post.create` subscription (and a `post.delete`
one while the app's limit leaves room, so deleted posts leave the resource), tagged
`xcourier:<instance>` so xcourier knows its own. The instance holds a lease in the store while it
runs; at start-up, subscriptions tagged by an instance whose lease has lapsed are orphans: one the
new instance comes to watch is adopted (re-tagged), the rest are deleted after a grace period.
The last unsubscribe deletes a user's subscriptions; a clean shutdown deletes them all.

The stream reconnects with jittered backoff (tools/activity.py) and asks X to backfill the
minutes it was away; after a gap longer than X keeps (5 minutes), the watcher first catches up
from the timelines since its cursors. Events go through the watcher's cursor (deliver_pushed), so
a backfill's overlap, or a post both read in the catch-up and pushed, is delivered once.

Where X won't push a user, the watcher polls them and says why: a protected account (X never
delivers its posts), the subscription limit (1,500 per app on self-serve plans), or X refusing
the subscription. While --daily-budget is used up the stream is closed (X bills each event).

With a fleet (hosted mode, server/fleet.py) X still gets one stream per app: the instance holding
the fleet's stream lease streams, renews the lease every third of its TTL and records when the
stream last showed signs of life; when it dies another instance takes the lease once it lapses and
reconnects with a backfill reaching back to that moment (or has the fleet catch up from the
timelines when that is longer than X keeps). The holder puts each post, and each post X says was
deleted, on the fleet's sealed feed before telling its own subscribers; every instance delivers it
once (the watcher drops what it already has) and the instance holding that user's lease commits it.
After a gap longer than X's backfill, the holder asks the fleet to catch up (server/fleet.py): each
pushed user's timeline is read by the instance holding that user's lease, not by the holder for
all, because hosted reads run on the logins of that user's subscribers, whom only instances
watching the user have, and a lease holder's read is the poll path: committed, then on the feed.
Subscriptions are the fleet's, not an instance's: one per user and event type, tagged
`xcourier:fleet/<username>`; an instance that finds one already there (X answers 409, or it is
listed) uses it. Nobody deletes one when its last local subscriber leaves: the stream holder's
sweep deletes the fleet's subscriptions whose user nobody in the fleet has watched (no lease) for
two sweeps running, and duplicates a race made.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from xcourier.tools import activity
from xcourier.tools.activity import ActivityClient, ActivityEvent, Backoff, Sleep
from xcourier.tools.client import TokenProvider
from xcourier.tools.errors import ForbiddenError, UnauthorizedError, XError
from xcourier.tools.timeline import Post

from .audit import Meter
from .auth.store import TokenStore

if TYPE_CHECKING:
    from .fleet import Fleet
    from .watcher import Budget, Watcher

logger = logging.getLogger("xcourier.push")

TAG_PREFIX = "xcourier:"
_LEASE_TTL = 90.0
_RENEW_EVERY = 30.0
_ORPHAN_GRACE = 120.0
# A reconnect's backfill reaches this much further back than the gap: what X had not yet sent when
# the connection went quiet.
_GAP_MARGIN = 15.0
FLEET_TAG = TAG_PREFIX + "fleet/"
_STREAM_LEASE = "xcourier-xaa-stream"
_STREAM_RECORD = "xaa-stream"
_SWEEP_EVERY = 60.0
_CONFLICT = 409


@dataclass
class _UserPush:
    username: str
    subscriptions: dict[str, str] = field(default_factory=dict)  # event type -> subscription id
    armed: bool = False
    pending: list[ActivityEvent] = field(default_factory=list)  # arrived before the watcher knew the user


class PushSource:
    def __init__(
        self,
        client: ActivityClient,
        watcher: Watcher,
        *,
        http: Callable[[], httpx.AsyncClient],
        stream_url: str,
        tokens: TokenProvider,
        store: TokenStore,
        meter: Meter | None = None,
        budget: Budget | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep | None = None,
        backoff: Backoff | None = None,
        stall_timeout: float | None = None,
        instance: str | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self._client = client
        self._watcher = watcher
        # Made when the stream first connects (someone is pushed): building it imports httpcore and h11,
        # ~15 ms of a start-up that tools/list never needs.
        self._make_http = http
        self._http: httpx.AsyncClient | None = None
        self._url = stream_url
        self._tokens = tokens
        self._store = store
        self._meter = meter
        self._budget = budget
        self._clock = clock
        self._sleep = sleep or activity.default_sleep
        self._backoff = backoff or Backoff()
        self.stall_timeout = stall_timeout or activity.DEFAULT_STALL_TIMEOUT
        self._fleet = fleet
        self.instance = fleet.instance if fleet is not None else instance or secrets.token_hex(6)
        self.tag = TAG_PREFIX + self.instance
        self.holds_stream = False  # with a fleet: this instance holds the fleet's stream lease
        self.takeovers = 0
        self._vacant: set[str] = set()  # fleet users nobody held a lease on at the last sweep
        self._swept_at = 0.0
        self.took_over_after: float | None = None
        # With a fleet: when this holder last asked the fleet to catch up. The timelines are read from then
        # on, so a later reconnect's backfill need only reach back to it.
        self._catch_up_asked: float | None = None
        self._users: dict[str, _UserPush] = {}
        self._orphans: dict[tuple[str, str], str] = {}  # (user id, event type) -> subscription id
        self._orphans_found_at = 0.0
        self._reconciled = False
        self._lock = anyio.Lock()
        self._wanted = anyio.Event()
        self.state = "idle"  # idle | connecting | streaming | waiting | off
        self.gave_up: str | None = None
        self.last_alive: float | None = None
        self.last_error: str | None = None
        self.connections = 0
        self.events = 0
        self.transports: tuple[Any, ...] = ()  # closed with close_transport (the runtime's wiring sets them)
        watcher.push = self

    # -- subscriptions ---------------------------------------------------------------------------

    async def watch(self, user_id: str, username: str) -> str | None:
        if self.gave_up is not None:
            return self.gave_up
        async with self._lock:
            if self._fleet is None:
                await self._reconcile_once()
            try:
                protected = await self._client.protected(user_id)
            except XError as exc:
                return f"X did not say whether @{username} is protected ({exc.message}); polled instead"
            if protected:
                return "a protected account: X never pushes its posts"
            push = _UserPush(username)
            try:
                push.subscriptions[activity.POST_CREATE] = await self._subscribe(
                    user_id, activity.POST_CREATE, username
                )
            except ForbiddenError as exc:
                # Past the limit (1,500 per app on self-serve): a user's post.create matters more than
                # another's post.delete, so one of those makes room (then that resource keeps a deleted
                # post until newer ones push it out, as when polling).
                if not await self._make_room():
                    logger.warning("push: X refused a post.create subscription for @%s: %s", username, exc.message)
                    return f"X refused a push subscription ({exc.message})"
                try:
                    push.subscriptions[activity.POST_CREATE] = await self._subscribe(
                        user_id, activity.POST_CREATE, username
                    )
                except XError as again:
                    return f"X refused a push subscription ({again.message})"
            except XError as exc:
                logger.warning("push: X refused a post.create subscription for @%s: %s", username, exc.message)
                return f"X refused a push subscription ({exc.message})"
            try:
                push.subscriptions[activity.POST_DELETE] = await self._subscribe(
                    user_id, activity.POST_DELETE, username
                )
            except XError as exc:
                # post.create is what newPost needs; without post.delete a deleted post stays in the
                # resource until newer ones push it out, as when polling.
                logger.info("push: no post.delete subscription for @%s (%s)", username, exc.message)
            self._users[user_id] = push
        self._wanted.set()
        return None

    async def _subscribe(self, user_id: str, event_type: str, username: str) -> str:
        if self._fleet is not None:
            return await self._fleet_subscription(user_id, event_type, username)
        orphan = self._orphans.pop((user_id, event_type), None)
        if orphan is not None:
            try:
                await self._client.retag(orphan, self.tag)
                logger.info("push: adopted the %s subscription %s left by an earlier xcourier", event_type, orphan)
                return orphan
            except XError as exc:
                logger.info("push: could not adopt subscription %s (%s); making a new one", orphan, exc.message)
        return (await self._client.create(event_type, user_id, self.tag)).subscription_id

    async def _make_room(self) -> bool:
        """Give up the newest user's post.delete subscription; False if there is none (or X refuses)."""
        if self._fleet is not None:
            return False  # the fleet's subscriptions are shared; another instance may rely on that one
        for push in reversed(self._users.values()):
            subscription_id = push.subscriptions.get(activity.POST_DELETE)
            if subscription_id is None:
                continue
            try:
                await self._client.delete(subscription_id)
            except XError as exc:
                logger.warning("push: could not delete a post.delete subscription to make room: %s", exc.message)
                return False
            del push.subscriptions[activity.POST_DELETE]
            logger.info("push: at X's subscription limit: @%s's post.delete subscription made room", push.username)
            return True
        return False

    async def _fleet_subscription(self, user_id: str, event_type: str, username: str) -> str:
        """The fleet's subscription for the user: made here, or the one another instance made."""
        tag = FLEET_TAG + username.lower()
        try:
            return (await self._client.create(event_type, user_id, tag)).subscription_id
        except XError as exc:
            if exc.status != _CONFLICT:
                raise
        # Inferred: X documents no answer to a repeated subscription; the sandbox answers 409. Either
        # way, the one already there is listed.
        for subscription in await self._client.list_all():
            same = subscription.filter.user_id == user_id and subscription.event_type == event_type
            if same and (subscription.tag or "").startswith(TAG_PREFIX):
                return subscription.subscription_id
        raise XError(f"X says a {event_type} subscription for user {user_id} exists but does not list it.")

    async def armed(self, user_id: str) -> None:
        push = self._users.get(user_id)
        if push is None:
            return
        push.armed = True
        pending, push.pending = push.pending, []
        for event in pending:
            await self._apply_here(user_id, event)

    async def unwatch(self, user_id: str) -> None:
        async with self._lock:
            push = self._users.pop(user_id, None)
            if push is None:
                return
            if self._fleet is not None:
                return  # the fleet's: others may watch the user; the stream holder's sweep deletes it
            for event_type, subscription_id in push.subscriptions.items():
                try:
                    await self._client.delete(subscription_id)
                except XError as exc:
                    logger.warning(
                        "push: could not delete the %s subscription of @%s: %s", event_type, push.username, exc.message
                    )

    async def _reconcile_once(self) -> None:
        if not self._reconciled:
            self._reconciled = True
            try:
                await self.reconcile()
            except XError as exc:
                logger.warning("push: could not list the app's X Activity subscriptions: %s", exc.message)

    async def reconcile(self) -> None:
        """Find xcourier's subscriptions left by instances that are gone: adoptable for a while, then deleted."""
        await self._store.hold_lease(self._lease(self.instance), self.instance, _LEASE_TTL)
        for subscription in await self._client.list_all():
            tag = subscription.tag or ""
            user_id = subscription.filter.user_id
            if not tag.startswith(TAG_PREFIX) or tag == self.tag or user_id is None:
                continue
            owner = tag.removeprefix(TAG_PREFIX)
            probe = f"{self.instance}-probe"
            if not await self._store.hold_lease(self._lease(owner), probe, 1.0):
                continue  # its instance is alive: its subscriptions are its own
            await self._store.release_lease(self._lease(owner), probe)
            key = (user_id, subscription.event_type or "")
            if key in self._orphans:
                await self._delete_quietly(subscription.subscription_id)
            else:
                self._orphans[key] = subscription.subscription_id
        self._orphans_found_at = self._clock()

    async def drop_orphans(self) -> int:
        """Delete the orphans nobody came to watch."""
        async with self._lock:
            orphans, self._orphans = list(self._orphans.values()), {}
        for subscription_id in orphans:
            await self._delete_quietly(subscription_id)
        return len(orphans)

    async def _delete_quietly(self, subscription_id: str) -> None:
        try:
            await self._client.delete(subscription_id)
        except XError as exc:
            logger.warning("push: could not delete stale subscription %s: %s", subscription_id, exc.message)

    @staticmethod
    def _lease(instance: str) -> str:
        return f"xcourier-xaa|{instance}"

    async def maintain(self) -> None:
        """Keep this instance's lease, and delete orphans once their grace period is over."""
        while True:
            try:
                await self._store.hold_lease(self._lease(self.instance), self.instance, _LEASE_TTL)
                if self._orphans and self._clock() - self._orphans_found_at > _ORPHAN_GRACE:
                    await self.drop_orphans()
            except Exception:
                logger.exception("push: housekeeping failed; trying again")
            await anyio.sleep(_RENEW_EVERY)  # the renewal period, not a synchronisation

    async def aclose(self) -> None:
        """On a clean shutdown: delete this instance's subscriptions (X bills events nobody reads); with a
        fleet, hand the stream to another instance now rather than after the lease's TTL."""
        if self._fleet is not None:
            if self.holds_stream:
                with anyio.move_on_after(10):
                    await self._store.release_lease(_STREAM_LEASE, self.instance)
            return
        with anyio.move_on_after(10):
            for user_id in list(self._users):
                await self.unwatch(user_id)
            await self.drop_orphans()
            await self._store.release_lease(self._lease(self.instance), self.instance)

    async def close_transport(self) -> None:
        for transport in self.transports:
            await transport.aclose()
        if self._http is not None:
            await self._http.aclose()

    # -- the stream ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Hold the app's one stream while anyone is pushed: reconnect, backfill, catch up after gaps."""
        if self._fleet is not None:
            await self._run_fleet(self._fleet)
        else:
            await self._stream()

    # -- one stream for a fleet ----------------------------------------------------------------------

    async def _run_fleet(self, fleet: Fleet) -> None:
        """Stream while this instance holds the fleet's stream lease; otherwise stand by to take it."""
        period = fleet.lease_ttl / 3
        self._wanted.set()  # the holder streams for every instance's users, not only its own
        while self.gave_up is None:
            if not await self._take_stream(fleet):
                self.state = "standby"
                await anyio.sleep(period)  # the lease's renewal period, not a synchronisation
                continue
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_stream, fleet, tasks.cancel_scope)
                await self._stream()
                tasks.cancel_scope.cancel()
            self.holds_stream = False

    async def _take_stream(self, fleet: Fleet) -> bool:
        try:
            if not await self._store.hold_lease(_STREAM_LEASE, self.instance, fleet.lease_ttl):
                return False
            record = await self._store.get_record(_STREAM_RECORD, _STREAM_LEASE)
        except Exception:
            logger.exception("push: could not reach the store for the stream lease; trying again")
            return False
        alive, renewed = (record.get("alive"), record.get("renewed")) if record else (None, None)
        # The backfill reaches back to the last thing the previous holder's stream sent.
        self.last_alive = float(alive) if isinstance(alive, int | float) else None
        self.holds_stream = True
        self.takeovers += 1
        # How long the fleet was without a holder: since the previous one last renewed the lease.
        self.took_over_after = self._clock() - float(renewed) if isinstance(renewed, int | float) else None
        logger.info(
            "push: this instance holds the fleet's activity stream now (the last holder renewed %s)",
            f"{self.took_over_after:.1f} s ago" if self.took_over_after is not None else "never",
        )
        return True

    async def _keep_stream(self, fleet: Fleet, stream: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(fleet.lease_ttl / 3)  # the renewal period, not a synchronisation
            try:
                held = await self._store.hold_lease(_STREAM_LEASE, self.instance, fleet.lease_ttl)
                if held:
                    now = self._clock()
                    # A next holder's backfill reaches back to this: what the stream last sent, or the
                    # catch-up the fleet was asked for, whichever is later.
                    covered = max(self.last_alive or now, self._catch_up_asked or 0.0)
                    alive = {"alive": covered, "renewed": now}
                    await self._store.put_record(_STREAM_RECORD, _STREAM_LEASE, alive, 24 * 3600.0)
            except Exception:
                logger.exception("push: could not renew the stream lease; trying again")
                continue
            if not held:
                logger.warning("push: lost the fleet's activity stream lease; another instance streams")
                stream.cancel()
                return
            if self._clock() - self._swept_at >= _SWEEP_EVERY:
                self._swept_at = self._clock()
                try:
                    await self._sweep(fleet)
                except Exception:
                    logger.exception("push: sweeping the fleet's subscriptions failed; trying again later")

    async def _sweep(self, fleet: Fleet) -> None:
        """Delete the fleet's subscriptions nobody in the fleet watches any more, and duplicates."""
        mine: dict[tuple[str, str], list[activity.Subscription]] = {}
        for subscription in await self._client.list_all():
            tag, user_id = subscription.tag or "", subscription.filter.user_id
            if tag.startswith(FLEET_TAG) and user_id is not None:
                mine.setdefault((user_id, subscription.event_type or ""), []).append(subscription)
        users: dict[str, tuple[str, list[str]]] = {}
        for (user_id, _), found in mine.items():
            found.sort(key=lambda s: int(s.subscription_id))
            for duplicate in found[1:]:
                await self._delete_quietly(duplicate.subscription_id)
            username = (found[0].tag or "").removeprefix(FLEET_TAG)
            users.setdefault(user_id, (username, []))[1].append(found[0].subscription_id)
        vacant: set[str] = set()
        for user_id, (username, ids) in users.items():
            if not await fleet.vacant(self._watcher.cursor_key(username)):
                continue
            if user_id not in self._vacant:
                vacant.add(user_id)  # once more before deleting: a subscriber may be arriving now
                continue
            logger.info("push: nobody in the fleet watches @%s any more; deleting its subscriptions", username)
            for subscription_id in ids:
                await self._delete_quietly(subscription_id)
        self._vacant = vacant

    # -- the stream ------------------------------------------------------------------------------

    async def _stream(self) -> None:
        while True:
            await self._wanted.wait()
            if self.gave_up is not None:
                return
            refusal = await self._budget.read_refusal() if self._budget is not None else None
            if refusal is not None:
                self.state = "waiting"
                self.last_error = refusal.reason
                await self._sleep(max(1.0, refusal.until - self._clock()))
                continue
            backfill = await self._backfill()
            self.state = "connecting"
            try:
                token = await self._tokens.access_token()
                self.connections += 1
                if self._http is None:
                    self._http = self._make_http()
                events = activity.read_stream(
                    self._http,
                    self._url,
                    token,
                    backfill_minutes=backfill,
                    stall_timeout=self.stall_timeout,
                    on_alive=self._alive,
                    on_connect=self._connected,
                )
                async with aclosing(events):
                    async for event in events:
                        await self._apply(event)
                        if await self._over_budget():
                            break
            except (UnauthorizedError, ForbiddenError) as exc:
                self._give_up(f"X refused the activity stream ({exc.message})")
                return
            except XError as exc:
                self.state = "waiting"
                self.last_error = exc.message
                delay = self._backoff.next_delay(exc)
                logger.warning("push: the activity stream failed (%s); reconnecting in %.1f s", exc.message, delay)
                await self._sleep(delay)

    async def _backfill(self) -> int:
        """backfill_minutes for this connection; after a gap X can't cover, the timelines catch up first."""
        if self.last_alive is None:
            # The first connection: subscriptions were made moments ago, possibly before it.
            return 1
        now = self._clock()
        gap = now - max(self.last_alive, self._catch_up_asked or 0.0) + _GAP_MARGIN
        minutes = activity.backfill_for(gap)
        if minutes is not None:
            return minutes
        logger.warning("push: the activity stream was away for %.0f s, longer than X keeps; catching up", gap)
        try:
            if self._fleet is not None:
                # Every lease holder reads its own pushed users (see the module's notes), this one too.
                await self._fleet.request_catch_up(now)
                await self._watcher.catch_up_requested(now)
                self._catch_up_asked = now
            else:
                await self._watcher.catch_up()
        except Exception:
            logger.exception("push: catching up from the timelines failed; the backfill covers what it can")
        return activity.MAX_BACKFILL_MINUTES

    def _connected(self) -> None:
        self.state = "streaming"
        self.last_error = None
        self._backoff.reset()

    def _alive(self) -> None:
        self.last_alive = self._clock()

    async def _over_budget(self) -> bool:
        if self._budget is None or self._meter is None:
            return False
        refusal = await self._budget.read_refusal()
        if refusal is not None:
            logger.warning("push: closing the activity stream: %s", refusal.reason)
        return refusal is not None

    def _give_up(self, reason: str) -> None:
        logger.warning("push: %s; every user is polled instead", reason)
        self.gave_up, self.state = reason, "off"
        for user_id in list(self._users):
            self._watcher.poll_instead(user_id, reason)

    async def _apply(self, event: ActivityEvent) -> None:
        user_id = event.filter.user_id or str(event.payload.get("author_id") or "")
        push = self._users.get(user_id)
        tag = event.tag or ""
        if self._fleet is not None and tag.startswith(FLEET_TAG):
            await self._fan_out(event, user_id, tag.removeprefix(FLEET_TAG))
        elif push is None:
            return  # not ours (another subscription of the app), or unwatched meanwhile
        if push is None:
            return
        if not push.armed:
            push.pending.append(event)
            return
        await self._apply_here(user_id, event)

    async def _fan_out(self, event: ActivityEvent, user_id: str, username: str) -> None:
        """The stream holder's part: bill the event and put the post on the feed for every instance,
        before telling anyone here (a holder killed in between leaves it to the backfill of the next)."""
        assert self._fleet is not None
        self.events += 1
        key = self._watcher.cursor_key(username)
        if event.event_type == activity.POST_DELETE:
            post_id = str(event.payload.get("id") or "")
            if post_id.isdigit():
                await self._fleet.publish(key, [], deleted=[post_id])  # post.delete is not billed
            return
        post = self._post(event, user_id)
        if post is None:
            return
        if self._meter is not None:
            await self._meter.events(activity.POST_CREATE, [post.id], "newPost push")
        await self._fleet.publish(key, [post], pushed=True)

    async def _apply_here(self, user_id: str, event: ActivityEvent) -> None:
        if self._fleet is None:
            self.events += 1
        post_id = str(event.payload.get("id") or "")
        if event.event_type == activity.POST_CREATE:
            post = self._post(event, user_id)
            if post is None:
                return
            if self._meter is not None and self._fleet is None:
                await self._meter.events(activity.POST_CREATE, [post.id], "newPost push")
            await self._watcher.deliver_pushed(user_id, [post])
        elif event.event_type == activity.POST_DELETE and post_id:
            await self._watcher.drop_deleted(user_id, post_id)

    @staticmethod
    def _post(event: ActivityEvent, user_id: str) -> Post | None:
        if event.event_type != activity.POST_CREATE:
            return None
        try:
            return Post.model_validate({"author_id": user_id, **event.payload})
        except ValueError:
            logger.warning("push: skipped a post.create event without a usable post")
            return None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "gave_up": self.gave_up,
            "last_event_or_keepalive_at": _iso(self.last_alive) if self.last_alive is not None else None,
            "last_error": self.last_error,
            "connections": self.connections,
            "events": self.events,
            "pushed_users": len(self._users),
            **(
                {
                    "holds_fleet_stream": self.holds_stream,
                    "takeovers": self.takeovers,
                    "took_over_after_seconds": None if self.took_over_after is None else round(self.took_over_after, 3),
                }
                if self._fleet is not None
                else {}
            ),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
