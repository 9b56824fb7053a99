"""The token manager: hands the X client a valid access token and rotates it safely.

X's refresh tokens are single-use, and reusing a spent one can revoke the whole login. So a
rotation happens under the store's refresh lock (one per account across every process),
re-reads the store first (another process may have rotated already), and commits the new
set to the store before anyone uses the new access token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from xcourier.tools.errors import ServerError, UnauthorizedError

from . import oauth
from .store import StaleLockError, TokenStore
from .tokenset import TokenSet

logger = logging.getLogger("xcourier.auth")

DEFAULT_REFRESH_SKEW = 300.0  # refresh this many seconds before expiry


class LoginRequiredError(UnauthorizedError):
    """The stored login can't be used any more; the user has to log in again."""


LOG_IN_AGAIN = "Run `xcourier auth login` to log in again; the server keeps running and picks up the new login"


def login_expired(username: str, why: str, hint: str = LOG_IN_AGAIN) -> LoginRequiredError:
    return LoginRequiredError(f"The X login for @{username} has expired or was revoked ({why}). {hint}.")


class TokenManager:
    """A TokenProvider backed by a TokenStore, for one account."""

    def __init__(
        self,
        store: TokenStore,
        tokens: TokenSet,
        *,
        refresh_skew: float = DEFAULT_REFRESH_SKEW,
        relogin_hint: str = LOG_IN_AGAIN,
        forget_refused: bool = False,
        app: oauth.OAuthApp | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._hint = relogin_hint
        # Hosted mode: a login X refused is removed, so the user's MCP tokens stop working and
        # their client signs them in again (a local login stays for `auth status` to explain).
        self._forget_refused = forget_refused
        # Hosted mode: the configured X app, not what a stored login says (its metadata isn't sealed,
        # and a rewritten endpoint would receive the refresh token and the app's secret).
        self._app = app
        self._current = tokens
        self._skew = refresh_skew
        self._clock = clock
        self._lock = anyio.Lock()
        self._refused_refresh_token: str | None = None
        self.refreshes = 0  # grants this process made; for logs and benchmarks

    @property
    def store(self) -> TokenStore:
        return self._store

    @property
    def account(self) -> TokenSet:
        return self._current

    @property
    def scopes(self) -> frozenset[str]:
        return self._current.scopes

    async def access_token(self) -> str:
        current = self._current
        if not current.expires_within(self._skew, self._clock()):
            return current.access_token
        return (await self._rotate(seen=current)).access_token

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        current = self._current
        if current.access_token != rejected:
            return current.access_token  # rotated meanwhile: retry with the newer token
        fresh = await self._rotate(seen=current)
        return fresh.access_token if fresh.access_token != rejected else None

    async def _rotate(self, *, seen: TokenSet) -> TokenSet:
        async with self._lock:
            if self._current.access_token != seen.access_token and not self._expiring(self._current):
                return self._current  # another coroutine here rotated while we waited
            async with self._store.refresh_lock(seen.user_id):
                latest = await self._store.load_user(seen.user_id)
                if latest is None:
                    raise login_expired(seen.username, "the login was removed", self._hint)
                if latest.access_token != seen.access_token and not self._expiring(latest):
                    self._current = latest  # another process rotated it, or the user logged in again
                    return latest
                fresh = await self._refresh(latest)
                self._current = fresh
                return fresh

    def _expiring(self, tokens: TokenSet) -> bool:
        return tokens.expires_within(self._skew, self._clock())

    async def _refresh(self, latest: TokenSet) -> TokenSet:
        if not latest.refresh_token:
            raise login_expired(latest.username, "the login has no refresh token; include offline.access", self._hint)
        if latest.refresh_token == self._refused_refresh_token:
            raise login_expired(latest.username, "X refused the refresh token", self._hint)
        app = self._app or oauth.OAuthApp(
            client_id=latest.client_id, client_secret=latest.client_secret, api_base_url=latest.api_base_url
        )
        # Shielded: once X has rotated the refresh token, abandoning the answer (a client
        # cancelling its call) would lose the only valid one. The HTTP timeout bounds the wait.
        with anyio.CancelScope(shield=True):
            return await self._refresh_and_commit(app, latest)

    async def _refresh_and_commit(self, app: oauth.OAuthApp, latest: TokenSet) -> TokenSet:
        assert latest.refresh_token is not None
        started = self._clock()
        logger.debug("refreshing the X login for @%s", latest.username)
        try:
            token = await oauth.refresh(app, latest.refresh_token)
        except oauth.GrantRejected as exc:
            # Someone outside the lock (an older xcourier, another tool) may have rotated it.
            again = await self._store.load_user(latest.user_id)
            if again is not None and again.access_token != latest.access_token:
                return again
            self._refused_refresh_token = latest.refresh_token
            logger.warning("refresh for @%s refused: %s", latest.username, exc)
            if self._forget_refused:
                await self._store.delete(latest.user_id)
            raise login_expired(latest.username, "X refused the refresh token", self._hint) from None
        except oauth.OAuthUnavailable as exc:
            raise ServerError(
                f"Could not refresh the X login right now ({exc}); try again shortly.", detail=str(exc)
            ) from None
        fresh = latest.rotated(
            access_token=str(token["access_token"]),
            refresh_token=token.get("refresh_token"),
            expires_at=oauth.expiry(token, started),
            scopes=oauth.granted_scopes(token),
        )
        try:
            await self._store.save(fresh)  # committed before the new token is used anywhere
        except StaleLockError:
            # This holder stalled past its lock and a later one saved first: theirs is the login now.
            newer = await self._store.load_user(latest.user_id)
            if newer is not None:
                return newer
            raise
        except Exception:
            # The old refresh token is spent: the new set in memory is now the only copy, so keep it.
            logger.exception("could not save the refreshed X login for @%s; keeping it in memory", fresh.username)
        self.refreshes += 1
        logger.info("refreshed the X login for @%s (rotation %d)", fresh.username, fresh.version)
        return fresh
