"""The newPost watcher: one poll stream per watched user, however many sessions subscribe.

At the first subscription it takes a baseline (the newest post id now); after that it
asks X only for posts newer than the cursor, paging through all of them, and persists the
cursor before telling subscribers, so a restart neither repeats nor skips a post. The
poll interval comes from X's rate-limit headers: the remaining budget is spread over the
window across every watched user, never faster than the minimum interval, and after a 429
nothing is sent before the reset. With several users and search allowed, users are folded
into `from:a OR from:b` recent-search queries, one request per batch, and a batch's cursors are
stored together (one store call: one transaction, one round trip) before any of its news is told.
If storing fails, nobody is told and the cursors stay where they were, so the next poll reads the
same posts again.

With an X Activity API push source (server/push.py), a user X pushes is not polled: the push
source hands its posts to `deliver_pushed`. X's stream is not ordered ("Posts are not delivered in
sorted order, and duplicate messages may occur": x-api/fundamentals/consuming-streaming-data.mdx),
so a pushed post is delivered when it is neither at or below the cursor nor among the ids already
delivered above it (`Watched.seen`, persisted beside the cursor, bounded). A push moves the cursor
only to PUSH_SETTLE_SECONDS (of post time) behind the newest pushed post: a post X has yet to send
is never below it, so a catch-up from the cursor (a restart, a long gap, a takeover) skips nothing,
and what it reads again is in `seen`. A timeline read is complete, so a poll moves the cursor to
the newest post it read. Users X won't push (protected, past the subscription limit, no app token)
are polled as before. The resource keeps the newest RECENT posts in id order, however they came.

Polls cost money on X's pay-per-use plan (each post returned is billed once per UTC day):
each round is metered as one audit entry, and while the daily budget is used up the watcher
pauses until it frees up, and says so in its status.
"""

from __future__ import annotations

import logging
import re
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio

from xcourier.tools import timeline
from xcourier.tools.client import TokenProvider, XClient
from xcourier.tools.errors import ForbiddenError, RateLimit, RateLimitedError, XError
from xcourier.tools.timeline import Post
from xcourier.tools.users import UserDirectory

from .audit import Refusal, metering
from .auth.store import TokenStore

if TYPE_CHECKING:
    from .fleet import Fleet

logger = logging.getLogger("xcourier.watcher")

URI_PATTERN = re.compile(r"x://users/@?([A-Za-z0-9_]{1,15})/posts")
RECENT = 20
DEFAULT_MIN_INTERVAL = 60.0
# Recent search reaches back 7 days; a cursor older than this is caught up on the timeline.
_SEARCH_REACH = 6 * 24 * 3600
# How far behind the newest search result a quiet user's cursor stays (seconds of post time).
_SEARCH_LAG = 60
# How far behind the newest pushed post the cursor stays (seconds of post time): X keeps 5 minutes of
# events for a reconnecting stream (spec 2.167: backfill_minutes 0..5), so a post later than that is
# one a backfill can't bring either. X documents no bound on how late an unordered event comes; its
# streaming guide gives a P99 delivery latency of about 4-5 s (consuming-streaming-data.mdx).
PUSH_SETTLE_SECONDS = 300.0
# At most this many delivered ids above one user's cursor; past it the cursor moves up over the oldest
# (only a user posting this much within PUSH_SETTLE_SECONDS gets there).
MAX_SEEN = 2_000
SEEN_RECORD = "watch-seen"
_SEEN_KEEP_SECONDS = 24 * 3600.0

Publisher = Callable[[str], Awaitable[None]]

# Whom the X call in progress polls for (their subscribers), so a shared poller can use one of
# their logins. None outside polls.
polling_for: ContextVar[frozenset[Hashable] | None] = ContextVar("xcourier_polling_for", default=None)


class Reader(Protocol):
    """Whose X access a subscription is checked with (hosted mode: the subscriber's own)."""

    @property
    def client(self) -> XClient: ...

    @property
    def users(self) -> UserDirectory: ...

    @property
    def tokens(self) -> TokenProvider: ...

    @property
    def user_id(self) -> str: ...


class Budget(Protocol):
    """The spend guard the watcher's reads count against (--daily-budget)."""

    async def read_refusal(self) -> Refusal | None: ...


class PushHooks(Protocol):
    """What the watcher tells a push source (server/push.py) about the users it watches."""

    async def watch(self, user_id: str, username: str) -> str | None:
        """Start pushing the user's posts; None if X will push them, else why the user is polled."""
        ...

    async def armed(self, user_id: str) -> None:
        """The user is in the watcher now: apply what arrived for them while they were being set up."""
        ...

    async def unwatch(self, user_id: str) -> None: ...

    def status(self) -> dict[str, Any]: ...


class Permission(Protocol):
    """Hosted mode: the grant (one client's sign-in) a subscription is made under, and whether it still stands."""

    def current(self) -> Hashable | None:
        """The grant of the request being handled; None where there is none."""
        ...

    async def allows(self, grant: Hashable) -> bool: ...

    async def ended(self, grant: Hashable) -> None:
        """Tell everyone else that cares (the session table) that the grant is over."""
        ...


class SubscriberTokens(Protocol):
    def add(self, subscriber: Hashable, tokens: TokenProvider, login: str) -> None: ...

    def discard(self, subscriber: Hashable) -> None: ...


def username_of(uri: str) -> str | None:
    match = URI_PATTERN.fullmatch(uri)
    return match.group(1) if match else None


class RecentPost(NamedTuple):
    """One of a watched user's newest posts, as the newPost resource shows it: built when it is read."""

    id: str
    text: str
    edit_history_tweet_ids: list[str]
    created_at: str | None


