"""A stored login: one account's tokens and what they allow."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class TokenSet:
    user_id: str
    username: str
    scopes: frozenset[str]
    expires_at: float  # epoch seconds
    api_base_url: str
    client_id: str
    # Secrets: kept out of repr so a logged TokenSet never shows them.
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    # Bumped by every rotation, so a reader can tell which of two sets is newer.
    version: int = 1
    logged_in_at: float = 0.0

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at - now <= seconds

    def rotated(
        self, access_token: str, refresh_token: str | None, expires_at: float, scopes: frozenset[str]
    ) -> TokenSet:
        return replace(
            self,
            access_token=access_token,
            # X always rotates, but keep the old one if a server ever omits it.
            refresh_token=refresh_token or self.refresh_token,
            expires_at=expires_at,
            scopes=scopes or self.scopes,
            version=self.version + 1,
        )
