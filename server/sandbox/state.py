"""The emulated X: users, posts, likes, reposts, DMs, media, tokens, limits — all in memory."""

from __future__ import annotations

import base64
import math
import re
import secrets
import threading
import warnings
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import catalog, errors, plans, search, seed
from .activity import ActivityBook
from .config import ALL_SCOPES, DAY, GET_SEARCH_RECENT, GET_USER_TWEETS, REQUIRED_SCOPES, SandboxConfig
from .faults import Fault, FaultBook
from .ids import IdGenerator, iso, snowflake_for, to_base36
from .media import CATEGORIES, ONE_SHOT_CATEGORIES, Media, ProcessingPlan, check_size, kind_of, sniff
from .oauth import OAuthServer
from .ratelimit import APP_DAY_PREFIX, USER_DAY_PREFIX, RateLimiter, RateLimitState
from .tokens import Token, TokenBook

MAX_WEIGHTED_LENGTH = 280
MAX_DM_LENGTH = 10000
# GET /2/users/{id}/tweets only reaches a user's newest 3,200 posts (docs.x.com timelines intro).
TIMELINE_DEPTH = 3200
RECENT_SEARCH_SECONDS = 7 * 24 * 3600
_FROM_TERM = re.compile(r"^from:([A-Za-z0-9_]{1,15})$", re.IGNORECASE)
# twitter-text's mention rule, simplified: @ and 1-15 word characters, not preceded by one.
_MENTION = re.compile(r"(?<![A-Za-z0-9_])[@\uff20]([A-Za-z0-9_]{1,15})")
# Endpoints whose answers are post reads, counted towards pay-per-use's monthly cap.
_POST_READ_ENDPOINTS = frozenset({GET_USER_TWEETS, GET_SEARCH_RECENT}) | catalog.POST_READ_ENDPOINTS
# The undo and read endpoints' scopes join the table the front door (endpoint.py) checks.
REQUIRED_SCOPES.update(catalog.REQUIRED_SCOPES)
# Pay-per-use "User Interaction: Delete" (pricing.mdx): unlike, unrepost.
_INTERACTION_DELETE = 10_000
# The one app the sandbox plays: the subject of the per-app 24-hour windows.
_APP = "app"


@dataclass
class User:
    id: str
    username: str
    name: str
    accepts_dms: bool

    def public(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "username": self.username}


@dataclass
class Post:
    id: str
    text: str
    author_id: str
    created_at: float
    submitted_text: str
    media_keys: list[str] = field(default_factory=list)
    deleted: bool = False
    in_reply_to: Post | None = None
    quoted: Post | None = None
    poll: dict[str, Any] | None = None  # {"id", "options", "duration_minutes"} as sent
    reply_settings: str | None = None

    @property
    def mentions(self) -> set[str]:
        return {name.lower() for name in _MENTION.findall(self.submitted_text)}

    def render(self, fields: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "edit_history_tweet_ids": [self.id]}
        if "created_at" in fields:
            out["created_at"] = iso(self.created_at)
        if "author_id" in fields:
            out["author_id"] = self.author_id
        if "conversation_id" in fields:
            root = self
            while root.in_reply_to is not None:
                root = root.in_reply_to
            out["conversation_id"] = root.id
        if "attachments" in fields and self.media_keys:
            out["attachments"] = {"media_keys": list(self.media_keys)}
        if "in_reply_to_user_id" in fields and self.in_reply_to is not None:
            out["in_reply_to_user_id"] = self.in_reply_to.author_id
        if "reply_settings" in fields:
            # X answers "everyone" for a post made without reply_settings (the field's documented default).
            out["reply_settings"] = self.reply_settings or "everyone"
        if "attachments" in fields and self.poll is not None:
            out.setdefault("attachments", {})["poll_ids"] = [self.poll["id"]]
        if "referenced_tweets" in fields:
            refs = [("replied_to", self.in_reply_to), ("quoted", self.quoted)]
            listed = [{"type": kind, "id": post.id} for kind, post in refs if post is not None]
            if listed:
                out["referenced_tweets"] = listed
        return out


@dataclass
class DirectMessage:
    id: str
    conversation_id: str
    sender_id: str
    recipient_id: str
    text: str
    attachments: list[str]
    created_at: float


@dataclass(frozen=True)
class Page:
    posts: list[Post]
    meta: dict[str, Any]


