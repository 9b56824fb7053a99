"""X's OAuth 2.0 authorization server: authorization code + PKCE, refresh with rotation, revoke.

What X does, and where that comes from (anything not listed is a guess, kept RFC-shaped):
- Endpoints, 30 s codes, 2 h access tokens, refresh tokens only with offline.access, confidential
  clients authenticating with HTTP Basic and public clients sending client_id in the body, PKCE
  methods S256 and plain (X's own example uses `code_challenge_method=plain`): docs.x.com,
  "OAuth 2.0 Authorization Code Flow with PKCE".
- A confidential client without the Basic header: 401
  {"error":"unauthorized_client","error_description":"Missing valid authorization header"}
  (tweepy/tweepy#2035, plhery/node-twitter-api-v2#319, xdevplatform/twitter-api-typescript-sdk#23).
- A bad authorization code: 400 {"error":"invalid_request","error_description":"Value passed for
  the authorization code was invalid."} (plhery/node-twitter-api-v2#496 and many client tests).
- A bad refresh token: 400 {"error":"invalid_request","error_description":"Value passed for the
  token was invalid."} (widely quoted by X clients).
- Refresh tokens are single use and reusing a spent one kills the whole family: reported by X
  developers, not documented; RFC 6749 §10.4 / OAuth 2.1 describe it.
- Revoke answers {"revoked": true}.
- Callback URLs match exactly, at most 10 per app (docs.x.com developer apps, "Callback URLs";
  authorization-code page: "exact match validation"). See config.SANDBOX_APP_CALLBACKS for the
  sandbox's own apps, whose registrations leave the loopback port free.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from .config import ALL_SCOPES, MAX_CALLBACK_URLS, SandboxConfig
from .seed import DEMO_USERNAME
from .tokens import Token, TokenBook, new_secret

MISSING_CLIENT_AUTH = "Missing valid authorization header"
INVALID_CODE = "Value passed for the authorization code was invalid."
INVALID_TOKEN = "Value passed for the token was invalid."

_UNSAFE_URI_CHARS = re.compile(r"[\s\\#\x00-\x1f\x7f]")
# Spent codes are kept this long so a replay is still recognised (and its tokens revoked).
_CODE_MEMORY_SECONDS = 3600.0


class OAuthError(Exception):
    """An error from the token or revoke endpoint, as X renders it."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AuthorizePageError(Exception):
    """The authorize request can't be trusted to redirect anywhere: X shows an error page."""


def redirect_registered(uri: str, registered: tuple[str, ...]) -> bool:
    """Exact string match against the app's callback URLs. A registered `http://host:*/path` (the
    sandbox's own apps only) matches that scheme, host and path on any port."""
    if _UNSAFE_URI_CHARS.search(uri):
        return False
    if uri in registered:
        return True
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    if port is None or parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return False
    host = parts.netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{host}:*{parts.path}" in registered


