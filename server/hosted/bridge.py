"""xcourier's own OAuth authorization server, bridging MCP clients' sign-ins to X.

An MCP client is sent here (/authorize), and from here to X's authorize page with our own
PKCE pair; X calls back to /x/callback, where the X token set is stored (encrypted) under
the X user id and the MCP client gets an authorization code of ours. The tokens we issue are
random strings, stored only as SHA-256 hashes, bound to the client, the resource (RFC 8707)
and the X user (`subject`). X's tokens never leave the server.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import BaseModel

from ..auth import oauth
from ..auth.store import TokenStore
from ..auth.tokenset import TokenSet
from .callers import GRANT_CLAIM, LOGIN_CLAIM, Grant, Grants
from .clients import ClientRegistry

logger = logging.getLogger("xcourier.hosted")

CONSENT_PATH = "/x/consent"
CALLBACK_PATH = "/x/callback"
ACCESS_TTL = 3600  # short-lived: a stolen MCP access token is worth an hour at most
REFRESH_TTL = 30 * 24 * 3600
CODE_TTL = 300
PENDING_TTL = 900  # time for the user to get through X's sign-in page


def hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class XBridge:
    """The SDK's OAuthAuthorizationServerProvider, with X as the identity behind every grant."""

    def __init__(
        self,
        store: TokenStore,
        clients: ClientRegistry,
        *,
        x_app: oauth.OAuthApp,
        issuer_url: str,
        resource_url: str,
        x_scopes: tuple[str, ...] = oauth.DEFAULT_SCOPES,
        grants: Grants | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clients = clients
        self.x_app = x_app
        self.issuer = issuer_url.rstrip("/")
        self.resource_url = resource_url
        self.x_scopes = x_scopes
        # Told when a grant ends here, so what it started on this instance (subscriptions, sessions) ends
        # now; other instances find out when they next act for it (Grants.allows).
        self.grants = grants
        self._clock = clock

    @property
    def callback_url(self) -> str:
        return self.issuer + CALLBACK_PATH

    # -- clients ---------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return await self._clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self._clients.register(client_info)

    # -- authorization: MCP client -> us -> X -> us -> MCP client ------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        resource = self._resource_for(params.resource)
        if resource is None:
            raise AuthorizeError(
                "invalid_target", f"This server issues tokens only for the resource {self.resource_url}."
            )
        # Not straight to X: whoever started this request could send X's page to someone else, who
        # would only see X asking about xcourier. Our consent page names the client first.
        request_id = secrets.token_urlsafe(32)
        await self._store.put_record(
            "consent",
            hashed(request_id),
            {
                "client_id": client.client_id,
                "client_name": client.client_name or "",
                "redirect_uri": str(params.redirect_uri),
                "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
                "code_challenge": params.code_challenge,
                "state": params.state,
                "scopes": params.scopes or [],
                "resource": resource,
            },
            PENDING_TTL,
        )
        return f"{self.issuer}{CONSENT_PATH}?{urlencode({'request': request_id})}"

    def _resource_for(self, requested: str | None) -> str | None:
        if requested is None:
            return self.resource_url  # clients predating RFC 8707 still get an audience-bound token
        same = requested.rstrip("/") == self.resource_url.rstrip("/")
        return self.resource_url if same else None

    async def issue_code(self, pending: dict[str, Any], login: TokenSet) -> str:
        """Our authorization code for the MCP client, once X said who the user is."""
        code = secrets.token_urlsafe(32)
        await self._store.put_record(
            "code",
            hashed(code),
            {
                "client_id": pending["client_id"],
                "scopes": pending["scopes"],
                "expires_at": self._clock() + CODE_TTL,
                "code_challenge": pending["code_challenge"],
                "redirect_uri": pending["redirect_uri"],
                "redirect_uri_provided_explicitly": pending["redirect_uri_provided_explicitly"],
                "resource": pending["resource"],
                "subject": login.user_id,
                "login": login.logged_in_at,
            },
            CODE_TTL,
        )
        return code

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        record = await self._store.get_record("code", hashed(authorization_code))
        if record is None:
            await self._replayed(authorization_code)
            return None
        return AuthorizationCode(code=authorization_code, **_fields(record, AuthorizationCode))

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        # Taken, not read: of two concurrent exchanges of one code, only one gets tokens.
        record = await self._store.take_record("code", hashed(authorization_code.code))
        if record is None:
            await self._replayed(authorization_code.code)
            raise TokenError("invalid_grant", "authorization code was already used")
        family = secrets.token_urlsafe(16)
        # Noted before the tokens exist, so a replay racing this exchange finds the family to end.
        redeemed = {"family": family, "replayed": False}
        await self._store.put_record("redeemed", hashed(authorization_code.code), redeemed, CODE_TTL)
        tokens = await self._issue(
            client_id=authorization_code.client_id,
            subject=authorization_code.subject,
            scopes=authorization_code.scopes,
            resource=authorization_code.resource,
            login=record.get("login"),
            family=family,
        )
        after = await self._store.get_record("redeemed", hashed(authorization_code.code))
        if after is not None and after.get("replayed"):
            await self._end_family(family)  # replayed while these were being issued: they die with the rest
            raise TokenError("invalid_grant", "authorization code was used twice")
        await self._clients.confirm(client)
        return tokens

    async def _replayed(self, code: str) -> None:
        """A code presented again after it was redeemed: someone else may hold it (a leaked redirect, a log).
        RFC 6749 section 4.1.2: the authorization server SHOULD revoke the tokens issued from it."""
        redeemed = await self._store.get_record("redeemed", hashed(code))
        if redeemed is None or redeemed.get("replayed"):
            return
        await self._store.put_record("redeemed", hashed(code), {**redeemed, "replayed": True}, CODE_TTL)
        logger.warning("an authorization code was presented again after it was redeemed; revoked its tokens")
        await self._end_family(str(redeemed["family"]))

    # -- our tokens ------------------------------------------------------------------------------

    async def _issue(
        self,
        *,
        client_id: str,
        subject: str | None,
        scopes: list[str],
        resource: str | None,
        login: object,
        family: str,
    ) -> OAuthToken:
        """A token pair. Every pair descending from one authorization shares a family, whose current
        pair is recorded so that a replayed refresh token can end it (OAuth 2.1 reuse detection)."""
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock()
        common = {
            "client_id": client_id,
            "subject": subject,
            "scopes": scopes,
            "resource": resource,
            "login": login,
            "family": family,
        }
        await self._store.put_record(
            "access",
            hashed(access),
            {**common, "expires_at": int(now + ACCESS_TTL), "refresh": hashed(refresh)},
            ACCESS_TTL,
        )
        await self._store.put_record(
            "refresh",
            hashed(refresh),
            {**common, "expires_at": int(now + REFRESH_TTL), "access": hashed(access)},
            REFRESH_TTL,
        )
        await self._store.put_record(
            "family", family, {"access": hashed(access), "refresh": hashed(refresh)}, REFRESH_TTL
        )
        return OAuthToken(
            access_token=access,
            expires_in=ACCESS_TTL,
            refresh_token=refresh,
            scope=" ".join(scopes) if scopes else None,
        )

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        record = await self._store.get_record("refresh", hashed(refresh_token))
        if record is None:
            spent = await self._store.get_record("spent", hashed(refresh_token))
            if spent is not None:
                # Used before: whoever holds the newer pair may be a thief (or the owner, if the thief
                # came first). Ending the whole family sends the owner through sign-in again.
                logger.warning("a refresh token was used twice; ended that grant (client %s)", spent.get("client_id"))
                await self._end_family(str(spent["family"]))
            return None
        if not await self._login_lives(record):
            return None
        return RefreshToken(token=refresh_token, **_fields(record, RefreshToken))

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        record = await self._store.take_record("refresh", hashed(refresh_token.token))
        if record is None:
            raise TokenError("invalid_grant", "refresh token was already used or revoked")
        family = str(record.get("family") or secrets.token_urlsafe(16))
        spent = {"family": family, "client_id": record.get("client_id")}
        await self._store.put_record("spent", hashed(refresh_token.token), spent, REFRESH_TTL)
        await self._store.delete_record("access", str(record["access"]))
        return await self._issue(
            client_id=refresh_token.client_id,
            subject=refresh_token.subject,
            scopes=scopes,
            resource=refresh_token.resource,
            login=record.get("login"),
            family=family,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        record = await self._store.get_record("access", hashed(token))
        if record is None or not await self._login_lives(record):
            return None
        # The grant rides along, so what a request starts (a subscription) is tied to it and ends with it.
        claims = {GRANT_CLAIM: record.get("family"), LOGIN_CLAIM: record.get("login")}
        return AccessToken(token=token, claims=claims, **_fields(record, AccessToken))

    async def _login_lives(self, record: dict[str, Any]) -> bool:
        """Our tokens stand for one X login, from the sign-in that made them. Once X refused that login
        (and it was removed) they answer 401, so the MCP client signs the user in again, and they stay
        dead after the user does: a new login has a new sign-in time."""
        user_id = record.get("subject")
        if not isinstance(user_id, str):
            return False
        login = await self._store.load_user(user_id)
        return login is not None and login.logged_in_at == record.get("login")

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await self._revoke(hashed(token.token), "access" if isinstance(token, AccessToken) else "refresh")

    async def revoke_value(self, client_id: str, token: str) -> None:
        """/revoke: the grant is found whatever state its login is in, but only its own client may end it."""
        for kind in ("access", "refresh"):
            record = await self._store.get_record(kind, hashed(token))
            if record is not None:
                if record.get("client_id") == client_id:
                    await self._revoke(hashed(token), kind)
                return

    async def _end_family(self, family: str) -> None:
        current = await self._store.take_record("family", family)
        if current is not None:
            record = await self._store.take_record("refresh", str(current["refresh"]))
            await self._store.delete_record("access", str(current["access"]))
            await self._ended(family, record)

    async def _revoke(self, token_hash: str, kind: str) -> None:
        """Either token of a pair ends the grant behind it: RFC 7009 section 2.1 has a revoked refresh token
        take the grant's access tokens along (SHOULD) and lets a revoked access token take its refresh token
        (MAY). The pair and the family go, and so does what the grant started."""
        other = "refresh" if kind == "access" else "access"
        record = await self._store.take_record(kind, token_hash)
        if record is not None:
            await self._store.delete_record(other, str(record[other]))
            family = record.get("family")
            if isinstance(family, str):
                await self._store.delete_record("family", family)
                await self._ended(family, record)

    async def _ended(self, family: str, record: dict[str, Any] | None) -> None:
        if self.grants is None:
            return
        record = record or {}
        await self.grants.ended(Grant(family, str(record.get("subject") or ""), record.get("login")))


def _fields(record: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key in model.model_fields and key != "token"}
