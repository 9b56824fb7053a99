"""X-style identifiers and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

# X's snowflake epoch (2010-11-04T01:42:54.657Z): ids made from it look and sort like X's.
TWITTER_EPOCH_MS = 1288834974657


def snowflake_for(epoch_seconds: float, sequence: int = 0) -> int:
    ms = max(int(epoch_seconds * 1000) - TWITTER_EPOCH_MS, 0)
    return (ms << 22) | (sequence & 0x3FFFFF)


def epoch_of(snowflake: int) -> float:
    return ((snowflake >> 22) + TWITTER_EPOCH_MS) / 1000.0


class IdGenerator:
    """Unique, increasing snowflake-like ids, even when the clock stands still or goes back."""

    def __init__(self) -> None:
        self._last = 0

    def reset(self, floor: int = 0) -> None:
        self._last = floor

    def next(self, now: float) -> str:
        candidate = max(snowflake_for(now), self._last + 1)
        self._last = candidate
        return str(candidate)


def iso(epoch_seconds: float) -> str:
    """X's created_at format: millisecond precision, 'Z' suffix."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if number == 0:
        return "0"
    out = []
    while number:
        number, rem = divmod(number, 36)
        out.append(digits[rem])
    return "".join(reversed(out))
