"""X's OAuth 2.0 endpoints through authlib: PKCE authorization URL, code exchange, refresh, revoke."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

X_API_BASE_URL = "https://api.x.com"
X_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
DEFAULT_SCOPES = (
    "tweet.read",
    "tweet.write",
    "users.read",
    "like.write",
    "dm.read",
    "dm.write",
    "media.write",
    # getBookmarks (reading toolset); asked for up front so choosing a toolset never needs a new login.
    "bookmark.read",
    "offline.access",
)
_TIMEOUT = 30.0


class GrantRejected(Exception):
    """X refused the code or refresh token: only a new login helps."""


class OAuthUnavailable(Exception):
    """The token endpoint could not be reached or failed (5xx): try again later."""


@dataclass(frozen=True)
class OAuthApp:
    """An X app's client credentials and where its OAuth endpoints are."""

    client_id: str
    api_base_url: str = X_API_BASE_URL
    authorize_url: str = ""
    client_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.authorize_url:
            object.__setattr__(self, "authorize_url", default_authorize_url(self.api_base_url))

    @property
    def token_url(self) -> str:
        return self.api_base_url.rstrip("/") + "/2/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return self.api_base_url.rstrip("/") + "/2/oauth2/revoke"

    @property
    def confidential(self) -> bool:
        return bool(self.client_secret)


def default_authorize_url(api_base_url: str) -> str:
    base = api_base_url.rstrip("/")
    return X_AUTHORIZE_URL if base == X_API_BASE_URL else base + "/i/oauth2/authorize"


def _client(app: OAuthApp, **kwargs: Any) -> Any:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    # Confidential clients authenticate with HTTP Basic; public ones put client_id in the body.
    method = "client_secret_basic" if app.confidential else "none"
    return AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        timeout=_TIMEOUT,
        **kwargs,
    )


@dataclass(frozen=True)
class Authorization:
    url: str
    state: str
    code_verifier: str = field(repr=False)
    redirect_uri: str


def start_authorization(app: OAuthApp, redirect_uri: str, scopes: tuple[str, ...]) -> Authorization:
    from authlib.common.security import generate_token

    verifier = generate_token(64)
    client = _client(app, scope=" ".join(scopes), redirect_uri=redirect_uri, code_challenge_method="S256")
    url, state = client.create_authorization_url(app.authorize_url, code_verifier=verifier)
    return Authorization(url=url, state=state, code_verifier=verifier, redirect_uri=redirect_uri)


async def _call(app: OAuthApp, what: str, **kwargs: Any) -> Mapping[str, Any]:
    from authlib.integrations.base_client.errors import OAuthError

    async with _client(app, redirect_uri=kwargs.pop("redirect_uri", None)) as client:
        try:
            if what == "code":
                return dict(await client.fetch_token(app.token_url, grant_type="authorization_code", **kwargs))
            if what == "refresh":
                return dict(await client.refresh_token(app.token_url, **kwargs))
            response = await client.revoke_token(app.revoke_url, **kwargs)
            if response.status_code >= 500:
                raise OAuthUnavailable(f"X's revoke endpoint answered {response.status_code}")
            if response.status_code >= 400:
                raise GrantRejected(f"X refused to revoke the token ({response.status_code})")
            return {}
        except OAuthError as exc:
            # authlib's message holds only X's error code and description, never a token.
            raise GrantRejected(f"{exc.error}: {exc.description or 'no description'}") from None
        except Exception as exc:
            if isinstance(exc, (GrantRejected, OAuthUnavailable)):
                raise
            raise OAuthUnavailable(f"{type(exc).__name__} while calling X's OAuth endpoint") from None


async def exchange_code(app: OAuthApp, authorization: Authorization, code: str) -> Mapping[str, Any]:
    return await _call(
        app,
        "code",
        code=code,
        code_verifier=authorization.code_verifier,
        redirect_uri=authorization.redirect_uri,
    )


async def refresh(app: OAuthApp, refresh_token: str) -> Mapping[str, Any]:
    return await _call(app, "refresh", refresh_token=refresh_token)


async def revoke(app: OAuthApp, token: str, hint: str) -> None:
    await _call(app, "revoke", token=token, token_type_hint=hint)


def expiry(token: Mapping[str, Any], now: float | None = None) -> float:
    started = time.time() if now is None else now
    return started + float(token.get("expires_in") or 7200)


def granted_scopes(token: Mapping[str, Any], asked: tuple[str, ...] = ()) -> frozenset[str]:
    scope = token.get("scope")
    return frozenset(scope.split()) if isinstance(scope, str) and scope else frozenset(asked)
