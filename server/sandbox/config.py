"""Sandbox configuration and X's published per-user rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .plans import DEFAULT_PLAN

# Endpoint keys double as rate-limit keys, call-counter keys and fault targets, so they are
# spelled exactly as X's docs spell the route (method + path template).
POST_TWEETS = "POST /2/tweets"
DELETE_TWEET = "DELETE /2/tweets/{id}"
POST_LIKES = "POST /2/users/{id}/likes"
POST_RETWEETS = "POST /2/users/{id}/retweets"
GET_USER_TWEETS = "GET /2/users/{id}/tweets"
GET_USER_BY_USERNAME = "GET /2/users/by/username/{username}"
GET_USERS_ME = "GET /2/users/me"
POST_DM = "POST /2/dm_conversations/with/{participant_id}/messages"
POST_MEDIA_UPLOAD = "POST /2/media/upload"
POST_MEDIA_INITIALIZE = "POST /2/media/upload/initialize"
POST_MEDIA_APPEND = "POST /2/media/upload/{id}/append"
POST_MEDIA_FINALIZE = "POST /2/media/upload/{id}/finalize"
GET_MEDIA_STATUS = "GET /2/media/upload"
GET_SEARCH_RECENT = "GET /2/tweets/search/recent"

# Per user, per 15-minute window, as published on docs.x.com (xdevplatform/docs
# x-api/fundamentals/rate-limits.mdx, 2026-08).
DEFAULT_RATE_LIMITS: dict[str, int] = {
    POST_TWEETS: 100,
    DELETE_TWEET: 50,
    POST_LIKES: 50,
    POST_RETWEETS: 50,
    GET_USER_TWEETS: 900,
    GET_USER_BY_USERNAME: 900,
    GET_USERS_ME: 75,
    POST_DM: 15,
    POST_MEDIA_UPLOAD: 500,
    POST_MEDIA_INITIALIZE: 1875,
    POST_MEDIA_APPEND: 1875,
    POST_MEDIA_FINALIZE: 1875,
    GET_MEDIA_STATUS: 1000,
    GET_SEARCH_RECENT: 300,
}

DAY = 86_400.0
# The 24-hour windows beside the 15-minute ones (same rate-limits page: "/24hrs"). Per user: likes
# (shared with unlike) and DM sends. Per app (the sandbox plays one app, so every user counts
# towards it): posts, DM sends, media.
DEFAULT_USER_DAILY_LIMITS: dict[str, int] = {POST_LIKES: 1000, POST_DM: 1440}
DEFAULT_APP_DAILY_LIMITS: dict[str, int] = {
    POST_TWEETS: 10_000,
    POST_DM: 1440,
    POST_MEDIA_UPLOAD: 50_000,
    GET_MEDIA_STATUS: 100_000,
    POST_MEDIA_INITIALIZE: 180_000,
    POST_MEDIA_APPEND: 180_000,
    POST_MEDIA_FINALIZE: 180_000,
}
# Which window an admin rate-limit change applies to.
WINDOWS: tuple[str, ...] = ("15min", "24h-user", "24h-app")

ENDPOINT_KEYS: frozenset[str] = frozenset(DEFAULT_RATE_LIMITS)

# OAuth 2.0 endpoints: counted in /_sandbox/calls, but not per-user rate limited (there is no user
# yet when a client trades a code).
OAUTH_AUTHORIZE = "GET /i/oauth2/authorize"
OAUTH_TOKEN = "POST /2/oauth2/token"
OAUTH_REVOKE = "POST /2/oauth2/revoke"

# The sandbox's registered apps. The secret is public on purpose: the sandbox is never X and
# guards nothing.
PUBLIC_CLIENT_ID = "xcourier-sandbox-public"
CONFIDENTIAL_CLIENT_ID = "xcourier-sandbox-confidential"
CONFIDENTIAL_CLIENT_SECRET = "sandbox-fake-secret-not-for-x"

# Every OAuth 2.0 scope X grants (docs.x.com authorization-code page; `timeline.read` is in X's
# OpenAPI spec securitySchemes though not on the docs page, so it is accepted too).
ALL_SCOPES: frozenset[str] = frozenset(
    {
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "space.read",
        "mute.read",
        "mute.write",
        "like.read",
        "like.write",
        "list.read",
        "list.write",
        "block.read",
        "block.write",
        "bookmark.read",
        "bookmark.write",
        "dm.read",
        "dm.write",
        "media.write",
        "timeline.read",
    }
)

_READ = ("tweet.read", "users.read")
# The OAuth2UserToken scopes X's OpenAPI spec (each operation's `security`) lists for
# every operation the sandbox serves.
REQUIRED_SCOPES: dict[str, frozenset[str]] = {
    POST_TWEETS: frozenset({*_READ, "tweet.write"}),
    DELETE_TWEET: frozenset({*_READ, "tweet.write"}),
    POST_LIKES: frozenset({*_READ, "like.write"}),
    POST_RETWEETS: frozenset({*_READ, "tweet.write"}),
    GET_USER_TWEETS: frozenset(_READ),
    GET_USER_BY_USERNAME: frozenset(_READ),
    GET_USERS_ME: frozenset(_READ),
    POST_DM: frozenset({*_READ, "dm.write"}),
    POST_MEDIA_UPLOAD: frozenset({"media.write"}),
    POST_MEDIA_INITIALIZE: frozenset({"media.write"}),
    POST_MEDIA_APPEND: frozenset({"media.write"}),
    POST_MEDIA_FINALIZE: frozenset({"media.write"}),
    GET_MEDIA_STATUS: frozenset({"media.write"}),
    GET_SEARCH_RECENT: frozenset(_READ),
}


# X matches callback URLs exactly, at most 10 per app (xdevplatform/docs
# fundamentals/developer-apps.mdx, "Callback URLs"; OAuth 2.0 authorization-code page: "exact match
# validation"). The sandbox's own two apps register xcourier's callbacks with `*` for the port:
# `xcourier auth login --port N` and hosted mode's `<public-url>/x/callback` listen on any free
# port. That wildcard is the sandbox's one convenience; X has none, and apps registered through the
# admin API (or SandboxConfig.oauth_redirect_uris) match exactly.
SANDBOX_APP_CALLBACKS: tuple[str, ...] = tuple(
    f"http://{host}:*{path}" for host in ("127.0.0.1", "localhost", "[::1]") for path in ("/callback", "/x/callback")
)
MAX_CALLBACK_URLS = 10


def _default_clients() -> dict[str, str | None]:
    return {PUBLIC_CLIENT_ID: None, CONFIDENTIAL_CLIENT_ID: CONFIDENTIAL_CLIENT_SECRET}


def _default_redirect_uris() -> dict[str, tuple[str, ...]]:
    return {PUBLIC_CLIENT_ID: SANDBOX_APP_CALLBACKS, CONFIDENTIAL_CLIENT_ID: SANDBOX_APP_CALLBACKS}


@dataclass
class SandboxConfig:
    access_token_ttl: float = 7200.0
    rate_limits: dict[str, int] | None = None
    rate_limit_window: float = 900.0
    clock: Callable[[], float] = field(default=time.time)
    # client_id -> client_secret; None marks a public client (PKCE only, client_id in the body).
    oauth_clients: dict[str, str | None] = field(default_factory=_default_clients)
    # client_id -> its registered callback URLs (see SANDBOX_APP_CALLBACKS).
    oauth_redirect_uris: dict[str, tuple[str, ...]] = field(default_factory=_default_redirect_uris)
    # The X plan the app is on (plans.PLANS); pay-per-use is what a new X developer gets.
    plan: str = DEFAULT_PLAN
    # Pay-per-use credit balance in USD; None leaves credits unmetered until the admin API sets one.
    credits_usd: float | None = None
    user_daily_limits: dict[str, int] | None = None
    app_daily_limits: dict[str, int] | None = None
    # X: "authorization code ... valid for 30 seconds" (docs.x.com OAuth 2.0 authorization code).
    authorization_code_ttl: float = 30.0

    def effective_rate_limits(self) -> dict[str, int]:
        return {**DEFAULT_RATE_LIMITS, **(self.rate_limits or {})}

    def effective_user_daily_limits(self) -> dict[str, int]:
        return {**DEFAULT_USER_DAILY_LIMITS, **(self.user_daily_limits or {})}

    def effective_app_daily_limits(self) -> dict[str, int]:
        return {**DEFAULT_APP_DAILY_LIMITS, **(self.app_daily_limits or {})}
