"""Fixed-window, per-endpoint rate limits with X's headers.

The 15-minute window answers in x-rate-limit-limit/-remaining/-reset (docs.x.com rate-limits page).
The 24-hour windows answer in x-user-limit-24hour-* and x-app-limit-24hour-*: X's docs list the
24-hour limits but not these header names, which are as X's live responses carry them (read by
client libraries such as plhery/node-twitter-api-v2 and many X bots).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATE_LIMIT_PREFIX = "x-rate-limit"
USER_DAY_PREFIX = "x-user-limit-24hour"
APP_DAY_PREFIX = "x-app-limit-24hour"


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset: float
    allowed: bool
    prefix: str = RATE_LIMIT_PREFIX

    def headers(self) -> dict[str, str]:
        return {
            f"{self.prefix}-limit": str(self.limit),
            f"{self.prefix}-remaining": str(self.remaining),
            # X sends whole epoch seconds; round up so a client waiting until `reset` is never early.
            f"{self.prefix}-reset": str(math.ceil(self.reset)),
        }


@dataclass
class _Window:
    start: float
    used: int


class RateLimiter:
    """One window length; keys without a limit are not limited (None from peek/hit)."""

    def __init__(self, limits: dict[str, int], window: float, prefix: str = RATE_LIMIT_PREFIX) -> None:
        self.limits = dict(limits)
        self.window = window
        self.prefix = prefix
        self._windows: dict[tuple[str, str], _Window] = {}

    def clear(self) -> None:
        self._windows.clear()

    def _current(self, subject: str, key: str, now: float) -> _Window:
        win = self._windows.get((subject, key))
        if win is None or now >= win.start + self.window:
            win = _Window(start=now, used=0)
            self._windows[(subject, key)] = win
        return win

    def _state(self, limit: int, win: _Window) -> RateLimitState:
        return RateLimitState(limit, max(limit - win.used, 0), win.start + self.window, win.used < limit, self.prefix)

    def peek(self, subject: str, key: str, now: float) -> RateLimitState:
        return self._state(self.limits.get(key, 0), self._current(subject, key, now))

    def hit(self, subject: str, key: str, now: float) -> RateLimitState:
        """Count one request; `allowed` is False once the window's budget is spent."""
        limit = self.limits.get(key, 0)
        win = self._current(subject, key, now)
        allowed = win.used < limit
        if allowed:
            win.used += 1
        return RateLimitState(limit, max(limit - win.used, 0), win.start + self.window, allowed, self.prefix)

    def applies_to(self, key: str) -> bool:
        return key in self.limits
