"""Query parameters shared by the read endpoints, validated the way X validates them."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from . import errors

# components/parameters/TweetFieldsParameter in X's OpenAPI spec v2.159, plus the names 2.167's
# PostFieldsParameter adds. 2.167 renames the parameter `post.fields` and drops some names from its
# enum (author_id, edit_history_tweet_ids, referenced_tweets, ...); the live API accepted both
# parameter names and the old field names in late August 2026 (DESIGN.md, "X in 2026"), so the
# sandbox takes either parameter, with the union of both enums.
TWEET_FIELDS: tuple[str, ...] = (
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "media_metadata",
    "non_public_metrics",
    "note_tweet",
    "organic_metrics",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "suggested_source_links",
    "suggested_source_links_with_counts",
    "text",
    "withheld",
    # 2.167 additions.
    "article_title",
    "matched_media_notes",
    "note_post",
    "note_request_suggestions",
    "paid_partnership",
)
FIELDS_PARAMS: tuple[str, ...] = ("tweet.fields", "post.fields")
EXPANSION_PARAMS: tuple[str, ...] = (
    *FIELDS_PARAMS,
    "expansions",
    "media.fields",
    "poll.fields",
    "user.fields",
    "place.fields",
)
USER_PARAMS: tuple[str, ...] = ("user.fields", "expansions", *FIELDS_PARAMS)


def tweet_fields(request: Request) -> set[str]:
    """The post fields asked for under either spelling (`tweet.fields`, or 2.167's `post.fields`)."""
    requested: set[str] = set()
    for name in FIELDS_PARAMS:
        raw = request.query_params.get(name)
        if not raw:
            continue
        named = {f.strip() for f in raw.split(",") if f.strip()}
        unknown = sorted(named - set(TWEET_FIELDS))
        if unknown:
            raise errors.invalid_request(
                f"The `{name}` query parameter value [{unknown[0]}] is not one of [{','.join(TWEET_FIELDS)}]",
                {name: [raw]},
            )
        requested |= named
    return requested


def time_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            raise ValueError(raw)
    except ValueError as exc:
        raise errors.invalid_request(
            f"Invalid '{name}':'{raw}'. '{name}' must be a valid RFC 3339 timestamp.", {name: [raw]}
        ) from exc
    return moment.timestamp()


# components/parameters/PostExpansionsParameter in spec 2.167, plus the tweet-era spellings the
# live API still takes (referenced_tweets.id, edit_history_tweet_ids, ...).
POST_EXPANSIONS: tuple[str, ...] = (
    "article.cover_media",
    "article.media_entities",
    "attachments.media_keys",
    "attachments.media_source_tweet",
    "attachments.poll_ids",
    "author_id",
    "edit_history_post_ids",
    "edit_history_tweet_ids",
    "entities.mentions.username",
    "geo.place_id",
    "in_reply_to_user_id",
    "referenced_posts",
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
    "username",
)
# Expansions that name a user id field on the post: X puts the id on the post and the user in
# `includes.users` (docs.x.com, x-api/fundamentals/expansions).
USER_EXPANSIONS: tuple[str, ...] = ("author_id", "in_reply_to_user_id")


def post_expansions(request: Request) -> set[str]:
    raw = request.query_params.get("expansions")
    if not raw:
        return set()
    requested = {e.strip() for e in raw.split(",") if e.strip()}
    unknown = sorted(requested - set(POST_EXPANSIONS))
    if unknown:
        raise errors.invalid_request(
            f"The `expansions` query parameter value [{unknown[0]}] is not one of [{','.join(POST_EXPANSIONS)}]",
            {"expansions": [raw]},
        )
    return requested