class Sandbox:
    """Thread-safe in-memory X. Every public method takes the lock, so the admin API, the
    HTTP handlers and test code on other threads can all use one instance."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._lock = threading.RLock()
        self._tokens = TokenBook()
        self._ids = IdGenerator()
        self.faults = FaultBook()
        self.oauth = OAuthServer(self.config, self._lock, self.now, self._tokens, self._user_id_for_username)
        self.activity = ActivityBook(self)  # the X Activity API: subscriptions, events, app-only tokens
        self._seed()

    # ---- lifecycle -------------------------------------------------------------------------

    def _seed(self) -> None:
        self._clock_offset = 0.0
        self.oauth.reset()
        self.rate_limiter = RateLimiter(
            {**catalog.RATE_LIMITS, **self.config.effective_rate_limits()}, self.config.rate_limit_window
        )
        self.user_daily = RateLimiter(
            {**catalog.USER_DAILY_LIMITS, **self.config.effective_user_daily_limits()}, DAY, USER_DAY_PREFIX
        )
        self.app_daily = RateLimiter(self.config.effective_app_daily_limits(), DAY, APP_DAY_PREFIX)
        self.plan = plans.parse_plan(self.config.plan)
        self._credits: int | None = None if self.config.credits_usd is None else round(self.config.credits_usd * 1e6)
        self._capped = False
        self._post_read_cap = self.plan.monthly_post_read_cap
        self._post_reads: dict[str, int] = {}  # "YYYY-MM" -> post reads billed that month
        self._billed: set[tuple[str, str, str]] = set()  # (kind, resource id, UTC day): billed once a day
        self.faults.clear()
        self._calls: dict[str, int] = {}
        # Who asked for what, in order (bounded): lets a test see whose token each poll used.
        self._requests: deque[dict[str, str]] = deque(maxlen=10_000)
        self.users: dict[str, User] = {u.id: User(u.id, u.username, u.name, u.accepts_dms) for u in seed.USERS}
        self.posts: dict[str, Post] = {}
        # (author id, submitted text) of live posts: X's duplicate check, without a scan of every post (a
        # benchmark makes thousands, and a scan per create made each one slower than the last).
        self._live_texts: Counter[tuple[str, str]] = Counter()
        self.likes: set[tuple[str, str]] = set()
        self.retweets: set[tuple[str, str]] = set()
        self.bookmarks: list[tuple[str, str]] = []  # (user id, post id), oldest bookmark first
        self.dms: list[DirectMessage] = []
        self.media: dict[str, Media] = {}
        self.processing = ProcessingPlan()
        self.activity.reset()
        # Seed relative to the (injectable) clock so seeded posts are always in the past and inside
        # the 7-day recent-search window, yet fully deterministic under a fixed clock.
        hour = int(self.now() // 3600) * 3600
        last = 0
        for index, (username, text, hours_ago) in enumerate(seed.POSTS):
            created = float(hour - hours_ago * 3600)
            post_id = str(snowflake_for(created, sequence=index))
            author = self._user_by_username(username)
            assert author is not None
            self.posts[post_id] = Post(post_id, text, author.id, created, text)
            self._live_texts[author.id, text] += 1
            last = max(last, int(post_id))
        self._ids.reset(last)

    def issued_secrets(self) -> set[str]:
        """Every access and refresh token this sandbox ever issued, for leak checks."""
        with self._lock:
            access = set(self._tokens.issued)
        return access | self.oauth.issued_refresh_tokens()

    def reset(self) -> None:
        """Back to the seeded world. Minted tokens survive: a reset is X's data, not your login."""
        with self._lock:
            self._seed()

    # ---- clock -------------------------------------------------------------------------------

    def now(self) -> float:
        return self.config.clock() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self._clock_offset += seconds
            return self.now()

    # ---- tokens ------------------------------------------------------------------------------

    def mint_token(
        self, username: str = seed.DEMO_USERNAME, ttl: float | None = None, scopes: Iterable[str] | None = None
    ) -> tuple[str, float]:
        """A token for `username` without the OAuth dance; every scope unless `scopes` says less."""
        with self._lock:
            user = self._user_by_username(username)
            if user is None:
                raise KeyError(f"unknown sandbox user: {username}")
            granted = ALL_SCOPES if scopes is None else frozenset(scopes)
            unknown = granted - ALL_SCOPES
            if unknown:
                raise ValueError(f"unknown scopes: {sorted(unknown)}")
            token = "sbx-" + secrets.token_urlsafe(24)
            expires_at = self.now() + (self.config.access_token_ttl if ttl is None else ttl)
            self._tokens.issue(token, Token(user.id, expires_at, granted))
            return token, expires_at

    def expire_tokens(self, token: str | None = None) -> int:
        """Expire one access token, or all of them (minted and OAuth-issued alike)."""
        with self._lock:
            return self._tokens.expire(token, self.now())

    def authenticate(self, authorization: str | None, required_scopes: frozenset[str] = frozenset()) -> User:
        with self._lock:
            if not authorization or not authorization.lower().startswith("bearer "):
                raise errors.unauthorized()
            token = self._tokens.get(authorization[7:].strip())
            if token is None or token.expires_at <= self.now():
                raise errors.unauthorized()
            if token.app_only:
                # X's wording for an app-only Bearer Token on a user-context endpoint.
                raise errors.forbidden(
                    "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint. Supported "
                    "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context]."
                )
            missing = required_scopes - token.scopes
            if missing:
                raise errors.forbidden(f"Missing required OAuth 2.0 scope(s): {', '.join(sorted(missing))}")
            return self.users[token.user_id]

    # ---- bookkeeping -----------------------------------------------------------------------

    def count_call(self, key: str) -> None:
        with self._lock:
            self._calls[key] = self._calls.get(key, 0) + 1

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def note_request(self, key: str, path: str, username: str) -> None:
        with self._lock:
            self._requests.append({"endpoint": key, "path": path, "user": username})

    def requests(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._requests)

    def hit_rate_limit(self, user_id: str, key: str) -> RateLimitState:
        with self._lock:
            return self.rate_limiter.hit(user_id, key, self.now())

    def peek_rate_limit(self, user_id: str, key: str) -> RateLimitState:
        with self._lock:
            return self.rate_limiter.peek(user_id, key, self.now())

    def _windows(self, user_id: str, key: str) -> list[tuple[RateLimiter, str]]:
        return [
            (limiter, subject)
            for limiter, subject in ((self.rate_limiter, user_id), (self.user_daily, user_id), (self.app_daily, _APP))
            if limiter is self.rate_limiter or limiter.applies_to(key)
        ]

    def hit_limits(self, user_id: str, key: str) -> tuple[bool, dict[str, str]]:
        """Every window of the endpoint (15 minutes per user; 24 hours per user and per app where X
        has one): the call counts in all of them only if none is spent. Returns (allowed, headers)."""
        with self._lock:
            now = self.now()
            windows = self._windows(user_id, key)
            states = [limiter.peek(subject, key, now) for limiter, subject in windows]
            allowed = all(state.allowed for state in states)
            if allowed:
                states = [limiter.hit(subject, key, now) for limiter, subject in windows]
            headers: dict[str, str] = {}
            for state in states:
                headers.update(state.headers())
            return allowed, headers

    def peek_limits(self, user_id: str, key: str) -> dict[str, str]:
        with self._lock:
            headers: dict[str, str] = {}
            for limiter, subject in self._windows(user_id, key):
                headers.update(limiter.peek(subject, key, self.now()).headers())
            return headers

    def set_rate_limit(self, key: str, limit: int, window: str = "15min") -> None:
        with self._lock:
            limiter = {"15min": self.rate_limiter, "24h-user": self.user_daily, "24h-app": self.app_daily}[window]
            limiter.limits[key] = limit

    # ---- plan, credits, usage cap -----------------------------------------------------------

    def set_plan(self, name: str) -> None:
        with self._lock:
            self.plan = plans.parse_plan(name)
            self._post_read_cap = self.plan.monthly_post_read_cap

    def set_credits(self, usd: float | None) -> None:
        """The pay-per-use balance; None stops metering."""
        with self._lock:
            self._credits = None if usd is None else round(usd * 1e6)

    def set_usage_cap(self, capped: bool | None = None, post_read_cap: int | None = -1) -> None:
        """`capped` forces the cap on or off; `post_read_cap` sets the monthly post reads (None: no cap)."""
        with self._lock:
            if capped is not None:
                self._capped = capped
            if post_read_cap != -1:
                self._post_read_cap = post_read_cap

    def billing(self) -> dict[str, Any]:
        with self._lock:
            return {
                "plan": self.plan.name,
                "self_serve": self.plan.self_serve,
                "credits_usd": None if self._credits is None else self._credits / 1e6,
                "capped": self._capped,
                "post_reads_this_month": self._post_reads.get(self._month(), 0),
                "post_read_cap": self._post_read_cap,
            }

    def _month(self) -> str:
        return datetime.fromtimestamp(self.now(), tz=UTC).strftime("%Y-%m")

    def check_spend(self, key: str) -> None:
        """Before the work: a usage cap answers 429 usage-capped, an empty pay-per-use balance 402.
        X documents neither the order of these checks nor whether a balance that is positive but
        below the price is refused; the sandbox refuses at zero or below (X's auto-recharge docs
        speak of zero and negative balances, so a call may take a balance below zero)."""
        with self._lock:
            if self._capped:
                raise errors.usage_capped()
            cap = self._post_read_cap
            if key in _POST_READ_ENDPOINTS and cap is not None and self._post_reads.get(self._month(), 0) >= cap:
                raise errors.usage_capped()
            if self.plan.pays_with_credits and self._credits is not None and self._credits <= 0:
                raise errors.credits_depleted()

    def _charge(self, micros: int) -> None:
        if self.plan.pays_with_credits and self._credits is not None:
            self._credits -= micros

    def charge_reads(self, kind: str, ids: Iterable[str], price: int) -> None:
        """Per resource returned, the same resource once per UTC day (pricing.mdx, deduplication)."""
        with self._lock:
            day = datetime.fromtimestamp(self.now(), tz=UTC).strftime("%Y-%m-%d")
            fresh = [i for i in ids if (kind, i, day) not in self._billed]
            self._billed.update((kind, i, day) for i in fresh)
            if kind in ("post", "owned-post"):
                month = self._month()
                self._post_reads[month] = self._post_reads.get(month, 0) + len(fresh)
            self._charge(price * len(fresh))

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.add(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, key: str) -> Fault | None:
        with self._lock:
            return self.faults.take(key)

    # ---- users -------------------------------------------------------------------------------

    def _user_by_username(self, username: str) -> User | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def _user_id_for_username(self, username: str) -> str | None:
        user = self._user_by_username(username)
        return user.id if user is not None else None

    def add_user(self, username: str, name: str | None = None, accepts_dms: bool = True) -> User:
        """A new account (admin API), e.g. to watch many users at once."""
        with self._lock:
            if not re.fullmatch(r"[A-Za-z0-9_]{1,15}", username):
                raise ValueError("username must be 1-15 letters, digits or underscores")
            if self._user_by_username(username) is not None:
                raise ValueError(f"user {username} exists")
            user = User(self._ids.next(self.now()), username, name or username, accepts_dms)
            self.users[user.id] = user
            return user

    def user_by_username(self, username: str) -> User | None:
        with self._lock:
            return self._user_by_username(username)

    def user_by_id(self, user_id: str) -> User | None:
        with self._lock:
            return self.users.get(user_id)

    # ---- posts -------------------------------------------------------------------------------

    def _live_post(self, post_id: str) -> Post | None:
        post = self.posts.get(post_id)
        return post if post is not None and not post.deleted else None

    def create_post(
        self,
        author: User,
        text: str | None,
        media_ids: list[str] | None,
        *,
        reply_to: str | None = None,
        quote_id: str | None = None,
        via_api: bool = True,
        poll: dict[str, Any] | None = None,
        reply_settings: str | None = None,
    ) -> Post:
        """`via_api` False: the account posting from X's own apps (the admin API), where the
        API plans' rules and prices don't apply."""
        with self._lock:
            text = text or ""
            if not text and not media_ids:
                raise errors.invalid_request(
                    "Either text or media must be provided.", {"text": [], "media.media_ids": []}
                )
            if text:
                _check_weighted_length(text)
            if via_api:
                plans.check_cashtags(self.plan, text)
            quoted = self._quote_target(quote_id, via_api) if quote_id is not None else None
            parent = self._reply_target(author, reply_to, via_api) if reply_to is not None else None
            media = self._usable_media(author, media_ids or [], for_dm=False) if media_ids else []
            if text and self._live_texts[author.id, text]:
                raise errors.forbidden("You are not allowed to create a Tweet with duplicate content.")
            post_id = self._ids.next(self.now())
            shown = text
            if media:
                # X appends the media's t.co link to the text of a post with media.
                shown = f"{text} https://t.co/{to_base36(int(post_id))[-10:]}".strip()
            keys = [m.media_key for m in media]
            post = Post(post_id, shown, author.id, self.now(), text, keys, in_reply_to=parent, quoted=quoted)
            post.reply_settings = reply_settings
            if poll is not None:
                post.poll = {**poll, "id": self._ids.next(self.now())}
            self.posts[post_id] = post
            self._live_texts[author.id, text] += 1
            self.activity.post_created(post)
            if via_api:
                self._charge(_post_price(text, parent is not None and parent.author_id != author.id))
            return post

    def _quote_target(self, quote_id: str, via_api: bool) -> Post:
        if via_api:
            plans.check_quote(self.plan)
        quoted = self._live_post(quote_id)
        if quoted is None:
            raise errors.not_found("tweet", "quote_tweet_id", quote_id)
        return quoted

    def _reply_target(self, author: User, reply_to: str, via_api: bool) -> Post:
        parent = self._live_post(reply_to)
        if parent is None:
            raise errors.forbidden(plans.REPLY_TARGET_GONE)
        if via_api:
            summoned = author.username.lower() in parent.mentions or (
                parent.quoted is not None and parent.quoted.author_id == author.id
            )
            plans.check_reply(self.plan, author.id, parent.author_id, summoned)
        return parent

    def delete_post(self, user: User, post_id: str) -> None:
        with self._lock:
            post = self._live_post(post_id)
            if post is None:
                raise errors.not_found("tweet", "id", post_id)
            if post.author_id != user.id:
                raise errors.forbidden("You are not authorized to delete this Tweet.")
            post.deleted = True
            self._live_texts[post.author_id, post.submitted_text] -= 1
            self.activity.post_deleted(post)
            self._charge(plans.CONTENT_MANAGE)

    def _require_self(self, user: User, path_user_id: str, action: str) -> None:
        if path_user_id != user.id:
            raise errors.forbidden(f"You are not permitted to {action} on behalf of another user.")

    def like(self, user: User, path_user_id: str, tweet_id: str) -> None:
        with self._lock:
            self._require_self(user, path_user_id, "like")
            plans.check_like(self.plan)
            if self._live_post(tweet_id) is None:
                raise errors.not_found("tweet", "tweet_id", tweet_id)
            self.likes.add((user.id, tweet_id))
            self._charge(plans.USER_INTERACTION_CREATE)

    def retweet(self, user: User, path_user_id: str, tweet_id: str) -> None:
        with self._lock:
            self._require_self(user, path_user_id, "repost")
            if self._live_post(tweet_id) is None:
                raise errors.not_found("tweet", "tweet_id", tweet_id)
            self.retweets.add((user.id, tweet_id))
            self._charge(plans.USER_INTERACTION_CREATE)

    def unlike(self, user: User, path_user_id: str, tweet_id: str) -> None:
        """Idempotent, as X documents DELETE: unliking a post that isn't liked answers liked=false too."""
        with self._lock:
            self._require_self(user, path_user_id, "unlike")
            plans.check_like(self.plan)  # "Likes" left self-serve on 2026-04-20; inferred to cover unlike
            if (user.id, tweet_id) in self.likes:
                self.likes.discard((user.id, tweet_id))
                self._charge(_INTERACTION_DELETE)

    def unretweet(self, user: User, path_user_id: str, tweet_id: str) -> None:
        with self._lock:
            self._require_self(user, path_user_id, "unrepost")
            if (user.id, tweet_id) in self.retweets:
                self.retweets.discard((user.id, tweet_id))
                self._charge(_INTERACTION_DELETE)

    def live_post(self, post_id: str) -> Post | None:
        with self._lock:
            return self._live_post(post_id)

    def bookmark(self, user: User, tweet_id: str) -> None:
        """Bookmarks are made in X's apps here (tests call this): xcourier only reads them."""
        with self._lock:
            if self._live_post(tweet_id) is None:
                raise errors.not_found("tweet", "tweet_id", tweet_id)
            if (user.id, tweet_id) not in self.bookmarks:
                self.bookmarks.append((user.id, tweet_id))

    def bookmarked_posts(self, user_id: str) -> list[Post]:
        """Newest bookmark first; deleted posts drop out."""
        with self._lock:
            ids = [t for u, t in reversed(self.bookmarks) if u == user_id]
            return [p for t in ids if (p := self._live_post(t)) is not None]

    def mentions_of(self, user_id: str) -> list[Post]:
        """Posts that @mention the user, newest first (GET /2/users/{id}/mentions; X's own posts excluded)."""
        with self._lock:
            user = self.users.get(user_id)
            if user is None:
                return []
            name = user.username.lower()
            return sorted(
                (p for p in self.posts.values() if not p.deleted and name in p.mentions and p.author_id != user_id),
                key=lambda p: int(p.id),
                reverse=True,
            )

    def user_posts(self, user_id: str) -> list[Post]:
        with self._lock:
            own = sorted(
                (p for p in self.posts.values() if p.author_id == user_id and not p.deleted),
                key=lambda p: int(p.id),
                reverse=True,
            )
            return own[:TIMELINE_DEPTH]

    def render_posts(self, posts: list[Post], fields: set[str], expansions: set[str]) -> dict[str, Any]:
        """`data` (and `includes.users` for the user expansions the sandbox models); the included
        users are billed as user reads, as X bills every resource returned."""
        if not posts:
            return {}
        from .fields import USER_EXPANSIONS  # local: fields imports starlette, state stays light

        wanted = [name for name in USER_EXPANSIONS if name in expansions]
        data = [p.render(fields | set(wanted)) for p in posts]
        user_ids = list(dict.fromkeys(row[name] for row in data for name in wanted if name in row))
        body: dict[str, Any] = {"data": data}
        if user_ids:
            with self._lock:
                body["includes"] = {"users": [self.users[i].public() for i in user_ids if i in self.users]}
            self.charge_reads("user", user_ids, plans.USER_READ)
        return body

    def check_search_since_id(self, since_id: str | None) -> None:
        """Recent search reaches back 7 days; an older since_id is a 400 whose wording is X's, as
        developers quote it ("'since_id' must be a tweet id created after 2026-06-22T16:35Z. Please
        use a 'since_id' that is larger than 2069097036665323520")."""
        if since_id is None:
            return
        with self._lock:
            cutoff = math.ceil((self.now() - RECENT_SEARCH_SECONDS) / 60) * 60
            floor = snowflake_for(cutoff)
            if int(since_id) < floor:
                moment = datetime.fromtimestamp(cutoff, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
                raise errors.invalid_request(
                    f"'since_id' must be a tweet id created after {moment}. Please use a 'since_id' that is "
                    f"larger than {floor}",
                    {"since_id": [since_id]},
                )

    def search_recent(self, query: str) -> list[Post]:
        with self._lock:
            plans.check_query_length(self.plan, query)
            matches = search.parse(query)
            cutoff = self.now() - RECENT_SEARCH_SECONDS

            def name_of(user_id: str) -> str:
                user = self.users.get(user_id)
                return user.username if user is not None else ""

            return sorted(
                (p for p in self.posts.values() if not p.deleted and p.created_at >= cutoff and matches(p, name_of)),
                key=lambda p: int(p.id),
                reverse=True,
            )

    # ---- direct messages -------------------------------------------------------------------

    def send_dm(self, sender: User, participant_id: str, text: str | None, media_ids: list[str]) -> DirectMessage:
        with self._lock:
            recipient = self.users.get(participant_id)
            if recipient is None:
                raise errors.not_found("user", "participant_id", participant_id)
            if recipient.id == sender.id:
                raise errors.invalid_request(
                    "You cannot send a direct message to yourself.", {"participant_id": [participant_id]}
                )
            if not text and not media_ids:
                raise errors.invalid_request(
                    "Either text or attachments must be provided.", {"text": [], "attachments": []}
                )
            if len(media_ids) > 1:
                raise errors.invalid_request("Only one attachment is allowed per message.", {"attachments": media_ids})
            if text and len(text) > MAX_DM_LENGTH:
                raise errors.invalid_request(
                    f"Message text must be at most {MAX_DM_LENGTH} characters.", {"text": [text[:50]]}
                )
            media = self._usable_media(sender, media_ids, for_dm=True)
            if not recipient.accepts_dms:
                # X's wording for a recipient whose settings refuse the sender (v1.1 error 349).
                raise errors.forbidden("You cannot send messages to this user.")
            low, high = sorted((sender.id, recipient.id), key=int)
            dm = DirectMessage(
                id=self._ids.next(self.now()),
                conversation_id=f"{low}-{high}",
                sender_id=sender.id,
                recipient_id=recipient.id,
                text=text or "",
                attachments=[m.id for m in media],
                created_at=self.now(),
            )
            self.dms.append(dm)
            self._charge(plans.DM_CREATE)
            return dm

    # ---- media -------------------------------------------------------------------------------

    def _usable_media(self, user: User, media_ids: list[str], *, for_dm: bool) -> list[Media]:
        param = "attachments.media_id" if for_dm else "media.media_ids"
        if not for_dm and len(media_ids) > 4:
            raise errors.invalid_request("A post can have at most 4 media attachments.", {param: media_ids})
        found: list[Media] = []
        for media_id in media_ids:
            media = self.media.get(media_id)
            if (
                media is None
                or media.owner_id != user.id
                or media.state != "succeeded"
                or media.expires_at <= self.now()
            ):
                # Unknown, someone else's, unprocessed or expired ids all get X's one message; for a video
                # still `pending`, POST /2/tweets answered exactly this (abraham/twitteroauth#1222, 2024).
                raise errors.invalid_request("Your media IDs are invalid.", {param: media_ids})
            category = media.category or ""
            if for_dm and category and not category.startswith("dm_"):
                raise errors.invalid_request("Your media IDs are invalid.", {param: media_ids})
            if not for_dm and category.startswith("dm_"):
                raise errors.invalid_request("Your media IDs are invalid.", {param: media_ids})
            found.append(media)
        kinds = {m.kind for m in found}
        if len(found) > 1 and kinds & {"gif", "video"}:
            raise errors.invalid_request("A post can have up to 4 images or a single GIF or video.", {param: media_ids})
        return found

    def upload_simple(self, owner: User, data: bytes, category: str | None, media_type: str | None) -> Media:
        with self._lock:
            if category not in ONE_SHOT_CATEGORIES:
                raise errors.invalid_request(
                    f"media_category must be one of {list(ONE_SHOT_CATEGORIES)}.",
                    {"media_category": [str(category)]},
                )
            if not data:
                raise errors.invalid_request("The media payload is empty.", {"media": []})
            detected = media_type or sniff(data)
            if detected is None or not (detected.startswith("image/") or detected.startswith("text/")):
                raise errors.invalid_request(
                    "Unsupported media type; the one-shot upload takes images and subtitles.",
                    {"media_type": [str(media_type)]},
                )
            check_size(len(data), kind_of(detected, category))
            media = Media(self._ids.next(self.now()), owner.id, detected, category, self.now(), len(data))
            media.append(0, data)
            media.finalize()
            self.media[media.id] = media
            return media

    def media_initialize(
        self, owner: User, media_type: str | None, total_bytes: int | None, category: str | None
    ) -> Media:
        with self._lock:
            if not media_type:
                raise errors.invalid_request("media_type is required.", {"media_type": []})
            if category is not None and category not in CATEGORIES:
                raise errors.invalid_request(
                    f"media_category must be one of {list(CATEGORIES)}.", {"media_category": [category]}
                )
            if total_bytes is None or total_bytes < 0:
                raise errors.invalid_request("total_bytes is required.", {"total_bytes": [str(total_bytes)]})
            check_size(total_bytes, kind_of(media_type, category))
            media = Media(
                self._ids.next(self.now()), owner.id, media_type, category, self.now(), total_bytes, chunked=True
            )
            self.media[media.id] = media
            return media

    def _owned_media(self, owner: User, media_id: str) -> Media:
        media = self.media.get(media_id)
        if media is None or media.owner_id != owner.id:
            raise errors.not_found("media", "media_id", media_id)
        return media

    def media_append(self, owner: User, media_id: str, segment_index: int, chunk: bytes) -> Media:
        with self._lock:
            media = self._owned_media(owner, media_id)
            if not 0 <= segment_index <= 999:
                raise errors.invalid_request(
                    "segment_index must be between 0 and 999.", {"segment_index": [str(segment_index)]}
                )
            media.append(segment_index, chunk)
            return media

    def media_finalize(self, owner: User, media_id: str) -> Media:
        with self._lock:
            media = self._owned_media(owner, media_id)
            media.finalize(self.processing)
            return media

    def set_processing(self, **changes: Any) -> dict[str, object]:
        """Change how the next finalized GIFs and videos process (admin API); returns the plan."""
        with self._lock:
            for name, value in changes.items():
                setattr(self.processing, name, value)
            return self.processing.describe()

    def media_status(self, owner: User, media_id: str) -> Media:
        with self._lock:
            media = self._owned_media(owner, media_id)
            if not media.needs_processing:
                # STATUS is for media X processes (GIF, video): "If processing_info is returned,
                # proceed to Step 4 [STATUS]. If not, the media is ready to use" (xdevplatform/docs
                # x-api/media/quickstart/media-upload-chunked.mdx). X answers STATUS on an image
                # with a 400 (issue 11, measured); the wording is inferred.
                raise errors.invalid_request(
                    f"Media {media_id} has no processing status: only GIF and video uploads are processed.",
                    {"media_id": [media_id]},
                )
            media.advance()
            return media

    # ---- admin view ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": self.now(),
                "users": [{**u.public(), "accepts_dms": u.accepts_dms} for u in self.users.values()],
                "posts": [
                    {
                        "id": p.id,
                        "text": p.text,
                        "author_id": p.author_id,
                        "created_at": iso(p.created_at),
                        "media_keys": list(p.media_keys),
                        "deleted": p.deleted,
                    }
                    for p in sorted(self.posts.values(), key=lambda p: int(p.id))
                ],
                "likes": [{"user_id": u, "tweet_id": t} for u, t in sorted(self.likes)],
                "retweets": [{"user_id": u, "tweet_id": t} for u, t in sorted(self.retweets)],
                "dms": [
                    {
                        "dm_event_id": d.id,
                        "dm_conversation_id": d.conversation_id,
                        "sender_id": d.sender_id,
                        "sender": self.users[d.sender_id].username,
                        "recipient_id": d.recipient_id,
                        "recipient": self.users[d.recipient_id].username,
                        "text": d.text,
                        "attachments": list(d.attachments),
                        "created_at": iso(d.created_at),
                    }
                    for d in self.dms
                ],
                "media": [
                    {
                        "id": m.id,
                        "media_key": m.media_key,
                        "owner_id": m.owner_id,
                        "media_type": m.media_type,
                        "media_category": m.category,
                        "size": m.size,
                        "state": m.state,
                    }
                    for m in self.media.values()
                ],
            }


