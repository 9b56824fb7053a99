"""What X bills for a call that reached it, on the pay-per-use plan.

Sources (as of 2026-08):
- X's pricing page, docs.x.com/x-api/getting-started/pricing (xdevplatform/docs,
  x-api/getting-started/pricing.mdx): reads are "charged per resource returned in the response",
  writes per request; Posts: Read $0.005, User: Read $0.010; "All resources are deduplicated
  within a 24-hour UTC day window" ("the deduplication window resets at midnight UTC"); Owned
  Reads, $0.001 per resource, for `GET /2/users/{id}/tweets`, `/mentions`, `/liked_tweets`,
  `/bookmarks` and the others listed below "when `{id}` matches the authenticated user and that
  user is the owner of the developer app".
- docs.x.com/x-api/fundamentals/post-cap (x-api/fundamentals/post-cap.mdx): "Only successful
  responses that return data are billed", and which endpoints' posts count (lookup, search,
  timelines, mentions, liked posts, bookmarks, list posts).
- X Activity API events (pricing.mdx, "Webhook events", which covers XAA deliveries): `post.create`
  $0.005 per event, `post.delete` "Not billed", "deduplicated within the same 24-hour UTC window as
  other resources". Whether a post.create event and a read of the same post share one charge is
  not said: they are kept apart here (an event deduplicates only against the same event).
- Media uploads: the pricing page lists no price for them. X's API Playground
  (xdevplatform/playground, internal/playground/credits.go, commit fe224d58) bills every
  `POST /2/media/upload`, `/initialize`, `/{id}/append` and `/{id}/finalize` request as
  ContentCreate, $0.010 per request, and the STATUS poll (`GET /2/media/upload`) not at all.

This module only says what X charges for; what a charge costs in USD is the caller's price
table (keys as in `PRICE_KEYS`), so a user can correct a price X changes without a release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

POST_READ = "post_read"
USER_READ = "user_read"
OWNED_READ = "owned_read"
MEDIA_UPLOAD = "media_upload"
POST_EVENT = "post_event"
PRICE_KEYS = (POST_READ, USER_READ, OWNED_READ, MEDIA_UPLOAD, POST_EVENT)
# XAA event types X bills, and the price key of each (the others, post.delete among them, are free).
_BILLED_EVENTS = {"post.create": POST_EVENT}

# Endpoints that return posts, each billed as a post read (post-cap page: "Tracked endpoints").
_POST_READS = frozenset(
    {
        "GET /2/tweets",
        "GET /2/tweets/{id}",
        "GET /2/tweets/search/recent",
        "GET /2/tweets/search/all",
        "GET /2/users/{id}/tweets",
        "GET /2/users/{id}/mentions",
        "GET /2/users/{id}/liked_tweets",
        "GET /2/users/{id}/bookmarks",
        "GET /2/users/{id}/timelines/reverse_chronological",
        "GET /2/lists/{id}/tweets",
        "GET /2/tweets/{id}/quote_tweets",
    }
)
# Endpoints that return users, each billed as a user read (pricing page: User: Read; the
# playground's endpoint mapping lists /2/users/me and the by-username lookup under "User").
_USER_READS = frozenset(
    {
        "GET /2/users/me",
        "GET /2/users",
        "GET /2/users/{id}",
        "GET /2/users/by",
        "GET /2/users/by/username/{username}",
        "GET /2/users/{id}/followers",
        "GET /2/users/{id}/following",
        "GET /2/tweets/{id}/liking_users",
        "GET /2/tweets/{id}/retweeted_by",
    }
)
# The pricing page's Owned Reads table (the list and follow endpoints among them aren't read here).
_OWNED_READS = frozenset(
    {
        "GET /2/users/{id}/tweets",
        "GET /2/users/{id}/mentions",
        "GET /2/users/{id}/liked_tweets",
        "GET /2/users/{id}/bookmarks",
        "GET /2/users/{id}/followers",
        "GET /2/users/{id}/following",
        "GET /2/users/{id}/blocking",
        "GET /2/users/{id}/muting",
        "GET /2/users/{id}/owned_lists",
        "GET /2/users/{id}/followed_lists",
        "GET /2/users/{id}/list_memberships",
        "GET /2/users/{id}/pinned_lists",
    }
)
# Billed per request, as the playground does (X's pricing page is silent on media).
_MEDIA_UPLOADS = frozenset(
    {
        "POST /2/media/upload",
        "POST /2/media/upload/initialize",
        "POST /2/media/upload/{id}/append",
        "POST /2/media/upload/{id}/finalize",
    }
)
# The playground counts resources of the billed kind in `includes` too (tweets for posts, users for users).
_INCLUDES = {"post": "tweets", "user": "users"}


@dataclass(frozen=True)
class Charge:
    """One thing X bills: a resource (billed once per UTC day by kind and id) or a request."""

    price: str
    kind: str | None = None  # "post" | "user" for resources; None for a per-request charge
    resource_id: str | None = None


def charges(
    method: str,
    path_template: str,
    path_params: Mapping[str, str],
    body: Mapping[str, Any],
    *,
    owner_id: str | None,
) -> list[Charge]:
    """What X bills for this successful answer, before the once-a-day deduplication.

    `owner_id` is the authenticated user when they own the X app (their own reads are Owned
    Reads); None when that isn't known, which prices their reads as anyone else's.
    """
    endpoint = f"{method} {path_template}"
    if endpoint in _MEDIA_UPLOADS:
        return [Charge(MEDIA_UPLOAD)]
    if endpoint in _POST_READS:
        kind, price = "post", POST_READ
    elif endpoint in _USER_READS:
        kind, price = "user", USER_READ
    else:
        return []  # writes are priced per call by their tool; other endpoints aren't called
    if endpoint in _OWNED_READS and owner_id is not None and path_params.get("id") == owner_id:
        price = OWNED_READ
    return [Charge(price, kind, resource_id) for resource_id in _resource_ids(body, kind)]


def event_charges(event_type: str, resource_id: str) -> list[Charge]:
    """What X bills for one delivered activity event about `resource_id` (a post's id)."""
    price = _BILLED_EVENTS.get(event_type)
    return [Charge(price, f"event:{event_type}", resource_id)] if price is not None and resource_id else []


def authenticated_user(method: str, path_template: str, body: Mapping[str, Any]) -> str | None:
    """The user id in an answer to GET /2/users/me (who the token acts as), else None."""
    if f"{method} {path_template}" != "GET /2/users/me":
        return None
    data = body.get("data")
    found = data.get("id") if isinstance(data, Mapping) else None
    return found if isinstance(found, str) and found else None


def _resource_ids(body: Mapping[str, Any], kind: str) -> list[str]:
    data = body.get("data")
    items: list[Any] = list(data) if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
    includes = body.get("includes")
    if isinstance(includes, Mapping) and isinstance(includes.get(_INCLUDES[kind]), list):
        items.extend(includes[_INCLUDES[kind]])
    ids = (item.get("id") for item in items if isinstance(item, Mapping))
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d")


def utc_midnight(epoch: float) -> float:
    """The start of the UTC day `epoch` falls in: when X's deduplication window began."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@dataclass
class Bill:
    """What some answers cost after deduplication: USD, counts per price key, and what was billed."""

    cost: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    billed: dict[str, list[str]] = field(default_factory=dict)  # kind -> resource ids billed today

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(self, other: Bill) -> None:
        self.cost += other.cost
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        for kind, ids in other.billed.items():
            self.billed.setdefault(kind, []).extend(ids)

    def summary(self) -> str:
        """E.g. '3 post read(s), 1 user read(s)': for the audit's detail column."""
        names = {
            POST_READ: "post read",
            USER_READ: "user read",
            OWNED_READ: "owned read",
            MEDIA_UPLOAD: "media upload",
            POST_EVENT: "pushed post event",
        }
        return ", ".join(f"{count} {names.get(key, key)}(s)" for key, count in sorted(self.counts.items()))


class Ledger:
    """The resources X has billed today (UTC): a resource read again the same day costs nothing."""

    def __init__(self) -> None:
        self.day: str | None = None
        # One set of ids per kind: the ids are the strings the watcher keeps anyway, so a watched
        # user's billed posts cost a set slot each, not a tuple each.
        self._seen: dict[str, set[str]] = {}

    def start_day(self, day: str, already_billed: Iterable[tuple[str, str]]) -> None:
        self.day = day
        self._seen = {}
        self.take_in(already_billed)

    def take_in(self, already_billed: Iterable[tuple[str, str]]) -> None:
        """Resources billed today elsewhere (another process on the same X app): not billed again here."""
        for kind, resource_id in already_billed:
            self._seen.setdefault(kind, set()).add(resource_id)

    def bill(self, found: Iterable[Charge], prices: Mapping[str, float]) -> Bill:
        """Price `found`, skipping resources already billed today, and remember the rest as billed."""
        bill = Bill()
        for charge in found:
            if charge.kind is not None and charge.resource_id is not None:
                seen = self._seen.setdefault(charge.kind, set())
                if charge.resource_id in seen:
                    continue
                seen.add(charge.resource_id)
                bill.billed.setdefault(charge.kind, []).append(charge.resource_id)
            bill.cost += prices.get(charge.price, 0.0)
            bill.counts[charge.price] = bill.counts.get(charge.price, 0) + 1
        return bill
