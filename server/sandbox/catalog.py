"""The endpoints for undoing engagement and for reading: keys, X's published limits and scopes.

Spelled and sourced like config.py's table (keys are method + X's path template): per user, per
15-minute window, from xdevplatform/docs x-api/fundamentals/rate-limits.mdx (28713281, 2026-08),
and each operation's OAuth2UserToken scopes from X's OpenAPI spec 2.167.
"""

from __future__ import annotations

DELETE_LIKE = "DELETE /2/users/{id}/likes/{tweet_id}"
DELETE_RETWEET = "DELETE /2/users/{id}/retweets/{source_tweet_id}"
GET_TWEET = "GET /2/tweets/{id}"
GET_MENTIONS = "GET /2/users/{id}/mentions"
GET_BOOKMARKS = "GET /2/users/{id}/bookmarks"

RATE_LIMITS: dict[str, int] = {
    DELETE_LIKE: 50,
    DELETE_RETWEET: 50,
    GET_TWEET: 900,
    GET_MENTIONS: 300,
    GET_BOOKMARKS: 180,
}
# "DELETE /2/users/:id/likes/:tweet_id ... 50/15min, 1,000/24hrs" (same page).
USER_DAILY_LIMITS: dict[str, int] = {DELETE_LIKE: 1000}

_READ = ("tweet.read", "users.read")
REQUIRED_SCOPES: dict[str, frozenset[str]] = {
    DELETE_LIKE: frozenset({*_READ, "like.write"}),
    DELETE_RETWEET: frozenset({*_READ, "tweet.write"}),
    GET_TWEET: frozenset(_READ),
    GET_MENTIONS: frozenset(_READ),
    GET_BOOKMARKS: frozenset({*_READ, "bookmark.read"}),
}
# Endpoints whose answers are post reads (counted towards pay-per-use's monthly cap).
POST_READ_ENDPOINTS: frozenset[str] = frozenset({GET_TWEET, GET_MENTIONS, GET_BOOKMARKS})
