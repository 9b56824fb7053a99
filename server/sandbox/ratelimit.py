"""Fixed-window, per-user, per-endpoint rate limits with X's x-rate-limit-* headers."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset: float
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(self.remaining),
            # X sends whole epoch seconds; round up so a client waiting until `reset` is never early.
            "x-rate-limit-reset": str(math.ceil(self.reset)),
        }


@dataclass
class _Window:
    start: float
    used: int


class RateLimiter:
    def __init__(self, limits: dict[str, int], window: float) -> None:
        self.limits = dict(limits)
        self.window = window
        self._windows: dict[tuple[str, str], _Window] = {}

    def clear(self) -> None:
        self._windows.clear()

    def _current(self, user_id: str, key: str, now: float) -> _Window:
        win = self._windows.get((user_id, key))
        if win is None or now >= win.start + self.window:
            win = _Window(start=now, used=0)
            self._windows[(user_id, key)] = win
        return win

    def hit(self, user_id: str, key: str, now: float) -> RateLimitState:
        """Count one request; `allowed` is False once the window's budget is spent."""
        limit = self.limits.get(key, 0)
        win = self._current(user_id, key, now)
        allowed = win.used < limit
        if allowed:
            win.used += 1
        return RateLimitState(limit, max(limit - win.used, 0), win.start + self.window, allowed)

    def peek(self, user_id: str, key: str, now: float) -> RateLimitState:
        limit = self.limits.get(key, 0)
        win = self._current(user_id, key, now)
        return RateLimitState(limit, max(limit - win.used, 0), win.start + self.window, win.used < limit)