def parse_from_query(query: str) -> list[str]:
    """`from:a OR from:b`, optionally in parentheses; the only query grammar the sandbox knows."""
    body = query.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1].strip()
    names: list[str] = []
    for term in body.split(" OR "):
        match = _FROM_TERM.match(term.strip())
        if match is None:
            raise errors.invalid_request(
                f"The sandbox only supports queries of the form 'from:name OR from:other'; got [{query}].",
                {"query": [query]},
            )
        names.append(match.group(1))
    return names


# One import at a time: a post and the runner's warm-up may both ask first.
_text_rules_lock = threading.Lock()
_twitter_text_module: Any = None


def _twitter_text() -> Any:
    """twitter-text, imported on first need (~0.2 s). It imports pkg_resources, whose deprecation warning
    would reach the stderr of `xcourier demo` and `serve --sandbox` users: not theirs to act on.

    That one warning is filtered for good rather than all of them for the import's duration: catch_warnings
    swaps the process's filter list, which is not safe while another thread (tools/text.py loading its rules
    in a worker thread) swaps it too."""
    global _twitter_text_module
    if _twitter_text_module is None:
        with _text_rules_lock:
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            import twitter_text

            _twitter_text_module = twitter_text
    return _twitter_text_module


def load_text_rules() -> None:
    """Import what post texts are checked with now rather than at the first post (the runner's warm-up)."""
    _twitter_text()


