"""Post text rules: X counts weighted characters (twitter-text v3), not code points."""

from __future__ import annotations

import functools
import unicodedata
import warnings
from collections.abc import Callable
from typing import Any

from .errors import InvalidInputError

MAX_WEIGHTED_LENGTH = 280


@functools.cache
def _parse_tweet() -> Callable[[str], Any]:
    # Imported on first use: twitter_text loads its emoji tables and pkg_resources at import,
    # about 0.4 s that a stdio server should not pay at start-up.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from twitter_text import parse_tweet

    return parse_tweet


def weighted_length(text: str) -> int:
    """Length as X counts it: URLs 23, CJK and emoji 2, most other characters 1, after NFC."""
    return int(_parse_tweet()(unicodedata.normalize("NFC", text)).weightedLength)


def check_post_text(text: str) -> None:
    length = weighted_length(text)
    if length > MAX_WEIGHTED_LENGTH:
        raise InvalidInputError(
            f"The post text is {length} weighted characters; X allows {MAX_WEIGHTED_LENGTH} "
            f"(links count 23, emoji and CJK characters count 2). Shorten it by "
            f"{length - MAX_WEIGHTED_LENGTH} or split it into several posts."
        )
