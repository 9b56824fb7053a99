"""xcourier's own OAuth authorization server, bridging MCP clients' sign-ins to X.

An MCP client is sent here (/authorize), and from here to X's authorize page with our own
PKCE pair; X calls back to /x/callback, where the X token set is stored (encrypted) under
the X user id and the MCP client gets an authorization code of ours. The tokens we issue are
random strings, stored only as SHA-256 hashes, bound to the client, the resource (RFC 8707)
and the X user (`subject`). X's tokens never leave the server.
"""

from __future__ import annotations

import hashlib
import html
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..auth import oauth
from ..auth.login import LoginError, signed_in
from ..auth.store import TokenStore
from .clients import ClientRegistry

logger = logging.getLogger("xcourier.hosted")

CALLBACK_PATH = "/x/callback"
ACCESS_TTL = 3600  # short-lived: a stolen MCP access token is worth an hour at most
REFRESH_TTL = 30 * 24 * 3600
CODE_TTL = 300
PENDING_TTL = 900  # time for the user to get through X's sign-in page

_PAGE = (
    "<!doctype html><meta charset=utf-8><title>xcourier</title>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body>"
)


def hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _page(status: int, title: str, text: str) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), text=html.escape(text)),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clients = clients
        self._x_app = x_app
        self._issuer = issuer_url.rstrip("/")
        self.resource_url = resource_url
        self._x_scopes = x_scopes
        self._clock = clock

    @property
    def callback_url(self) -> str:
        return self._issuer + CALLBACK_PATH

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
        x_login = oauth.start_authorization(self._x_app, self.callback_url, self._x_scopes)
        await self._store.put_record(
            "pending",
            hashed(x_login.state),
            {
                "client_id": client.client_id,
                "redirect_uri": str(params.redirect_uri),
                "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
                "code_challenge": params.code_challenge,
                "state": params.state,
                "scopes": params.scopes or [],
                "resource": resource,
                "x_code_verifier": x_login.code_verifier,
            },
            PENDING_TTL,
        )
        return x_login.url

    def _resource_for(self, requested: str | None) -> str | None:
        if requested is None:
            return self.resource_url  # clients predating RFC 8707 still get an audience-bound token
        same = requested.rstrip("/") == self.resource_url.rstrip("/")
        return self.resource_url if same else None

    async def x_callback(self, request: Request) -> Response:
        """X's redirect back after the user signed in (or refused)."""
        state = request.query_params.get("state")
        pending = await self._store.take_record("pending", hashed(state)) if state else None
        if pending is None:
            return _page(
                400,
                "This sign-in link has expired or was already used",
                "Nothing was changed. Start the sign-in again from your MCP client.",
            )
        back = str(pending["redirect_uri"])
        client_state = pending.get("state")
        if "error" in request.query_params:
            return _redirect(
                back, error="access_denied", error_description="X sign-in was not approved.", state=client_state
            )
        code = request.query_params.get("code")
        if not code:
            return _redirect(
                back, error="server_error", error_description="X sent no authorization code.", state=client_state
            )
        x_login = oauth.Authorization(
            url="", state=state or "", code_verifier=str(pending["x_code_verifier"]), redirect_uri=self.callback_url
        )
        started = self._clock()
        try:
            granted = await oauth.exchange_code(self._x_app, x_login, code)
            tokens = await signed_in(self._x_app, granted, self._x_scopes, started=started, now=self._clock())
        except oauth.GrantRejected as exc:
            logger.warning("X refused the sign-in code: %s", exc)
            return _redirect(
                back, error="access_denied", error_description="X refused the sign-in.", state=client_state
            )
        except (oauth.OAuthUnavailable, LoginError) as exc:
            logger.warning("X sign-in could not be completed: %s", exc)
            return _redirect(
                back, error="temporarily_unavailable", error_description="X could not be reached.", state=client_state
            )
        await self._store.save(tokens)
        ours = secrets.token_urlsafe(32)
        await self._store.put_record(
            "code",
            hashed(ours),
            {
                "client_id": pending["client_id"],
                "scopes": pending["scopes"],
                "expires_at": self._clock() + CODE_TTL,
                "code_challenge": pending["code_challenge"],
                "redirect_uri": back,
                "redirect_uri_provided_explicitly": pending["redirect_uri_provided_explicitly"],
                "resource": pending["resource"],
                "subject": tokens.user_id,
            },
            CODE_TTL,
        )
        logger.info("@%s signed in through X for MCP client %s", tokens.username, pending["client_id"])
        return _redirect(back, code=ours, state=client_state, iss=self._issuer)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        record = await self._store.get_record("code", hashed(authorization_code))
        if record is None:
            return None
        return AuthorizationCode(code=authorization_code, **record)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        # Taken, not read: of two concurrent exchanges of one code, only one gets tokens.
        if await self._store.take_record("code", hashed(authorization_code.code)) is None:
            raise TokenError("invalid_grant", "authorization code was already used")
        return await self._issue(
            client_id=authorization_code.client_id,
            subject=authorization_code.subject,
            scopes=authorization_code.scopes,
            resource=authorization_code.resource,
        )

    # -- our tokens ------------------------------------------------------------------------------

    async def _issue(
        self, *, client_id: str, subject: str | None, scopes: list[str], resource: str | None
    ) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock()
        common = {"client_id": client_id, "subject": subject, "scopes": scopes, "resource": resource}
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
        return OAuthToken(
            access_token=access,
            expires_in=ACCESS_TTL,
            refresh_token=refresh,
            scope=" ".join(scopes) if scopes else None,
        )

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        record = await self._store.get_record("refresh", hashed(refresh_token))
        if record is None or not await self._signed_in_with_x(record.get("subject")):
            return None
        return RefreshToken(token=refresh_token, **_fields(record, RefreshToken))

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        record = await self._store.take_record("refresh", hashed(refresh_token.token))
        if record is None:
            raise TokenError("invalid_grant", "refresh token was already used or revoked")
        await self._store.delete_record("access", str(record["access"]))
        return await self._issue(
            client_id=refresh_token.client_id,
            subject=refresh_token.subject,
            scopes=scopes,
            resource=refresh_token.resource,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        record = await self._store.get_record("access", hashed(token))
        if record is None or not await self._signed_in_with_x(record.get("subject")):
            return None
        return AccessToken(token=token, **_fields(record, AccessToken))

    async def _signed_in_with_x(self, user_id: object) -> bool:
        """Our tokens stand for an X login: once X refused it (and it was removed), they answer 401,
        and the MCP client signs the user in again instead of getting the same error on every call."""
        if not isinstance(user_id, str):
            return False
        login = await self._store.load(user_id)
        return login is not None and login.user_id == user_id

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        kind, other = ("access", "refresh") if isinstance(token, AccessToken) else ("refresh", "access")
        record = await self._store.take_record(kind, hashed(token.token))
        if record is not None:
            await self._store.delete_record(other, str(record[other]))


def _fields(record: dict[str, Any], model: type[AccessToken] | type[RefreshToken]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key in model.model_fields and key != "token"}


def _redirect(base: str, **params: str | None) -> RedirectResponse:
    return RedirectResponse(
        construct_redirect_uri(base, **params), status_code=302, headers={"Cache-Control": "no-store"}
    )
