"""The emulated X: users, posts, likes, reposts, DMs, media, tokens, limits — all in memory."""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import errors, seed
from .config import ALL_SCOPES, SandboxConfig
from .faults import Fault, FaultBook
from .ids import IdGenerator, iso, snowflake_for, to_base36
from .media import CATEGORIES, ONE_SHOT_CATEGORIES, Media, check_size, kind_of, sniff
from .oauth import OAuthServer
from .ratelimit import RateLimiter, RateLimitState
from .tokens import Token, TokenBook

MAX_WEIGHTED_LENGTH = 280
MAX_DM_LENGTH = 10000
# GET /2/users/{id}/tweets only reaches a user's newest 3,200 posts (docs.x.com timelines intro).
TIMELINE_DEPTH = 3200
RECENT_SEARCH_SECONDS = 7 * 24 * 3600
_FROM_TERM = re.compile(r"^from:([A-Za-z0-9_]{1,15})$", re.IGNORECASE)


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

    def render(self, fields: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "edit_history_tweet_ids": [self.id]}
        if "created_at" in fields:
            out["created_at"] = iso(self.created_at)
        if "author_id" in fields:
            out["author_id"] = self.author_id
        if "conversation_id" in fields:
            out["conversation_id"] = self.id
        if "attachments" in fields and self.media_keys:
            out["attachments"] = {"media_keys": list(self.media_keys)}
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
        self._seed()

    # ---- lifecycle -------------------------------------------------------------------------

    def _seed(self) -> None:
        self._clock_offset = 0.0
        self.oauth.reset()
        self.rate_limiter = RateLimiter(self.config.effective_rate_limits(), self.config.rate_limit_window)
        self.faults.clear()
        self._calls: dict[str, int] = {}
        # Who asked for what, in order (bounded): lets a test see whose token each poll used.
        self._requests: deque[dict[str, str]] = deque(maxlen=10_000)
        self.users: dict[str, User] = {u.id: User(u.id, u.username, u.name, u.accepts_dms) for u in seed.USERS}
        self.posts: dict[str, Post] = {}
        self.likes: set[tuple[str, str]] = set()
        self.retweets: set[tuple[str, str]] = set()
        self.dms: list[DirectMessage] = []
        self.media: dict[str, Media] = {}
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

    def set_rate_limit(self, key: str, limit: int) -> None:
        with self._lock:
            self.rate_limiter.limits[key] = limit

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

    def create_post(self, author: User, text: str | None, media_ids: list[str] | None) -> Post:
        with self._lock:
            text = text or ""
            if not text and not media_ids:
                raise errors.invalid_request(
                    "Either text or media must be provided.", {"text": [], "media.media_ids": []}
                )
            if text:
                _check_weighted_length(text)
            media = self._usable_media(author, media_ids or [], for_dm=False) if media_ids else []
            if text and any(
                p.author_id == author.id and not p.deleted and p.submitted_text == text for p in self.posts.values()
            ):
                raise errors.forbidden("You are not allowed to create a Tweet with duplicate content.")
            post_id = self._ids.next(self.now())
            shown = text
            if media:
                # X appends the media's t.co link to the text of a post with media.
                shown = f"{text} https://t.co/{to_base36(int(post_id))[-10:]}".strip()
            post = Post(post_id, shown, author.id, self.now(), text, [m.media_key for m in media])
            self.posts[post_id] = post
            return post

    def delete_post(self, user: User, post_id: str) -> None:
        with self._lock:
            post = self._live_post(post_id)
            if post is None:
                raise errors.not_found("tweet", "id", post_id)
            if post.author_id != user.id:
                raise errors.forbidden("You are not authorized to delete this Tweet.")
            post.deleted = True

    def _require_self(self, user: User, path_user_id: str, action: str) -> None:
        if path_user_id != user.id:
            raise errors.forbidden(f"You are not permitted to {action} on behalf of another user.")

    def like(self, user: User, path_user_id: str, tweet_id: str) -> None:
        with self._lock:
            self._require_self(user, path_user_id, "like")
            if self._live_post(tweet_id) is None:
                raise errors.not_found("tweet", "tweet_id", tweet_id)
            self.likes.add((user.id, tweet_id))

    def retweet(self, user: User, path_user_id: str, tweet_id: str) -> None:
        with self._lock:
            self._require_self(user, path_user_id, "repost")
            if self._live_post(tweet_id) is None:
                raise errors.not_found("tweet", "tweet_id", tweet_id)
            self.retweets.add((user.id, tweet_id))

    def user_posts(self, user_id: str) -> list[Post]:
        with self._lock:
            own = sorted(
                (p for p in self.posts.values() if p.author_id == user_id and not p.deleted),
                key=lambda p: int(p.id),
                reverse=True,
            )
            return own[:TIMELINE_DEPTH]

    def search_recent(self, query: str) -> list[Post]:
        with self._lock:
            usernames = parse_from_query(query)
            authors = {u.id for name in usernames if (u := self._user_by_username(name)) is not None}
            cutoff = self.now() - RECENT_SEARCH_SECONDS
            return sorted(
                (p for p in self.posts.values() if p.author_id in authors and not p.deleted and p.created_at >= cutoff),
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
                # Unknown, someone else's, unprocessed or expired ids all get X's one message.
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
            media.finalize()
            return media

    def media_status(self, owner: User, media_id: str) -> Media:
        with self._lock:
            media = self._owned_media(owner, media_id)
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


def _check_weighted_length(text: str) -> None:
    import twitter_text  # lazy: costs ~0.4 s, only needed when a post is created

    if twitter_text.parse_tweet(text).weightedLength > MAX_WEIGHTED_LENGTH:
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