# A watched user's newest posts are kept as one bytes blob, a record a post, oldest first: the watcher keeps
# RECENT of them for every watched user, and as pydantic Posts they were 29 of the 32 KB a watched user cost
# (issue 14); as a tuple of X's own strings, still ~4.2 KB at ~100 characters a post, half of it object
# headers (tests/bench/memory.py: 8.4 KB a watched user in all then, 5.9 KB with records). Records are decoded
# only when the resource is read (~40 us for 20). Only what the resource shows is kept (the author is the
# watched user), exactly as X sent it; the common values are stored as nothing and spelled out again when read:
# - the id as its 8-byte number when it is that number's plain decimal spelling (X's are); any other
#   spelling (leading zeros, past 64 bits) as its text;
# - created_at as nothing when it is X's spelling of the id's own second: X's created_at is the id's time
#   in whole seconds (x-api/fundamentals/data-dictionary.mdx's sample post 1212092628029698048, made at
#   19:26:16.771 by its id, has "2019-12-31T19:26:16.000Z"; spec 2.167 says only ISO 8601 `date-time`);
#   any other spelling as its text;
# - the edit history as nothing when it is just the post itself ("For Tweets with no edits, there will be
#   one ID", the same page, and tools/timeline.py's fill for posts older than edits);
# - the text as UTF-8, or as UTF-16 where that is shorter (CJK: 2 bytes a character, as in the str it came
#   as, not UTF-8's 3). Strings go through "surrogatepass" UTF-8, so a lone surrogate (JSON can carry one)
#   comes back as it was; UTF-16 only takes text without surrogates, as it would pair two lone ones up.
# A record is its flags (1 byte) and the id's number (8 bytes, 0 when the id is kept as text), the text
# (sized), then as the flags say: the id's text, created_at's text, the edit history (a size: how many ids,
# then each sized). Sized: a 2-byte length, or 0xFFFF and a 4-byte one (long posts run to 25,000 characters).
_ID_TEXT = 1
_NO_TIME = 2
_TIME_TEXT = 4
_EDITED = 8
_UTF16 = 16
_HEAD = struct.Struct("<BQ")
_HEAD_SIZED = struct.Struct("<BQH")  # the head and the text's 2-byte size, read in one go
_SIZE = struct.Struct("<H")
_LONG_SIZE = struct.Struct("<I")
_LONG = 0xFFFF
_MAX_NUMBER = 2**64 - 1
_X_TIME = "%Y-%m-%dT%H:%M:%S.000Z"
# What a watched user's hosted-only maps read as until something is written to them.
_NONE: Mapping[Hashable, Any] = MappingProxyType({})


def _x_time(post_id: str) -> str:
    """created_at as X spells it for a post with this id."""
    return time.strftime(_X_TIME, time.gmtime(int(timeline.posted_at(post_id))))


def _size(size: int) -> bytes:
    return _SIZE.pack(size) if size < _LONG else _SIZE.pack(_LONG) + _LONG_SIZE.pack(size)