def _post_price(text: str, summoned_reply: bool) -> int:
    # pricing.mdx prices a post with a URL, a summoned reply and a plain post; which wins for a
    # summoned reply with a URL is not documented: the sandbox bills the URL price.
    # twitter-text finds no URL in text without a "." (extract_urls' own first test): no import for that.
    if "." in text and _twitter_text().extract_urls(text):
        return plans.POST_CREATE_WITH_URL
    return plans.POST_CREATE_SUMMONED if summoned_reply else plans.POST_CREATE


# twitter-text's parser is super-linear on some inputs (minutes for a few KB): longer text is refused
# unparsed. Inferred: X documents only the 280 weighted characters, and no post within them is this long.
MAX_RAW_LENGTH = 4096


def _check_weighted_length(text: str) -> None:
    if len(text) <= MAX_WEIGHTED_LENGTH and text.isascii() and "." not in text:
        # Decided without importing twitter-text: in ASCII text without a "." it finds no URL and no emoji,
        # and weighs every character 1 (after folding CRLF into one), so the count is at most len(text).
        return
    if len(text) > MAX_RAW_LENGTH or _twitter_text().parse_tweet(text).weightedLength > MAX_WEIGHTED_LENGTH:
        # Wording and status as X's POST /2/tweets reports it (quoted in gundogan8/FotBot#22).
        raise errors.invalid_request(
            "Your Tweet text is too long. For more information on how Twitter determines text length "
            "see https://github.com/twitter/twitter-text.",
            {"text": [text]},
        )


def decode_media_payload(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise errors.invalid_request("media must be base64-encoded.", {"media": []}) from exc
