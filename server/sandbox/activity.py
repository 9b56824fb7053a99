"""The X Activity API (XAA) as the sandbox plays it: subscriptions, the event log, app-only tokens.

Sources (xdevplatform/docs, as of 2026-08):
- x-api/activity/introduction.mdx: `post.create` fires when the filtered user creates a Post,
  `post.delete` when they delete one; "Posts from protected accounts are not delivered through
  XAA, even when the subscribing app has user-context authorization"; subscription limits
  "Self-serve 1,500, Enterprise 75,000"; delivery by a persistent HTTP stream or a webhook.
- x-api/activity/quickstart.mdx: the app's Bearer Token (app-only) authorizes subscriptions and
  the stream; `tag` is optional and comes back on each event; PUT changes only `tag` and
  `webhook_id`; DELETE answers `{data:{deleted}, meta:{total_subscriptions}}`.
- x-api/activity/event-payloads.mdx: the envelope `{data:{event_uuid, filter, event_type, tag,
  payload, includes}}`; `post.create`'s payload is the Post, `post.delete`'s `{id, author_id}`.
- x-api/getting-started/pricing.mdx ("Webhook events"): `post.create` $0.005 per event,
  `post.delete` not billed, "deduplicated within the same 24-hour UTC window".
- Spec 2.167 (tests/data/x-openapi.json): request and response shapes; `backfill_minutes` 0-5.

Not documented, so inferred and marked where used: what X answers past the subscription limit or
to a duplicate subscription, how far back `start_time` reaches, and what `end_time` does to a
live stream.

State lives under the sandbox's lock (the Sandbox passes its RLock); open streams are woken from
whatever thread made the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .ids import iso
from .tokens import Token

if TYPE_CHECKING:
    from .state import Post, Sandbox

STREAM = "GET /2/activity/stream"
CREATE = "POST /2/activity/subscriptions"
LIST = "GET /2/activity/subscriptions"
UPDATE = "PUT /2/activity/subscriptions/{subscription_id}"
DELETE = "DELETE /2/activity/subscriptions/{subscription_id}"
DELETE_MANY = "DELETE /2/activity/subscriptions"
ENDPOINT_KEYS: frozenset[str] = frozenset({STREAM, CREATE, LIST, UPDATE, DELETE, DELETE_MANY})

# introduction.mdx, "Subscription limits".
SELF_SERVE_LIMIT = 1_500
ENTERPRISE_LIMIT = 75_000
# Spec 2.167: backfill_minutes is 0..5, so that is all X keeps for a reconnecting client.
RETENTION_SECONDS = 300.0
# consuming-streaming-data.mdx: "At least every 20 seconds, the stream sends a keep-alive signal
# ... in the form of a `\r\n`". The stream docs say this of X's streams in general; XAA's own page
# is silent, so the sandbox applies it to the activity stream too (inferred).
KEEPALIVE_SECONDS = 20.0
# The event types of CreateActivitySubscriptionRequest in spec 2.167.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "profile.update.bio",
        "profile.update.profile_picture",
        "profile.update.banner_picture",
        "profile.update.screenname",
        "profile.update.geo",
        "profile.update.url",
        "profile.update.verified_badge",
        "profile.update.affiliate_badge",
        "profile.update.handle",
        "news.new",
        "follow.follow",
        "follow.unfollow",
        "spaces.start",
        "spaces.end",
        "chat.received",
        "chat.sent",
        "chat.conversation_join",
        "dm.sent",
        "dm.received",
        "dm.indicate_typing",
        "dm.read",
        "post.create",
        "post.delete",
        "post.mention.create",
        "like.create",
        "mute.mute",
        "mute.unmute",
        "block.block",
        "block.unblock",
    }
)
# pricing.mdx, "Webhook events": the price of each delivered event the sandbox makes (micro-USD).
EVENT_PRICES: dict[str, int] = {"post.create": 5_000, "post.delete": 0}
_MAX_LOG = 100_000


@dataclass
class Subscription:
    id: str
    event_type: str
    filter: dict[str, str]
    tag: str | None
    created_at: float
    updated_at: float
    webhook_id: str | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subscription_id": self.id,
            "event_type": self.event_type,
            "filter": dict(self.filter),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
        if self.tag is not None:
            out["tag"] = self.tag
        if self.webhook_id is not None:
            out["webhook_id"] = self.webhook_id
        return out


@dataclass(frozen=True)
class Event:
    """One delivery: an event matched to one subscription (each carries that subscription's tag)."""

    seq: int
    at: float
    event_type: str
    body: dict[str, Any]
    resource_id: str  # what billing deduplicates on: the post's id


@dataclass(eq=False)
class _Waker:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        # A closed loop means the stream is gone: nothing left to wake.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.event.set)


class ActivityBook:
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._wakers: set[_Waker] = set()
        self.cuts = 0  # bumped to cut every open stream at once (admin API): a network cut, an X deploy
        self.reset()

    @property
    def _lock(self) -> Any:
        return self._sandbox._lock

    def reset(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.protected: set[str] = set()
        self._log: deque[Event] = deque(maxlen=_MAX_LOG)
        # Never reset: a stream open across a reset must not mistake new events for ones it sent.
        self._seq = getattr(self, "_seq", 0)
        self._next_id = getattr(self, "_next_id", 1_900_000_000_000_000_000)
        self.delivered: dict[str, int] = {}
        self.keepalive_seconds = KEEPALIVE_SECONDS
        # consuming-streaming-data.mdx: "Posts are not delivered in sorted order, and duplicate messages
        # may occur." With `shuffle` N > 1 each stream holds events until N are waiting (or the stream
        # goes quiet for a keep-alive period) and sends them in a random order, seeded for repeatability.
        self.shuffle = 0
        self.shuffle_rng = random.Random(0)
        self._wake_all()

    # ---- app-only tokens ----------------------------------------------------------------------

    def mint_app_token(self) -> str:
        """The app's Bearer Token, as the X console shows it: valid until the app regenerates it."""
        with self._lock:
            token = "sbx-app-" + secrets.token_urlsafe(24)
            app = Token(user_id="", expires_at=float("inf"), scopes=frozenset(), app_only=True)
            self._sandbox._tokens.issue(token, app)
            return token

    def authenticate_app(self, authorization: str | None) -> None:
        """Spec 2.167 lists only BearerToken (app-only) for the stream, PUT and DELETE; X answers a
        user token there with 403 Unsupported Authentication (its long-standing wording)."""
        with self._lock:
            if not authorization or not authorization.lower().startswith("bearer "):
                raise errors.unauthorized()
            token = self._sandbox._tokens.get(authorization[7:].strip())
            if token is None or token.expires_at <= self._sandbox.now():
                raise errors.unauthorized()
            if not token.app_only:
                raise errors.forbidden(
                    "Authenticating with OAuth 2.0 User Context is forbidden for this endpoint. Supported "
                    "authentication types are [OAuth 2.0 Application-Only]."
                )

    # ---- subscriptions ------------------------------------------------------------------------

    def limit(self) -> int:
        return SELF_SERVE_LIMIT if self._sandbox.plan.self_serve else ENTERPRISE_LIMIT

    def create(self, body: dict[str, Any]) -> Subscription:
        with self._lock:
            allowed = {"event_type", "filter", "tag", "webhook_id"}
            unknown = sorted(set(body) - allowed)
            if unknown:
                raise errors.invalid_request(f"Unknown fields: {', '.join(unknown)}.", {name: [] for name in unknown})
            event_type = body.get("event_type")
            if event_type not in EVENT_TYPES:
                raise errors.invalid_request(
                    f"event_type must be one of [{', '.join(sorted(EVENT_TYPES))}].", {"event_type": [str(event_type)]}
                )
            raw_filter = body.get("filter")
            if not isinstance(raw_filter, dict) or set(raw_filter) - {"user_id", "keyword", "direction"}:
                raise errors.invalid_request("filter must be an object with user_id.", {"filter": []})
            user_id = raw_filter.get("user_id")
            if not isinstance(user_id, str) or not user_id.isdigit() or len(user_id) > 19:
                raise errors.invalid_request(
                    "filter.user_id must match ^[0-9]{1,19}$.", {"filter.user_id": [str(user_id)]}
                )
            if self._sandbox.users.get(user_id) is None:
                raise errors.not_found("user", "filter.user_id", user_id)
            tag = self._tag(body)
            same = (s for s in self.subscriptions.values() if s.event_type == event_type)
            if any(s.filter.get("user_id") == user_id for s in same):
                # Inferred: X documents no answer for a repeated subscription; a conflict is the plain reading.
                raise errors.generic(409, f"A subscription for {event_type} on user {user_id} already exists.")
            if len(self.subscriptions) >= self.limit():
                # The limit is documented; X's answer past it is not: a 403 naming the limit is inferred.
                raise errors.forbidden(
                    f"This app has reached its limit of {self.limit()} X Activity API subscriptions "
                    f"({self._sandbox.plan.name} plan). Delete a subscription to create another."
                )
            now = self._sandbox.now()
            self._next_id += 1
            subscription = Subscription(str(self._next_id), event_type, {"user_id": user_id}, tag, now, now)
            self.subscriptions[subscription.id] = subscription
            return subscription

    @staticmethod
    def _tag(body: dict[str, Any]) -> str | None:
        tag = body.get("tag")
        if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 200):
            raise errors.invalid_request("tag must be 1 to 200 characters.", {"tag": [str(tag)[:50]]})
        return tag

    def page(self, max_results: int, token: str | None) -> tuple[list[Subscription], str | None]:
        """Oldest first. The pagination token is the next subscription id, base32hex-like and at least
        16 characters as the spec asks (the encoding is the sandbox's own)."""
        with self._lock:
            ordered = sorted(self.subscriptions.values(), key=lambda s: int(s.id))
            start = 0
            if token is not None:
                if not token.startswith("sbxp") or not token[4:].isdigit():
                    raise errors.invalid_request("The pagination_token is invalid.", {"pagination_token": [token]})
                after = int(token[4:])
                start = next((i for i, s in enumerate(ordered) if int(s.id) >= after), len(ordered))
            chosen = ordered[start : start + max_results]
            rest = ordered[start + max_results :]
            return chosen, (f"sbxp{rest[0].id}" if rest else None)

    def update(self, subscription_id: str, body: dict[str, Any]) -> Subscription:
        with self._lock:
            unknown = sorted(set(body) - {"tag", "webhook_id"})
            if unknown:
                # quickstart.mdx: "Updating the filter or event_type requires deleting the existing
                # subscription and adding a new one."
                raise errors.invalid_request(
                    f"Only tag and webhook_id can be updated, not {', '.join(unknown)}.", {name: [] for name in unknown}
                )
            subscription = self.subscriptions.get(subscription_id)
            if subscription is None:
                raise errors.not_found("subscription", "subscription_id", subscription_id)
            if "tag" in body:
                subscription.tag = self._tag(body)
            subscription.updated_at = self._sandbox.now()
            return subscription

    def delete(self, subscription_id: str) -> bool:
        with self._lock:
            if self.subscriptions.pop(subscription_id, None) is None:
                raise errors.not_found("subscription", "subscription_id", subscription_id)
            return True

    def count(self) -> int:
        with self._lock:
            return len(self.subscriptions)

    def set_protected(self, user_id: str, protected: bool) -> None:
        with self._lock:
            (self.protected.add if protected else self.protected.discard)(user_id)

    # ---- events -------------------------------------------------------------------------------

    def post_created(self, post: Post) -> None:
        """Called by the sandbox, under its lock, when a post is made."""
        fields = {"created_at", "author_id", "conversation_id", "in_reply_to_user_id", "attachments"}
        self._emit("post.create", post, post.render(fields))

    def post_deleted(self, post: Post) -> None:
        self._emit("post.delete", post, {"id": post.id, "author_id": post.author_id})

    def _emit(self, event_type: str, post: Post, payload: dict[str, Any]) -> None:
        if post.author_id in self.protected:
            return  # introduction.mdx: protected accounts' posts are never delivered
        matching = [
            s
            for s in self.subscriptions.values()
            if s.event_type == event_type and s.filter.get("user_id") == post.author_id
        ]
        if not matching:
            return
        author = self._sandbox.users.get(post.author_id)
        now = self._sandbox.now()
        for subscription in sorted(matching, key=lambda s: int(s.id)):
            self._seq += 1
            data: dict[str, Any] = {
                # Spec 2.167's ActivityEventId: digits, unique per delivery.
                "event_uuid": str(2_000_000_000_000_000_000 + self._seq),
                "filter": dict(subscription.filter),
                "event_type": event_type,
                "payload": payload,
            }
            if subscription.tag is not None:
                data["tag"] = subscription.tag
            if author is not None:
                data["includes"] = {"users": [author.public()]}
            self._log.append(Event(self._seq, now, event_type, {"data": data}, post.id))
        self._wake_all()

    def events_after(self, seq: int, *, since: float | None = None, until: float | None = None) -> list[Event]:
        """Events after `seq`; with `since`, only those made at or after it, within the retention window."""
        with self._lock:
            floor = self._sandbox.now() - RETENTION_SECONDS
            return [
                e
                for e in self._log
                if e.seq > seq and (since is None or e.at >= max(since, floor)) and (until is None or e.at <= until)
            ]

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def deliver(self, event: Event) -> None:
        """Bill a delivered event as pricing.mdx says: per event, once per resource per UTC day."""
        price = EVENT_PRICES.get(event.event_type, 0)
        with self._lock:
            self.delivered[event.event_type] = self.delivered.get(event.event_type, 0) + 1
        if price:
            self._sandbox.charge_reads(f"event:{event.event_type}", [event.resource_id], price)

    # ---- open streams -------------------------------------------------------------------------

    def add_waker(self) -> _Waker:
        waker = _Waker(asyncio.get_running_loop())
        with self._lock:
            self._wakers.add(waker)
        return waker

    def remove_waker(self, waker: _Waker) -> None:
        with self._lock:
            self._wakers.discard(waker)

    def cut_streams(self) -> int:
        with self._lock:
            self.cuts += 1
            opened = len(self._wakers)
        self._wake_all()
        return opened

    def _wake_all(self) -> None:
        for waker in list(getattr(self, "_wakers", ())):
            waker.wake()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "subscriptions": [s.render() for s in sorted(self.subscriptions.values(), key=lambda s: int(s.id))],
                "limit": self.limit(),
                "streams_open": len(self._wakers),
                "events_delivered": dict(self.delivered),
                "protected_user_ids": sorted(self.protected),
                "keepalive_seconds": self.keepalive_seconds,
                "shuffle": self.shuffle,
            }