def _sized(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return _size(len(data)) + data


def _pack(post: Post) -> bytes:
    """One post as a record (see above)."""
    post_id, created, edits = post.id, post.created_at, post.edit_history_tweet_ids
    number = int(post_id) if post_id.isascii() and post_id.isdigit() else -1
    flags = 0 if 0 <= number <= _MAX_NUMBER and str(number) == post_id else _ID_TEXT
    text = post.text.encode("utf-8", "surrogatepass")
    if not post.text.isascii():
        try:
            wide = post.text.encode("utf-16-le")
        except UnicodeEncodeError:  # a surrogate: UTF-16 could pair it with its neighbour
            pass
        else:
            if len(wide) < len(text):
                flags, text = flags | _UTF16, wide
    tail = [_size(len(text)), text]
    if flags & _ID_TEXT:
        tail.append(_sized(post_id))
    if created is None:
        flags |= _NO_TIME
    elif flags & _ID_TEXT or created != _x_time(post_id):
        flags |= _TIME_TEXT
        tail.append(_sized(created))
    if edits != [post_id]:
        flags |= _EDITED
        tail += [_size(len(edits)), *map(_sized, edits)]
    return _HEAD.pack(flags, 0 if flags & _ID_TEXT else number) + b"".join(tail)


def _read_size(packed: bytes, at: int) -> tuple[int, int]:
    """The size at `at`, and where what it sizes starts."""
    (size,) = _SIZE.unpack_from(packed, at)
    if size != _LONG:
        return size, at + _SIZE.size
    return _LONG_SIZE.unpack_from(packed, at + _SIZE.size)[0], at + _SIZE.size + _LONG_SIZE.size


def _read_text(packed: bytes, at: int) -> tuple[str, int]:
    """The sized string at `at`, and where the next field starts."""
    size, at = _read_size(packed, at)
    return packed[at : at + size].decode("utf-8", "surrogatepass"), at + size


def _read_head(packed: bytes, at: int) -> tuple[int, int, int, int]:
    """A record's flags and number, and where its text starts and ends."""
    flags, number, size = _HEAD_SIZED.unpack_from(packed, at)
    at += _HEAD_SIZED.size
    if size == _LONG:
        size, at = _read_size(packed, at - _SIZE.size)
    return flags, number, at, at + size


def _read(packed: bytes, at: int) -> tuple[RecentPost, int]:
    """The record at `at`, and where the next one starts."""
    flags, number, start, at = _read_head(packed, at)
    text = packed[start:at].decode("utf-16-le" if flags & _UTF16 else "utf-8", "surrogatepass")
    if flags & _ID_TEXT:
        post_id, at = _read_text(packed, at)
    else:
        post_id = str(number)
    created: str | None = None
    if flags & _TIME_TEXT:
        created, at = _read_text(packed, at)
    elif not flags & _NO_TIME:
        created = _x_time(post_id)
    edits = [post_id]
    if flags & _EDITED:
        count, at = _read_size(packed, at)
        edits = []
        for _ in range(count):
            edit, at = _read_text(packed, at)
            edits.append(edit)
    return RecentPost(post_id, text, edits, created), at


def _unpack(packed: bytes) -> list[RecentPost]:
    posts: list[RecentPost] = []
    at = 0
    while at < len(packed):
        post, at = _read(packed, at)
        posts.append(post)
    return posts


def _records(packed: bytes) -> Iterator[tuple[str, int, int, int]]:
    """Each record's post id, the id's number, start and end: what remember and forget need, no more."""
    at = 0
    while at < len(packed):
        flags, number, _, end = _read_head(packed, at)
        if flags & _ID_TEXT:
            post_id, end = _read_text(packed, end)
            number = int(post_id)
        else:
            post_id = str(number)
        if flags & _TIME_TEXT:
            size, end = _read_size(packed, end)
            end += size
        if flags & _EDITED:
            count, end = _read_size(packed, end)
            for _ in range(count):
                size, end = _read_size(packed, end)
                end += size
        yield post_id, number, at, end
        at = end


@dataclass(slots=True)
class Watched:
    username: str
    user_id: str
    cursor: str | None
    packed: bytes = b""  # the newest RECENT posts, oldest first, as records (see _pack); read them as `recent`
    uris: dict[Hashable, str] = field(default_factory=dict)  # subscriber -> the URI it used
    # Hosted mode's; made on first use, so a local server's watched users carry no empty dicts (see the properties).
    _callers: dict[Hashable, str] | None = None
    _grants: dict[Hashable, Hashable] | None = None
    next_due: float = 0.0
    last_polled: float = 0.0
    interval: float = DEFAULT_MIN_INTERVAL
    delivered: int = 0
    held: bool = True  # polled by this instance (with a fleet: while it holds the user's lease)
    pushed: bool = False  # X pushes this user's posts (X Activity API): not polled
    polled_because: str | None = None  # why a user is polled although push is on
    # Ids delivered above the cursor (pushed out of order). Replaced, never changed in place, so a
    # failed commit can put the old one back; empty for almost everyone, so the shared frozenset.
    seen: AbstractSet[str] = frozenset()

    @property
    def callers(self) -> Mapping[Hashable, str]:
        """Hosted: subscriber -> the X user id behind it (a local server's users never get a map of their own)."""
        return self._callers or _NONE

    @property
    def grants(self) -> Mapping[Hashable, Hashable]:
        """Hosted: subscriber -> the grant it was made under."""
        return self._grants or _NONE

    def note_caller(self, subscriber: Hashable, user_id: str) -> None:
        if self._callers is None:
            self._callers = {}
        self._callers[subscriber] = user_id

    def note_grant(self, subscriber: Hashable, grant: Hashable) -> None:
        if self._grants is None:
            self._grants = {}
        self._grants[subscriber] = grant

    def drop_subscriber(self, subscriber: Hashable) -> None:
        del self.uris[subscriber]
        if self._callers:
            self._callers.pop(subscriber, None)
        if self._grants:
            self._grants.pop(subscriber, None)

    def is_news(self, post: Post) -> bool:
        return timeline.newer(post.id, self.cursor) and post.id not in self.seen

    @property
    def recent(self) -> list[RecentPost]:
        """The newest RECENT posts, oldest first."""
        return _unpack(self.packed)

    def remember(self, posts: Iterable[Post]) -> None:
        """Keep the newest RECENT posts in id order, whatever order they arrived in."""
        packed = self.packed
        kept = {post_id: (number, packed[start:end]) for post_id, number, start, end in _records(packed)}
        added = sorted({p.id: p for p in posts if p.id not in kept}.values(), key=lambda p: int(p.id))
        if added:
            kept.update((p.id, (int(p.id), _pack(p))) for p in added[-RECENT:])
            self.packed = b"".join(record for _, record in sorted(kept.values(), key=itemgetter(0))[-RECENT:])

    def forget(self, post_id: str) -> bool:
        """A deleted post leaves the resource. True if it was there."""
        for kept, _, start, end in _records(self.packed):
            if kept == post_id:
                self.packed = self.packed[:start] + self.packed[end:]
                return True
        return False

    def advance(self, cursor: str | None) -> bool:
        """Move the cursor up (never down) and forget the delivered ids it passes. True if it moved."""
        if len(self.seen) > MAX_SEEN:
            newest_dropped = sorted(self.seen, key=int)[len(self.seen) - MAX_SEEN - 1]
            cursor = max(cursor or "0", newest_dropped, key=int)
        if cursor is None or not timeline.newer(cursor, self.cursor):
            return False
        self.cursor = cursor
        self.seen = {i for i in self.seen if timeline.newer(i, cursor)} or frozenset()
        return True


class Watcher:
    def __init__(
        self,
        client: XClient,
        users: UserDirectory,
        store: TokenStore,
        *,
        cursor_scope: str,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        use_search: bool = True,
        clock: Callable[[], float] = time.time,
        reader: Callable[[], Reader] | None = None,
        subscriber_tokens: SubscriberTokens | None = None,
        fleet: Fleet | None = None,
        budget: Budget | None = None,
        permission: Permission | None = None,
    ) -> None:
        self._client = client
        self._users = users
        self._store = store
        self._scope = cursor_scope
        self.min_interval = min_interval
        self.use_search = use_search
        self._clock = clock
        # Hosted mode: subscriptions are checked with the caller's X access, and polls use a subscriber's.
        self._reader = reader
        self._subscriber_tokens = subscriber_tokens
        self._permission = permission
        self.fleet = fleet
        self._budget = budget
        self.paused: Refusal | None = None  # the budget is used up: no polls until `paused.until`
        self._watched: dict[str, Watched] = {}
        # Subscribing and polling each run one at a time; unsubscribing takes no lock at all,
        # so a session's cleanup never waits behind X's answers.
        self._subscribe_lock = anyio.Lock()
        self._poll_lock = anyio.Lock()
        self._wakeup = anyio.Event()
        self.publishers: list[Publisher] = []
        # Told of each subscription ended because its grant did (revoked, its login refused): the
        # subscriptions layer ends the stream or session it was made on.
        self.dropped: list[Callable[[Hashable], Awaitable[None]]] = []
        self._logged_interval: float | None = None
        self.push: PushHooks | None = None  # set when X pushes new posts (server/push.py)
        # Hosted: the newest catch-up request of the fleet's stream holder known here, and the pushed
        # users (keys of _watched) this instance is still to read for it (see keep_caught_up).
        self._catch_up_generation = 0.0
        self._catch_up_due: set[str] = set()
        self._catch_up_wake = anyio.Event()

    # -- subscriptions -------------------------------------------------------------------------

    async def subscribe(self, uri: str, subscriber: Hashable) -> None:
        """Start (or join) watching the user the URI names. Raises XError if X can't find them."""
        name = username_of(uri)
        if name is None:
            raise ValueError(f"not a newPost URI: {uri}")
        reader = self._reader() if self._reader is not None else None
        async with self._subscribe_lock:
            key = name.lower()
            watched = self._watched.get(key)
            if watched is None:
                async with metering("newPost subscribe"):
                    if reader is not None:
                        watched = await self._baseline(name, reader.client, reader.users)
                    else:
                        watched = await self._baseline(name, self._client, self._users)
                if self.fleet is not None:
                    watched.held = await self.fleet.hold(self._cursor_key(watched.username))
                self._watched[key] = watched
                logger.info(
                    "newPost watcher: now watching @%s (%s)",
                    watched.username,
                    "pushed by X" if watched.pushed else "polled",
                )
                if watched.pushed and self.push is not None:
                    await self.push.armed(watched.user_id)
            elif reader is not None:
                # Someone else's subscription let this user in; this caller must be able to see them too.
                async with metering("newPost subscribe"):
                    await timeline.newest_posts(reader.client, watched.user_id, 5)
            watched.uris[subscriber] = uri
            if reader is not None:
                watched.note_caller(subscriber, reader.user_id)
            grant = self._permission.current() if self._permission is not None else None
            if grant is not None:
                watched.note_grant(subscriber, grant)
                if self._subscriber_tokens is not None:
                    self._subscriber_tokens.add(subscriber, reader.tokens, reader.user_id)
        self._wakeup.set()

    async def unsubscribe(self, subscriber: Hashable, uri: str | None = None) -> None:
        """Drop one subscription (or all of the subscriber's); stop polling users nobody watches."""
        for key, watched in list(self._watched.items()):
            if subscriber in watched.uris and (uri is None or watched.uris[subscriber] == uri):
                watched.drop_subscriber(subscriber)
            if not watched.uris and self._watched.get(key) is watched:
                del self._watched[key]
                logger.info("newPost watcher: stopped watching @%s", watched.username)
                if self.push is not None and (watched.pushed or watched.polled_because is not None):
                    try:
                        await self.push.unwatch(watched.user_id)
                    except Exception:
                        # Left for the next start-up's reconcile; the unsubscription must finish regardless.
                        logger.exception("newPost watcher: could not end the push of @%s", watched.username)
                if self.fleet is not None and watched.held:
                    try:
                        await self.fleet.release(self._cursor_key(watched.username))
                    except Exception:
                        # The lease then runs out by itself; the unsubscription must finish regardless.
                        logger.exception("newPost watcher: could not release the lease on @%s", watched.username)
        if self._subscriber_tokens is not None and not any(subscriber in w.uris for w in self._watched.values()):
            self._subscriber_tokens.discard(subscriber)

    async def end_grant(self, grant: Hashable) -> int:
        """A grant ended (revoked, its X login refused or replaced): every subscription made under it is
        dropped, its login leaves the polls, and the subscriptions layer ends its streams. Returns how many."""
        ended = {s for w in self._watched.values() for s, g in w.grants.items() if g == grant}
        for subscriber in ended:
            await self.unsubscribe(subscriber)
            for hook in self.dropped:
                await hook(subscriber)
        if ended:
            logger.info("newPost watcher: ended %d subscription(s) of a grant that is over", len(ended))
        return len(ended)

    async def _recheck(self, watched: Watched) -> None:
        """Permission to watch is checked again whenever a poll or news runs on the subscribers' behalf: a
        grant may have ended on another instance, or X may have refused its login meanwhile."""
        if self._permission is None or not watched.grants:
            return
        for grant in set(watched.grants.values()):
            if not await self._permission.allows(grant):
                await self.end_grant(grant)
                await self._permission.ended(grant)

    async def _baseline(self, name: str, client: XClient, users: UserDirectory) -> Watched:
        user = await users.by_username(name)
        # Subscribed at X before the baseline is read: a post made in between is in the baseline or
        # in an event, never in neither.
        polled_because = await self.push.watch(user.id, user.username) if self.push is not None else None
        try:
            newest = await timeline.newest_posts(client, user.id, RECENT)
        except BaseException:
            if self.push is not None:
                with anyio.CancelScope(shield=True):
                    await self.push.unwatch(user.id)
            raise
        stored = await self._store.load_cursor(self._cursor_key(user.username))
        cursor = stored or (newest[-1].id if newest else None)
        if stored is None and cursor is not None:
            await self._store.save_cursor(self._cursor_key(user.username), cursor)
        watched = Watched(username=user.username, user_id=user.id, cursor=cursor)
        if stored is not None:
            watched.seen = await self._load_seen(watched)
        watched.pushed = self.push is not None and polled_because is None
        watched.polled_because = polled_because
        # What was delivered before (at or below the cursor, or pushed above it) is old news; newer
        # posts (made while we were down) are news.
        watched.remember([p for p in newest if cursor is not None and not watched.is_news(p)])
        watched.next_due = self._clock() + self._interval_for(len(self._watched) + 1)
        return watched

    def _cursor_key(self, username: str) -> str:
        return f"{self._scope}|{username.lower()}"

    def cursor_key(self, username: str) -> str:
        """The user's key in the store and on the fleet's feed (the push source fans out under it)."""
        return self._cursor_key(username)

    async def _load_seen(self, watched: Watched) -> AbstractSet[str]:
        record = await self._store.get_record(SEEN_RECORD, self._cursor_key(watched.username))
        ids = record.get("ids") if record else None
        if not isinstance(ids, list):
            return frozenset()
        kept = {i for i in ids if isinstance(i, str) and i.isdigit() and timeline.newer(i, watched.cursor)}
        return kept or frozenset()

    async def _commit(self, watched: Watched, *, seen_changed: bool) -> None:
        """The cursor and the ids delivered above it, stored before anyone is told: a crash after this
        can't make a restart (or the instance taking over) deliver them again."""
        if watched.cursor is not None:
            await self._store.save_cursor(self._cursor_key(watched.username), watched.cursor)
        if seen_changed:
            await self._save_seen(watched)

    async def _save_seen(self, watched: Watched) -> None:
        # After the cursor: a crash in between leaves the old ids, of which those at or below the new
        # cursor are dropped when read back (`_load_seen`); the other order could lose some.
        ids = sorted(watched.seen, key=int)
        await self._store.put_record(SEEN_RECORD, self._cursor_key(watched.username), {"ids": ids}, _SEEN_KEEP_SECONDS)

    @asynccontextmanager
    async def _undone_on_failure(self, members: Iterable[Watched]) -> AsyncIterator[None]:
        """If storing fails (or the poll is cancelled) before anyone is told, the members' cursors go back
        to where they were: the next poll reads those posts again and tells them, rather than never."""
        before = [(watched, watched.cursor, watched.seen) for watched in members]
        try:
            yield
        except BaseException:
            for watched, cursor, seen in before:
                watched.cursor, watched.seen = cursor, seen
            raise

    # -- reading -------------------------------------------------------------------------------

    def recent(self, username: str) -> Watched | None:
        return self._watched.get(username.lower())

    def status(self, caller: str | None = None) -> dict[str, Any]:
        """What is watched and how; for a hosted `caller` (an X user id), only their own subscriptions."""
        budget = {
            endpoint: {"limit": rl.limit, "remaining": rl.remaining, "reset_at": _iso(rl.reset_at)}
            for endpoint, rl in self._client.rate_limits.items()
            if endpoint in (f"GET {timeline.TIMELINE}", f"GET {timeline.SEARCH}")
        }
        paused = {"reason": self.paused.reason, "until": _iso(self.paused.until)} if self.paused is not None else None
        pushed = sum(1 for w in self._watched.values() if w.pushed)
        return {
            "state": "paused" if paused else "polling",
            "paused": paused,
            "min_interval_seconds": self.min_interval,
            "mode": "search" if self.use_search and len(self._watched) - pushed > 1 else "timeline",
            "push": self.push.status() if self.push is not None else {"state": "off"},
            "watched": [
                {
                    "username": w.username,
                    "user_id": w.user_id,
                    "subscribers": len(w.uris) if caller is None else list(w.callers.values()).count(caller),
                    "interval_seconds": round(w.interval, 3),
                    "next_poll_at": _iso(w.next_due),
                    "cursor": w.cursor,
                    "delivered": w.delivered,
                    "polled_here": w.held and not w.pushed,
                    "via": "push" if w.pushed else "poll",
                    "polled_because": w.polled_because,
                }
                for w in self._watched.values()
                if caller is None or caller in w.callers.values()
            ],
            "budget": budget,
        }

    # -- polling -------------------------------------------------------------------------------

    async def poll_due(self, *, force: bool = False) -> int:
        """Poll every user whose time has come (all of them with `force`). Returns requests made."""
        async with self._poll_lock:
            now = self._clock()
            everyone = [w for w in self._watched.values() if w.held and not w.pushed]
            # Longest-waiting first: when the budget runs out mid-round, nobody starves for ever.
            due = sorted((w for w in everyone if force or w.next_due <= now), key=lambda w: w.last_polled)
            if not due or await self._out_of_budget(everyone):
                return 0
            async with metering("newPost watcher"):
                return await self._poll_round(everyone, due, now)

    async def _out_of_budget(self, everyone: list[Watched]) -> bool:
        """The daily budget is used up: pause everyone until it frees up (checked once per round)."""
        refusal = await self._budget.read_refusal() if self._budget is not None else None
        if refusal is None:
            if self.paused is not None:
                logger.info("newPost watcher: budget available again; polling resumes")
            self.paused = None
            return False
        if self.paused is None:
            logger.warning("newPost watcher: paused: %s", refusal.reason)
        self.paused = refusal
        for watched in everyone:
            watched.next_due = max(watched.next_due, refusal.until)
        return True

    async def _poll_round(self, everyone: list[Watched], due: list[Watched], now: float) -> int:
        requests = 0
        searchable = [w for w in everyone if self._searchable(w, now)] if self.use_search else []
        searchable_ids = {id(w) for w in searchable}
        # One search request covers every searchable user, due or not, so search them all together.
        searched = searchable if len(searchable) > 1 and any(id(w) in searchable_ids for w in due) else []
        if searched:
            requests += await self._poll_search(searched)
        searched_ids = {id(w) for w in searched}
        on_timeline = [w for w in everyone if id(w) not in searched_ids]
        polled: list[Watched] = []
        for watched in due:
            if id(watched) in searched_ids:
                continue
            await self._recheck(watched)
            if not watched.uris:
                continue  # nobody may watch them any more: unwatched
            if self._wait_for_reset(watched, f"GET {timeline.TIMELINE}"):
                continue
            requests += 1
            if await self._poll_timeline(watched):
                polled.append(watched)
        # Scheduled once the round is done, from the budget X reported last, for everyone who
        # shares this endpoint's budget (not just those polled this round).
        self._schedule(polled, f"GET {timeline.TIMELINE}", requests_per_round=len(on_timeline))
        return requests

    def _wait_for_reset(self, watched: Watched, endpoint: str) -> bool:
        """Budget known to be spent: schedule for the reset instead of collecting 429s. A shared poller's
        budget is that of the logins it may poll this user with: spent only when every one is (or the
        app's is); the client then says when the first frees up."""
        now = self._clock()
        rate_limit = self._rate_limit_for([watched], endpoint)
        window = rate_limit.spent_window(now) if rate_limit is not None else None
        if window is None:
            return False
        watched.next_due = max(watched.next_due, window.reset_at)
        return True

    def _rate_limit_for(self, members: Sequence[Watched], endpoint: str) -> RateLimit | None:
        """The budget a poll of these users has on `endpoint` (with a shared poller: on their subscribers'
        logins, the one it would use)."""
        token = polling_for.set(frozenset(s for w in members for s in w.uris))
        try:
            return self._client.rate_limit_for(endpoint, self._clock())
        finally:
            polling_for.reset(token)

    def _searchable(self, watched: Watched, now: float) -> bool:
        return watched.cursor is not None and now - timeline.posted_at(watched.cursor) < _SEARCH_REACH

    async def _poll_timeline(self, watched: Watched) -> bool:
        """One user's timeline since the cursor; False if X refused (the user is rescheduled)."""
        watched.last_polled = self._clock()
        token = polling_for.set(frozenset(watched.uris))
        try:
            posts = await timeline.user_posts(self._client, watched.user_id, watched.cursor)
        except XError as exc:
            self._after_failure([watched], exc, f"GET {timeline.TIMELINE}")
            return False
        finally:
            polling_for.reset(token)
        await self._deliver(watched, posts)
        return True

    async def _poll_search(self, group: list[Watched]) -> int:
        requests = 0
        batches = timeline.search_queries(sorted(w.username for w in group))
        by_name = {w.username: w for w in group}
        searched: list[Watched] = []
        fallback: list[Watched] = []
        for names in batches:
            members = [by_name[name] for name in names]
            if not self.use_search:
                fallback.extend(members)
                continue
            if any([self._wait_for_reset(w, f"GET {timeline.SEARCH}") for w in members]):
                continue
            since_id = min((w.cursor for w in members if w.cursor is not None), key=int)
            for watched in members:
                watched.last_polled = self._clock()
            requests += 1
            token = polling_for.set(frozenset(s for w in members for s in w.uris))
            try:
                posts = await timeline.search_posts(self._client, names, since_id)
            except ForbiddenError:
                logger.warning("newPost watcher: X refused recent search; polling user timelines instead")
                self.use_search = False
                fallback.extend(members)
                continue
            except XError as exc:
                self._after_failure(members, exc, f"GET {timeline.SEARCH}")
                continue
            finally:
                polling_for.reset(token)
            searched.extend(members)
            await self._deliver_batch(members, posts)
        self._schedule(searched, f"GET {timeline.SEARCH}", requests_per_round=max(len(batches), 1))
        polled: list[Watched] = []
        for watched in fallback:
            requests += 1
            if await self._poll_timeline(watched):
                polled.append(watched)
        self._schedule(polled, f"GET {timeline.TIMELINE}", requests_per_round=len(polled))
        return requests

    async def _deliver(self, watched: Watched, posts: list[Post]) -> None:
        """What a poll read (complete: every post since the cursor): the news is told, and the cursor
        moves to the newest post read."""
        fresh = _news(watched, posts)
        newest = max((p.id for p in posts), key=int, default=None)
        if not fresh and (newest is None or not timeline.newer(newest, watched.cursor)):
            return
        if self.fleet is not None and not await self.fleet.hold(self._cursor_key(watched.username)):
            # This instance stalled past its lease and another took over: its news is the other's to tell.
            watched.held = False
            return
        had_seen = bool(watched.seen)
        async with self._undone_on_failure([watched]):
            watched.advance(newest)
            await self._commit(watched, seen_changed=had_seen)
        await self._tell(watched, fresh)
        if self.fleet is not None and fresh:
            await self.fleet.publish(self._cursor_key(watched.username), fresh)

    async def _deliver_batch(self, members: list[Watched], posts: list[Post]) -> None:
        """What one search read for a batch of users (complete for each up to its newest result): every
        member's cursor moves, the batch's cursors are stored in one call, and only then is anyone told."""
        # The search covered every member up to its newest result, so quiet members' cursors move up
        # too, minus a margin: search indexes with a delay, and a post that shows up late must still be
        # newer than its author's cursor.
        caught_up = timeline.minus_seconds(posts[-1].id, _SEARCH_LAG) if posts else None
        by_author: dict[str | None, list[Post]] = {}
        for post in posts:
            by_author.setdefault(post.author_id, []).append(post)
        cursors: dict[str, str] = {}
        seen_changed: list[Watched] = []
        news: list[tuple[Watched, list[Post]]] = []
        async with self._undone_on_failure(members):
            for watched in members:
                mine = by_author.get(watched.user_id, [])
                fresh = _news(watched, mine)
                newest = max((p.id for p in mine), key=int, default=None)
                own_news = bool(fresh) or (newest is not None and timeline.newer(newest, watched.cursor))
                # The lease is checked where the member's own posts move it, as a timeline read does (for
                # every quiet member it would cost a store call each); a lost lease leaves it all alone.
                key = self._cursor_key(watched.username)
                if own_news and self.fleet is not None and not await self.fleet.hold(key):
                    watched.held = False  # another instance took over: its news is the other's to tell
                    continue
                had_seen = bool(watched.seen)
                moved = watched.advance(newest)
                moved = watched.advance(caught_up) or moved
                if moved and watched.cursor is not None:
                    cursors[key] = watched.cursor
                if had_seen and moved:
                    seen_changed.append(watched)
                if fresh:
                    news.append((watched, fresh))
            if cursors:
                await self._store.save_cursors(cursors)
            for watched in seen_changed:
                await self._save_seen(watched)
        for watched, fresh in news:
            await self._tell(watched, fresh)
            if self.fleet is not None:
                await self.fleet.publish(self._cursor_key(watched.username), fresh)

    async def _accept_pushed(self, watched: Watched, posts: list[Post], *, commit: bool) -> int:
        """Pushed posts (any order, maybe repeated): each delivered once; the cursor trails them."""
        fresh = _news(watched, posts)
        if not fresh:
            return 0
        watched.seen = {*watched.seen, *(p.id for p in fresh)}
        newest = max(watched.seen, key=int)
        watched.advance(timeline.minus_seconds(newest, PUSH_SETTLE_SECONDS))
        if commit:
            await self._commit(watched, seen_changed=True)
        await self._tell(watched, fresh)
        return len(fresh)

    async def _tell(self, watched: Watched, fresh: list[Post]) -> None:
        if not fresh:
            return
        watched.remember(fresh)
        watched.delivered += len(fresh)
        logger.info("newPost watcher: %d new post(s) by @%s", len(fresh), watched.username)
        await self._tell_subscribers(watched)

    # -- pushed by X ----------------------------------------------------------------------------

    def watched_by_id(self, user_id: str) -> Watched | None:
        return next((w for w in self._watched.values() if w.user_id == user_id), None)

    async def deliver_pushed(self, user_id: str, posts: list[Post]) -> int:
        """Posts X pushed for a watched user: each delivered once, whatever order X sent them in.

        With a fleet, the stream holder has already put them on the feed; the instance holding the
        user's lease commits them (another instance taking over reads its store), the rest just tell."""
        watched = self.watched_by_id(user_id)
        if watched is None or not watched.pushed:
            return 0
        mine = [p for p in posts if p.author_id == user_id]
        return await self._accept_pushed(watched, mine, commit=self.fleet is None or watched.held)

    async def drop_deleted(self, user_id: str, post_id: str) -> bool:
        """X says the user deleted a post: it leaves the resource, and subscribers are told."""
        watched = self.watched_by_id(user_id)
        return watched is not None and await self._drop(watched, post_id)

    async def _drop(self, watched: Watched, post_id: str) -> bool:
        """Subscribers are told once: a repeated delete (a backfill, the feed) finds the post gone."""
        if not post_id.isdigit():
            return False
        if not watched.forget(post_id):
            if timeline.newer(post_id, watched.cursor) and post_id not in watched.seen:
                # X's stream is unordered (consuming-streaming-data.mdx): a delete may come before its post,
                # which then must not be shown. Kept with the ids delivered above the cursor.
                watched.seen = {*watched.seen, post_id}
            return False
        logger.info("newPost watcher: @%s deleted a post; it left the resource", watched.username)
        await self._tell_subscribers(watched)
        return True

    async def catch_up(self) -> int:
        """After a gap the stream's backfill can't cover: read every pushed user's timeline (or a search
        batch) since their cursor, once. Returns the requests made."""
        async with self._poll_lock:
            pushed = [w for w in self._watched.values() if w.pushed and w.held]
            if not pushed or await self._out_of_budget(pushed):
                return 0
            logger.info("newPost watcher: catching up %d pushed user(s) from X after a gap", len(pushed))
            async with metering("newPost catch-up"):
                return await self._poll_round(pushed, pushed, self._clock())

    # -- catching up a fleet after a long gap in X's stream ---------------------------------------

    async def catch_up_requested(self, generation: float) -> None:
        """The fleet's stream holder was away longer than X's backfill keeps (server/push.py): this instance
        reads the timelines of the pushed users whose lease it holds. Only noted here (this runs on the
        feed's task); keep_caught_up reads."""
        self._note_catch_up(generation)

    def _note_catch_up(self, generation: float) -> None:
        if generation <= self._catch_up_generation:
            return
        self._catch_up_generation = generation
        now = self._clock()
        for key, watched in self._watched.items():
            if watched.pushed and watched.held:
                self._catch_up_due.add(key)
                watched.next_due = now
        self._catch_up_wake.set()

    async def keep_caught_up(self) -> None:
        """Hosted: carry out the fleet's catch-up requests for the users this instance holds. The request
        is in the store too, looked at every third of a lease TTL: a message missed on the feed (pub/sub is
        at most once) still gets done."""
        assert self.fleet is not None
        try:
            # A request from before this instance started was for the users' lease holders then: not news.
            self._catch_up_generation = max(self._catch_up_generation, await self.fleet.catch_up_generation())
        except Exception:
            logger.exception("newPost watcher: could not read the fleet's last catch-up request; reading it later")
        while True:
            with anyio.move_on_after(self.fleet.lease_ttl / 3):  # the store's look period, not a synchronisation
                await self._catch_up_wake.wait()
            self._catch_up_wake = anyio.Event()
            try:
                self._note_catch_up(await self.fleet.catch_up_generation())
                await self.run_catch_ups()
            except Exception:
                logger.exception("newPost watcher: catching up after a gap in X's stream failed; trying again")

    async def run_catch_ups(self) -> int:
        """Read each due user's timeline since its cursor, once; a read X refused is tried again when X
        said it may be (the poll's schedule). Returns the requests made."""
        assert self.fleet is not None
        if not self._catch_up_due:
            return 0
        async with self._poll_lock:
            generation, now = self._catch_up_generation, self._clock()
            # Users nobody here watches any more, or whose lease another instance holds, are not ours: a
            # new lease holder looks at the user's caught-up record when it takes over (renew_leases).
            mine = [self._watched.get(key) for key in self._catch_up_due]
            held = [w for w in mine if w is not None and w.pushed and w.held]
            self._catch_up_due = {w.username.lower() for w in held}
            due = [w for w in held if w.next_due <= now]
            if not due or await self._out_of_budget(due):
                return 0
            logger.info("newPost watcher: catching up %d pushed user(s) from X after a gap in its stream", len(due))
            requests = 0
            async with metering("newPost catch-up"):
                for watched in due:
                    requests += 1
                    if not await self._poll_timeline(watched) or not watched.held:
                        continue
                    if self._catch_up_generation == generation:
                        # A request that came during the read is for a later gap: the user stays due.
                        self._catch_up_due.discard(watched.username.lower())
                    await self.fleet.mark_caught_up(self._cursor_key(watched.username), generation)
            return requests

    async def _catch_up_taken(self, taken: list[Watched]) -> None:
        """Users whose lease this instance just took: those the last holder did not catch up after the
        fleet's newest request (it died first) are read now."""
        assert self.fleet is not None
        pushed = [w for w in taken if w.pushed]
        if not pushed:
            return
        generation = await self.fleet.catch_up_generation()
        self._catch_up_generation = max(self._catch_up_generation, generation)
        for watched in pushed:
            if generation > await self.fleet.caught_up(self._cursor_key(watched.username)):
                self._catch_up_due.add(watched.username.lower())
                watched.next_due = self._clock()
                self._catch_up_wake.set()

    def poll_instead(self, user_id: str, reason: str) -> None:
        """X won't push this user any more (its subscription is gone, push gave up): poll them from now."""
        watched = self.watched_by_id(user_id)
        if watched is None or not watched.pushed:
            return
        watched.pushed, watched.polled_because = False, reason
        watched.next_due = self._clock()
        logger.warning("newPost watcher: polling @%s from now on: %s", watched.username, reason)
        self._wakeup.set()

    async def _tell_subscribers(self, watched: Watched) -> None:
        await self._recheck(watched)
        for uri in sorted(set(watched.uris.values())):
            for publish in self.publishers:
                await publish(uri)

    # -- a fleet of instances ------------------------------------------------------------------

    async def receive(self, key: str, posts: list[Post], *, pushed: bool = False, deleted: Sequence[str] = ()) -> None:
        """News from another instance: from the one polling this user (already committed to the store),
        or (`pushed`) what the fleet's stream holder read on X's activity stream, which the holder of
        this user's lease commits here; `deleted`, posts X told the stream holder the user deleted."""
        watched = self._watched.get(key.rpartition("|")[2])
        if watched is None or self._cursor_key(watched.username) != key:
            return
        for post_id in deleted:
            await self._drop(watched, post_id)
        mine = [p for p in posts if p.author_id == watched.user_id]
        if pushed:
            await self._accept_pushed(watched, mine, commit=watched.held)
            return
        fresh = _news(watched, mine)
        watched.advance(max((p.id for p in mine), key=int, default=None))
        await self._tell(watched, fresh)

    async def keep_leases(self) -> None:
        """Renew the leases this instance holds and take over those whose holder went quiet."""
        assert self.fleet is not None
        while True:
            await anyio.sleep(self.fleet.lease_ttl / 3)  # the renewal period, not a synchronisation
            try:
                await self.renew_leases()
            except Exception:
                # The store unreachable for a moment: keep polling what we hold; the next round retries.
                logger.exception("newPost watcher: could not renew leases; trying again")

    async def release_leases(self) -> None:
        """On a clean shutdown: hand this instance's users to the others now rather than after the TTL."""
        if self.fleet is None:
            return
        for watched in self._watched.values():
            if watched.held:
                watched.held = False
                await self.fleet.release(self._cursor_key(watched.username))

    async def renew_leases(self) -> None:
        assert self.fleet is not None
        taken: list[Watched] = []
        for watched in list(self._watched.values()):
            if self._watched.get(watched.username.lower()) is not watched:
                continue  # unsubscribed meanwhile: its lease was released and must stay so
            held = await self.fleet.hold(self._cursor_key(watched.username))
            if held and not watched.held:
                taken.append(watched)  # not polled here until its stored cursor is read, below
                continue
            if watched.held and not held:
                logger.warning("newPost watcher: lost the lease on @%s; another instance polls it", watched.username)
            watched.held = held
        if not taken:
            return
        # Taking over: the last holder committed its cursor before telling anyone, so the stored one is
        # where polling resumes; nothing is repeated or skipped. Read for everyone taken over at once.
        stored = await self._store.load_cursors([self._cursor_key(w.username) for w in taken])
        for watched in taken:
            cursor = stored.get(self._cursor_key(watched.username))
            if cursor is not None and timeline.newer(cursor, watched.cursor):
                watched.seen |= await self._load_seen(Watched(watched.username, watched.user_id, cursor))
                watched.advance(cursor)
            watched.held = True
            watched.next_due = self._clock()
            logger.info("newPost watcher: now polling @%s for the fleet", watched.username)
        self._wakeup.set()
        await self._catch_up_taken(taken)

    def _after_failure(self, members: list[Watched], exc: XError, endpoint: str) -> None:
        now = self._clock()
        if isinstance(exc, RateLimitedError) and exc.reset_at:
            resume = max(exc.reset_at, now + self.min_interval)
            logger.warning("newPost watcher: rate limited on %s until %s", endpoint, _iso(exc.reset_at))
        else:
            resume = now + max(self.min_interval, max(w.interval for w in members))
            logger.warning("newPost watcher: %s failed (%s); next try at %s", endpoint, exc.message, _iso(resume))
        for watched in members:
            watched.next_due = resume

    def _interval_for(
        self, requests_per_round: int, endpoint: str = f"GET {timeline.TIMELINE}", members: Sequence[Watched] = ()
    ) -> float:
        rate_limit = self._rate_limit_for(members, endpoint)
        if rate_limit is None:
            return self.min_interval
        now = self._clock()
        window_left = max(rate_limit.reset_at - now, 1.0)
        if rate_limit.remaining <= 0:
            return max(window_left, self.min_interval)
        # The rounds the remaining budget pays for, plus the one the reset pays for.
        rounds_left = rate_limit.remaining // max(requests_per_round, 1) + 1
        return max(self.min_interval, window_left / rounds_left)

    def _schedule(self, members: list[Watched], endpoint: str, *, requests_per_round: int) -> None:
        if not members:
            return
        interval = self._interval_for(requests_per_round, endpoint, members)
        now = self._clock()
        for watched in members:
            watched.interval = interval
            watched.next_due = now + interval
        if interval != self._logged_interval:
            self._logged_interval = interval
            rate_limit = self._rate_limit_for(members, endpoint)
            left = (
                f"{rate_limit.remaining} requests left until {_iso(rate_limit.reset_at)}"
                if rate_limit
                else "no budget known"
            )
            logger.info(
                "newPost watcher: polling %d user(s) every %.1f s via %s (%s)",
                len(self._watched),
                interval,
                endpoint,
                left,
            )

    async def run(self) -> None:
        """Poll forever, sleeping until the next user is due or a subscription changes things."""
        while True:
            self._wakeup = anyio.Event()  # before polling, so a subscription meanwhile isn't missed
            try:
                await self.poll_due()
            except Exception:
                # One bad round (a store error, a bug) must not end polling, or take the server down.
                logger.exception("newPost watcher: a poll round failed; trying again in %.0f s", self.min_interval)
                for watched in self._watched.values():
                    watched.next_due = max(watched.next_due, self._clock() + self.min_interval)
            upcoming = [w.next_due for w in self._watched.values() if not w.pushed]
            delay = max(0.0, min(upcoming) - self._clock()) if upcoming else None
            with anyio.move_on_after(delay):
                await self._wakeup.wait()


def _news(watched: Watched, posts: list[Post]) -> list[Post]:
    """The posts not delivered yet, once each, oldest first."""
    unique = {p.id: p for p in posts if watched.is_news(p)}
    return sorted(unique.values(), key=lambda p: int(p.id))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
