"""The access tokens X would accept as `Authorization: Bearer`: minted ones and those issued by
the OAuth 2.0 flow share one table, so every X endpoint authenticates both the same way."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Token:
    user_id: str
    expires_at: float
    scopes: frozenset[str]
    # The authorization (code exchange) this token descends from; None for minted tokens.
    family: str | None = None
    # The app's own Bearer Token (OAuth 2.0 App-Only): no user behind it (user_id is "").
    app_only: bool = False


def new_secret() -> str:
    # 32 random bytes: unguessable, URL-safe, and never derived from anything an attacker sees.
    return secrets.token_urlsafe(32)


class TokenBook:
    """Not locked itself: every caller already holds the sandbox lock."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        # Every value ever handed out, revoked ones too: tests check none of them leaks.
        self.issued: set[str] = set()

    def issue(self, value: str, token: Token) -> None:
        self._tokens[value] = token
        self.issued.add(value)

    def get(self, value: str) -> Token | None:
        return self._tokens.get(value)

    def drop(self, values: Iterable[str]) -> None:
        for value in values:
            self._tokens.pop(value, None)

    def expire(self, value: str | None, now: float) -> int:
        targets = [value] if value is not None else list(self._tokens)
        count = 0
        for target in targets:
            token = self._tokens.get(target)
            if token is not None:
                token.expires_at = min(token.expires_at, now)
                count += 1
        return count
