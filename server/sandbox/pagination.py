"""Newest-first pages over post lists, with X's meta block and opaque base36 tokens."""

from __future__ import annotations

from typing import Any

from . import errors
from .ids import to_base36
from .state import Page, Post

_NEXT, _PREVIOUS = "1", "2"


def _encode(direction: str, post_id: str) -> str:
    return to_base36(int(direction + post_id))


def _decode(token: str, parameter: str) -> tuple[str, int]:
    try:
        raw = str(int(token, 36))
    except ValueError:
        raw = ""
    if len(raw) < 2 or raw[0] not in (_NEXT, _PREVIOUS):
        raise errors.invalid_request(
            f"The `{parameter}` query parameter value [{token}] is not a valid pagination token.",
            {parameter: [token]},
        )
    return raw[0], int(raw[1:])


def in_time_window(posts: list[Post], start: float | None, end: float | None) -> list[Post]:
    """start_time (inclusive) and end_time (exclusive), as X applies them; None is unbounded."""
    return [p for p in posts if (start is None or p.created_at >= start) and (end is None or p.created_at < end)]


def paginate(
    posts_desc: list[Post],
    *,
    since_id: str | None,
    until_id: str | None,
    max_results: int,
    token: str | None,
    token_parameter: str,
    with_previous: bool,
) -> Page:
    posts = [
        p
        for p in posts_desc
        if (since_id is None or int(p.id) > int(since_id)) and (until_id is None or int(p.id) < int(until_id))
    ]
    start = 0
    if token is not None:
        direction, pivot = _decode(token, token_parameter)
        if direction == _NEXT:
            start = next((i for i, p in enumerate(posts) if int(p.id) < pivot), len(posts))
        else:
            newer = [i for i, p in enumerate(posts) if int(p.id) > pivot]
            start = max((newer[-1] + 1 if newer else 0) - max_results, 0)
    page = posts[start : start + max_results]
    meta: dict[str, Any] = {"result_count": len(page)}
    if page:
        meta["newest_id"] = page[0].id
        meta["oldest_id"] = page[-1].id
        if start + max_results < len(posts):
            meta["next_token"] = _encode(_NEXT, page[-1].id)
        if with_previous and start > 0:
            meta["previous_token"] = _encode(_PREVIOUS, page[0].id)
    return Page(page, meta)
