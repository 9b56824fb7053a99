"""Checks on ids and usernames, done before anything is sent to X."""

from __future__ import annotations

import re

from .errors import InvalidInputError

_POST_ID = re.compile(r"[0-9]{1,19}")
_USERNAME = re.compile(r"@?([A-Za-z0-9_]{1,15})")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def post_id(value: str, field: str = "id") -> str:
    """A post id: 1 to 19 digits, as a string."""
    if not isinstance(value, str) or not _POST_ID.fullmatch(value):
        raise InvalidInputError(
            f"`{field}` must be a post id: 1 to 19 digits as a string, e.g. '1460323737035677698' "
            f"(the number at the end of https://x.com/<user>/status/<id>); got {_shown(value)}."
        )
    return value


def username(value: str, field: str = "username") -> str:
    """An X username without the @: 1 to 15 letters, digits or underscores."""
    match = _USERNAME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInputError(
            f"`{field}` must be an X username: 1 to 15 letters, digits or underscores, optionally "
            f"starting with @ (e.g. 'XDevelopers'); got {_shown(value)}."
        )
    return match.group(1)
