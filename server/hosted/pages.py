"""The pages a user's browser goes through to sign in: our consent page, then X, then back.

Two things stop someone from starting a sign-in and having another person finish it (which
would hand the other person's X account to the first one's client):
- the consent page names the MCP client and where it will be sent, before X is involved;
- approving it sets a cookie, and X's redirect back is accepted only in the browser carrying
  it, so a link to X's page made by someone else leads nowhere.
The approval must come from our own page (its Origin is checked), so another site can't
submit it on the user's behalf, and the page can't be framed.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.provider import construct_redirect_uri
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..auth import oauth
from ..auth.login import LoginError, signed_in
from ..auth.store import TokenStore
from ..auth.tokenset import TokenSet
from .bridge import CONSENT_PATH, PENDING_TTL, XBridge, hashed

logger = logging.getLogger("xcourier.hosted")

_NO_FRAMES = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
}
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>xcourier</title>"
    "<body style='font-family:sans-serif;margin:3em;max-width:40em'><h1>{title}</h1>{body}</body>"
)


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = f"<p>{html.escape(text)}</p>"
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status, headers=_NO_FRAMES)


def _redirect(base: str, **params: str | None) -> RedirectResponse:
    return RedirectResponse(
        construct_redirect_uri(base, **params), status_code=302, headers={"Cache-Control": "no-store"}
    )


class SignInPages:
    def __init__(self, bridge: XBridge, store: TokenStore, *, clock: Callable[[], float] = time.time) -> None:
        self._bridge = bridge
        self._store = store
        self._clock = clock
        self._secure = bridge.issuer.startswith("https://")

    def _cookie(self, x_state: str) -> str:
        # One per sign-in, so two sign-ins at once in one browser don't overwrite each other.
        return f"{'__Host-' if self._secure else ''}xcourier-signin-{hashed(x_state)[:16]}"

    async def consent_page(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await self._store.get_record("consent", hashed(request_id)) if request_id else None
        if pending is None:
            return _expired()
        client = html.escape(pending.get("client_name") or pending["client_id"])
        redirect = urlsplit(pending["redirect_uri"])
        # Scheme and host only: a user part ("trusted.example@evil.example") must not pass for the host.
        destination = html.escape(f"{redirect.scheme}://{redirect.hostname or ''}")
        body = (
            f"<p><b>{client}</b> asks to act on your X account through xcourier: post, delete, like, repost "
            f"and send direct messages as you.</p><p>After you approve, X asks you to sign in; you are then "
            f"sent back to <b>{destination}</b>. If you did not start this, deny.</p>"
            f"<form method=post action='{CONSENT_PATH}'>"
            f"<input type=hidden name=request value='{html.escape(request_id)}'>"
            "<button name=answer value=approve>Approve</button> <button name=answer value=deny>Deny</button>"
            "</form>"
        )
        return HTMLResponse(_PAGE.format(title="Allow access to your X account?", body=body), headers=_NO_FRAMES)

    async def consent_answer(self, request: Request) -> Response:
        if not self._from_our_page(request):
            return _page(403, "Not allowed", "Approvals are accepted only from xcourier's own page.")
        form = await request.form()
        request_id = str(form.get("request") or "")
        pending = await self._store.take_record("consent", hashed(request_id)) if request_id else None
        if pending is None:
            return _expired()
        if form.get("answer") != "approve":
            return _redirect(
                pending["redirect_uri"],
                error="access_denied",
                error_description="The user denied access.",
                state=pending.get("state"),
            )
        x_login = oauth.start_authorization(self._bridge.x_app, self._bridge.callback_url, self._bridge.x_scopes)
        binding = secrets.token_urlsafe(32)
        await self._store.put_record(
            "pending",
            hashed(x_login.state),
            {**pending, "x_code_verifier": x_login.code_verifier, "binding": hashed(binding)},
            PENDING_TTL,
        )
        response = RedirectResponse(x_login.url, status_code=302, headers={"Cache-Control": "no-store"})
        # Lax: X's redirect back is a top-level navigation from another site, which Strict would not carry.
        response.set_cookie(
            self._cookie(x_login.state),
            binding,
            max_age=PENDING_TTL,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )
        return response

    def _from_our_page(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is not None:
            return origin == self._bridge.issuer
        referer = request.headers.get("referer", "")
        return referer.startswith(self._bridge.issuer + "/")

    async def x_callback(self, request: Request) -> Response:
        """X's redirect back after the user signed in (or refused)."""
        state = request.query_params.get("state") or ""
        pending = await self._store.get_record("pending", hashed(state)) if state else None
        if pending is None:
            return _expired()
        cookie = request.cookies.get(self._cookie(state), "")
        if not hmac.compare_digest(hashed(cookie), str(pending.get("binding", ""))):
            # Used up: the link (with X's code in it) must not be finishable by whoever approved it.
            await self._store.take_record("pending", hashed(state))
            logger.warning("X sign-in came back in a browser that did not approve it; refused")
            return _page(
                400,
                "This sign-in was started somewhere else",
                "xcourier only finishes a sign-in in the browser that approved it. Nothing was changed; start "
                "again from your MCP client.",
            )
        if await self._store.take_record("pending", hashed(state)) is None:
            return _expired()  # finished meanwhile by a concurrent request
        response = await self._finish(request, pending, state)
        response.delete_cookie(self._cookie(state), path="/", secure=self._secure, httponly=True, samesite="lax")
        return response

    async def _finish(self, request: Request, pending: dict[str, Any], state: str) -> Response:
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
        bridge = self._bridge
        x_login = oauth.Authorization(
            url="", state=state, code_verifier=str(pending["x_code_verifier"]), redirect_uri=bridge.callback_url
        )
        started = self._clock()
        try:
            granted = await oauth.exchange_code(bridge.x_app, x_login, code)
            login = await signed_in(bridge.x_app, granted, bridge.x_scopes, started=started, now=self._clock())
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
        async with self._store.refresh_lock(login.user_id):  # no rotation or removal in between
            login = await self._continue_lineage(login)
            await self._store.save(login)
        ours = await bridge.issue_code(pending, login)
        logger.info("@%s signed in through X for MCP client %s", login.username, pending["client_id"])
        return _redirect(back, code=ours, state=client_state, iss=bridge.issuer)

    async def _continue_lineage(self, login: TokenSet) -> TokenSet:
        """Signing in again (another device) continues the user's login, so their other clients'
        tokens keep working, but only if X still honours that login. Someone who revoked the app on
        X (a stolen grant?) and signs in again at once must not bring the old grants back."""
        current = await self._store.load_user(login.user_id)
        if current is None or not current.refresh_token:
            return login
        try:
            # A refresh is the one question X answers truthfully about a login. The pair it returns is
            # dropped (the new login replaces it) rather than revoked: X may end all of the user's
            # grants to the app on a revocation, the new one included.
            await oauth.refresh(self._bridge.x_app, current.refresh_token)
        except (oauth.GrantRejected, oauth.OAuthUnavailable) as exc:
            logger.info(
                "@%s signed in again; the previous login is not honoured (%s): a fresh start", login.username, exc
            )
            return login
        return replace(login, logged_in_at=current.logged_in_at)


def _expired() -> HTMLResponse:
    return _page(
        400,
        "This sign-in link has expired or was already used",
        "Nothing was changed. Start the sign-in again from your MCP client.",
    )
