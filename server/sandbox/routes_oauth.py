"""X's OAuth 2.0 endpoints: GET /i/oauth2/authorize (on x.com for real X), POST /2/oauth2/token,
POST /2/oauth2/revoke. Counted like every X call, but outside the per-user rate limits."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import config
from .oauth import AuthorizePageError, OAuthError
from .state import Sandbox

# RFC 6749 §5.1: token responses must not be cached by anything in between.
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body, first value of each name. Anything else reads as no parameters,
    which the endpoint then reports as missing ones."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    form: dict[str, str] = {}
    for name, value in parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True):
        form.setdefault(name, value)
    return form


def _error_page(message: str) -> Response:
    # X shows its own "Something went wrong" page here; never a redirect to an untrusted URI.
    body = (
        "<!doctype html><title>xcourier sandbox: authorization error</title>"
        f"<h1>Something went wrong</h1><p>{html.escape(message)}</p>"
        "<p>This is the xcourier X API sandbox, not X.</p>"
    )
    return HTMLResponse(body, status_code=400)


def routes(sandbox: Sandbox) -> list[Route]:
    async def authorize(request: Request) -> Response:
        sandbox.count_call(config.OAUTH_AUTHORIZE)
        try:
            location = sandbox.oauth.authorize(request.query_params)
        except AuthorizePageError as exc:
            return _error_page(str(exc))
        return RedirectResponse(location, status_code=302)

    async def token(request: Request) -> Response:
        sandbox.count_call(config.OAUTH_TOKEN)
        form = await _form(request)
        try:
            body = sandbox.oauth.token(form, request.headers.get("authorization"))
        except OAuthError as exc:
            return JSONResponse(exc.body(), status_code=exc.status, headers=_NO_STORE)
        return JSONResponse(body, headers=_NO_STORE)

    async def revoke(request: Request) -> Response:
        sandbox.count_call(config.OAUTH_REVOKE)
        form = await _form(request)
        try:
            body = sandbox.oauth.revoke(form, request.headers.get("authorization"))
        except OAuthError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return JSONResponse(body)

    return [
        Route("/i/oauth2/authorize", authorize, methods=["GET"]),
        Route("/2/oauth2/token", token, methods=["POST"]),
        Route("/2/oauth2/revoke", revoke, methods=["POST"]),
    ]
