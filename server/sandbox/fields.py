"""Query parameters shared by the read endpoints, validated the way X validates them."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from . import errors

# components/parameters/TweetFieldsParameter in X's OpenAPI spec (v2.159).
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
)
EXPANSION_PARAMS: tuple[str, ...] = (
    "tweet.fields",
    "expansions",
    "media.fields",
    "poll.fields",
    "user.fields",
    "place.fields",
)
USER_PARAMS: tuple[str, ...] = ("user.fields", "expansions", "tweet.fields")


def tweet_fields(request: Request) -> set[str]:
    raw = request.query_params.get("tweet.fields")
    if not raw:
        return set()
    requested = {f.strip() for f in raw.split(",") if f.strip()}
    unknown = sorted(requested - set(TWEET_FIELDS))
    if unknown:
        raise errors.invalid_request(
            f"The `tweet.fields` query parameter value [{unknown[0]}] is not one of [{','.join(TWEET_FIELDS)}]",
            {"tweet.fields": [raw]},
        )
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