def with_query(uri: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    scopes: tuple[str, ...]
    user_id: str
    issued_at: float
    expires_at: float
    used: bool = False
    family: str | None = None


@dataclass
class _Family:
    """Everything descending from one authorization: one code exchange and its refreshes."""

    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    access_tokens: set[str] = field(default_factory=set)
    live_refresh: str | None = None
    revoked: bool = False


@dataclass
class _Consent:
    approve: bool = True
    username: str = DEMO_USERNAME


@dataclass
class _Counters:
    grants: dict[str, int] = field(default_factory=lambda: {"authorization_code": 0, "refresh_token": 0})
    failed: dict[str, int] = field(default_factory=lambda: {"authorization_code": 0, "refresh_token": 0})
    revoked_families: int = 0


class OAuthServer:
    """Shares the sandbox's lock, clock and token table; every public method takes the lock."""

    def __init__(
        self,
        config: SandboxConfig,
        lock: threading.RLock,
        now: Callable[[], float],
        tokens: TokenBook,
        user_id_for: Callable[[str], str | None],
    ) -> None:
        self._config = config
        self._lock = lock
        self._now = now
        self._tokens = tokens
        self._user_id_for = user_id_for
        self._codes: dict[str, _Code] = {}
        self._families: dict[str, _Family] = {}
        self._refresh: dict[str, str] = {}  # every refresh token ever issued -> its family
        self.reset()

    def issued_refresh_tokens(self) -> set[str]:
        with self._lock:
            return set(self._refresh)

    def reset(self) -> None:
        """Consent back to "approve as the demo user", counters to zero. Issued tokens survive,
        as minted ones do: a reset is X's data, not your login."""
        with self._lock:
            self._consent = _Consent()
            self._counters = _Counters()

    # ---- admin -------------------------------------------------------------------------------

    def register_client(self, client_id: str, secret: str | None, redirect_uris: tuple[str, ...]) -> None:
        """An app of the admin's making, matched exactly like X's (no port wildcard)."""
        with self._lock:
            if not client_id or client_id in self._config.oauth_clients:
                raise ValueError(f"client_id {client_id!r} is empty or taken")
            if not 1 <= len(redirect_uris) <= MAX_CALLBACK_URLS:
                raise ValueError(f"an app registers 1 to {MAX_CALLBACK_URLS} callback URLs")
            for uri in redirect_uris:
                parts = urlsplit(uri)
                if parts.scheme not in ("http", "https") or not parts.netloc or "*" in uri or parts.fragment:
                    raise ValueError(f"callback URL {uri!r} must be an http(s) URL without wildcard or fragment")
            self._config.oauth_clients[client_id] = secret
            self._config.oauth_redirect_uris[client_id] = redirect_uris

    def set_consent(self, approve: bool, username: str | None = None) -> dict[str, Any]:
        with self._lock:
            if username is not None:
                if self._user_id_for(username) is None:
                    raise KeyError(username)
                self._consent.username = username
            self._consent.approve = approve
            return {"approve": self._consent.approve, "username": self._consent.username}

    def grants(self) -> dict[str, Any]:
        with self._lock:
            return {
                "grants": dict(self._counters.grants),
                "failed": dict(self._counters.failed),
                "revoked_families": self._counters.revoked_families,
            }

    # ---- GET /i/oauth2/authorize --------------------------------------------------------------

    def authorize(self, params: Mapping[str, str]) -> str:
        """The Location to send the browser to; AuthorizePageError when there is none to trust."""
        with self._lock:
            client_id = params.get("client_id", "")
            redirect_uri = params.get("redirect_uri", "")
            if client_id not in self._config.oauth_clients:
                raise AuthorizePageError("Unknown client_id.")
            if not redirect_registered(redirect_uri, self._config.oauth_redirect_uris.get(client_id, ())):
                raise AuthorizePageError("redirect_uri is not registered for this client.")
            state = params.get("state", "")

            def refuse(error: str, description: str) -> str:
                out = {"error": error, "error_description": description}
                if state:
                    out["state"] = state
                return with_query(redirect_uri, out)

            if params.get("response_type") != "code":
                return refuse("invalid_request", "response_type must be code.")
            if not state:
                return refuse("invalid_request", "state is required.")
            challenge = params.get("code_challenge", "")
            if not challenge:
                return refuse("invalid_request", "code_challenge is required.")
            method = params.get("code_challenge_method", "")
            if method not in ("S256", "plain"):
                return refuse("invalid_request", "code_challenge_method must be S256 or plain.")
            scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
            if not scopes:
                return refuse("invalid_request", "scope is required.")
            unknown = [s for s in scopes if s not in ALL_SCOPES]
            if unknown:
                return refuse("invalid_scope", f"Unknown scope(s): {' '.join(unknown)}.")
            if not self._consent.approve:
                return refuse("access_denied", "The user denied the request.")
            user_id = self._user_id_for(self._consent.username)
            if user_id is None:
                return refuse("server_error", "The consenting user does not exist.")
            self._forget_old_codes()
            code = new_secret()
            now = self._now()
            self._codes[code] = _Code(
                client_id=client_id,
                redirect_uri=redirect_uri,
                challenge=challenge,
                method=method,
                scopes=scopes,
                user_id=user_id,
                issued_at=now,
                expires_at=now + self._config.authorization_code_ttl,
            )
            return with_query(redirect_uri, {"state": state, "code": code})

    def _forget_old_codes(self) -> None:
        cutoff = self._now() - _CODE_MEMORY_SECONDS
        for code in [c for c, record in self._codes.items() if record.issued_at < cutoff]:
            del self._codes[code]

    # ---- client authentication ----------------------------------------------------------------

    def _client(self, form: Mapping[str, str], authorization: str | None) -> str:
        """Confidential clients must use HTTP Basic; public clients send client_id in the body."""
        clients = self._config.oauth_clients
        body_client = form.get("client_id")
        if authorization:
            scheme, _, encoded = authorization.strip().partition(" ")
            if scheme.lower() != "basic":
                raise _unauthorized()
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except ValueError:
                raise _unauthorized() from None
            raw_id, colon, raw_secret = decoded.partition(":")
            # RFC 6749 §2.3.1: both halves are form-urlencoded before being joined.
            client_id, secret = unquote(raw_id), unquote(raw_secret)
            expected = clients.get(client_id)
            if not colon or expected is None or not hmac.compare_digest(secret.encode(), expected.encode()):
                raise _unauthorized()
            if body_client is not None and body_client != client_id:
                raise _unauthorized()
            return client_id
        if body_client is not None and body_client in clients and clients[body_client] is None:
            if "client_secret" in form:
                raise _unauthorized()
            return body_client
        raise _unauthorized()

    # ---- POST /2/oauth2/token ----------------------------------------------------------------

    def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        with self._lock:
            client_id = self._client(form, authorization)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError(400, "invalid_request", "Missing required parameter [grant_type].")
            if grant_type not in self._counters.grants:
                raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant_type [{grant_type}].")
            try:
                if grant_type == "authorization_code":
                    body = self._exchange_code(client_id, form)
                else:
                    body = self._refresh_grant(client_id, form)
            except OAuthError:
                self._counters.failed[grant_type] += 1
                raise
            self._counters.grants[grant_type] += 1
            return body

    def _exchange_code(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        refused = OAuthError(400, "invalid_request", INVALID_CODE)
        record = self._codes.get(form.get("code", ""))
        if record is None or record.client_id != client_id:
            raise refused
        if record.used:
            # RFC 6749 §4.1.2: a replayed code SHOULD revoke what it already bought.
            if record.family is not None:
                self._revoke_family(record.family)
            raise refused
        if record.expires_at <= self._now():
            raise refused
        if form.get("redirect_uri") != record.redirect_uri:
            raise refused
        verifier = form.get("code_verifier", "")
        expected = s256(verifier) if record.method == "S256" else verifier
        if not verifier or not hmac.compare_digest(expected.encode(), record.challenge.encode()):
            raise refused
        record.used = True
        family_id = new_secret()
        self._families[family_id] = _Family(client_id, record.user_id, record.scopes)
        record.family = family_id
        return self._issue(family_id)

    def _refresh_grant(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        refused = OAuthError(400, "invalid_request", INVALID_TOKEN)
        presented = form.get("refresh_token", "")
        family_id = self._refresh.get(presented)
        if family_id is None:
            raise refused
        family = self._families[family_id]
        if family.client_id != client_id or family.revoked:
            raise refused
        if presented != family.live_refresh:
            # A spent refresh token came back: someone holds a copy. Kill everything it led to.
            self._revoke_family(family_id)
            raise refused
        return self._issue(family_id)

    def _issue(self, family_id: str) -> dict[str, Any]:
        family = self._families[family_id]
        ttl = self._config.access_token_ttl
        access = new_secret()
        self._tokens.issue(access, Token(family.user_id, self._now() + ttl, frozenset(family.scopes), family_id))
        family.access_tokens.add(access)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": round(ttl),
            "access_token": access,
            "scope": " ".join(family.scopes),
        }
        if "offline.access" in family.scopes:
            refresh = new_secret()
            self._refresh[refresh] = family_id
            # Rotation: the previous refresh token is spent the moment this one exists.
            family.live_refresh = refresh
            body["refresh_token"] = refresh
        return body

    def _revoke_family(self, family_id: str) -> None:
        family = self._families[family_id]
        self._tokens.drop(family.access_tokens)
        family.live_refresh = None
        if not family.revoked:
            family.revoked = True
            self._counters.revoked_families += 1

    # ---- POST /2/oauth2/revoke ---------------------------------------------------------------

    def revoke(self, form: Mapping[str, str], authorization: str | None) -> dict[str, bool]:
        """Revoking either token of an authorization ends the whole authorization (guessed: X
        documents no difference between the two)."""
        with self._lock:
            client_id = self._client(form, authorization)
            value = form.get("token")
            if not value:
                raise OAuthError(400, "invalid_request", "Missing required parameter [token].")
            family_id = self._refresh.get(value)
            if family_id is None:
                token = self._tokens.get(value)
                if token is None:
                    # RFC 7009 §2.2: an unknown or already-dead token is not an error.
                    return {"revoked": True}
                if token.family is None:
                    # Minted by the admin API: belongs to no client, so any client may drop it.
                    self._tokens.drop([value])
                    return {"revoked": True}
                family_id = token.family
            if self._families[family_id].client_id != client_id:
                raise OAuthError(400, "invalid_request", INVALID_TOKEN)
            self._revoke_family(family_id)
            return {"revoked": True}


def _unauthorized() -> OAuthError:
    return OAuthError(401, "unauthorized_client", MISSING_CLIENT_AUTH)
