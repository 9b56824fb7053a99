"""The /_sandbox/ admin API: seed data, inspect state, inject faults, mint and expire tokens,
move the clock, steer OAuth consent and count grants, register OAuth apps, switch the X plan, set
the pay-per-use credit balance and the usage cap; for the X Activity API, mint the app's Bearer
Token, mark users protected, see subscriptions, open streams and delivered events, set the
stream's keep-alive period, and have streams send events out of order (shuffle). Unauthenticated on
purpose — the sandbox only ever binds loopback."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import errors
from .activity import ENDPOINT_KEYS as ACTIVITY_ENDPOINT_KEYS
from .config import ALL_SCOPES, ENDPOINT_KEYS, WINDOWS
from .endpoint import problem_response
from .faults import FAULT_KINDS, Fault
from .state import Sandbox


class _BadAdminRequest(Exception):
    pass


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _BadAdminRequest("body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _BadAdminRequest("body must be a JSON object")
    return body


def _bad(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _endpoint_key(body: dict[str, Any]) -> str:
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINT_KEYS | ACTIVITY_ENDPOINT_KEYS:
        raise _BadAdminRequest(f"endpoint must be one of {sorted(ENDPOINT_KEYS | ACTIVITY_ENDPOINT_KEYS)}")
    return str(endpoint)


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadAdminRequest(f"{name} must be an integer")
    return value


def routes(sandbox: Sandbox) -> list[Route]:
    def admin(handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except _BadAdminRequest as exc:
                return _bad(str(exc))

        return wrapped

    @admin
    async def create_post(request: Request) -> Response:
        body = await _body(request)
        user = sandbox.user_by_username(str(body.get("username", "")))
        if user is None:
            return _bad(f"unknown user: {body.get('username')}", 404)
        text = body.get("text")
        if not isinstance(text, str):
            raise _BadAdminRequest("text must be a string")
        quote, reply = body.get("quote_tweet_id"), body.get("in_reply_to_tweet_id")
        if not all(v is None or isinstance(v, str) for v in (quote, reply)):
            raise _BadAdminRequest("quote_tweet_id and in_reply_to_tweet_id must be strings")
        try:
            post = sandbox.create_post(user, text, None, reply_to=reply, quote_id=quote, via_api=False)
        except errors.XProblem as problem:
            return problem_response(problem)
        return JSONResponse({"data": post.render(set())}, status_code=201)

    async def state(request: Request) -> Response:
        return JSONResponse(sandbox.snapshot())

    async def calls(request: Request) -> Response:
        # Events delivered on activity streams are not requests: GET /_sandbox/activity counts them.
        return JSONResponse({"calls": sandbox.calls()})

    async def requests(request: Request) -> Response:
        return JSONResponse({"requests": sandbox.requests()})

    async def reset(request: Request) -> Response:
        sandbox.reset()
        return JSONResponse({"reset": True})

    @admin
    async def add_fault(request: Request) -> Response:
        body = await _body(request)
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise _BadAdminRequest(f"kind must be one of {list(FAULT_KINDS)}")
        fault = Fault(
            endpoint=_endpoint_key(body),
            kind=kind,
            latency_ms=_int(body, "latency_ms", 0),
            status=_int(body, "status", 503),
            times=_int(body, "times", 1),
            after_events=_int(body, "after_events", 0),
        )
        if fault.times < 1 or fault.latency_ms < 0 or not 400 <= fault.status <= 599 or fault.after_events < 0:
            raise _BadAdminRequest("times must be >= 1, latency_ms >= 0, status in 400..599, after_events >= 0")
        sandbox.add_fault(fault)
        return JSONResponse({"fault": fault.__dict__}, status_code=201)

    @admin
    async def add_user(request: Request) -> Response:
        body = await _body(request)
        try:
            user = sandbox.add_user(
                str(body.get("username", "")), body.get("name"), bool(body.get("accepts_dms", True))
            )
        except ValueError as exc:
            raise _BadAdminRequest(str(exc)) from None
        if body.get("protected"):
            sandbox.activity.set_protected(user.id, True)
        return JSONResponse({"data": user.public()}, status_code=201)

    @admin
    async def protect(request: Request) -> Response:
        body = await _body(request)
        user = sandbox.user_by_username(str(body.get("username", "")))
        if user is None:
            return _bad(f"unknown user: {body.get('username')}", 404)
        protected = body.get("protected", True)
        if not isinstance(protected, bool):
            raise _BadAdminRequest("protected must be true or false")
        sandbox.activity.set_protected(user.id, protected)
        return JSONResponse({"username": user.username, "user_id": user.id, "protected": protected})

    async def app_token(request: Request) -> Response:
        token = sandbox.activity.mint_app_token()
        return JSONResponse({"access_token": token, "token_type": "bearer"}, status_code=201)

    async def activity(request: Request) -> Response:
        return JSONResponse(sandbox.activity.snapshot())

    @admin
    async def activity_settings(request: Request) -> Response:
        body = await _body(request)
        unknown = sorted(set(body) - {"keepalive_seconds", "shuffle", "seed"})
        if unknown or not body:
            raise _BadAdminRequest("give keepalive_seconds, or shuffle (events per shuffled batch) and a seed")
        if "keepalive_seconds" in body:
            keepalive = body["keepalive_seconds"]
            if not isinstance(keepalive, int | float) or isinstance(keepalive, bool) or keepalive <= 0:
                raise _BadAdminRequest("keepalive_seconds must be a number of seconds above 0")
            sandbox.activity.keepalive_seconds = float(keepalive)
        if "shuffle" in body:
            shuffle, seed = _int(body, "shuffle"), _int(body, "seed", 0)
            if shuffle < 0:
                raise _BadAdminRequest("shuffle must be >= 0 (0 or 1: in order)")
            sandbox.activity.shuffle = shuffle
            sandbox.activity.shuffle_rng.seed(seed)
        return JSONResponse(sandbox.activity.snapshot())

    async def cut_streams(request: Request) -> Response:
        return JSONResponse({"cut": sandbox.activity.cut_streams()})

    async def clear_faults(request: Request) -> Response:
        sandbox.clear_faults()
        return JSONResponse({"cleared": True})

    @admin
    async def mint(request: Request) -> Response:
        body = await _body(request)
        username = body.get("username", "xcourier_demo")
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int | float) or isinstance(ttl, bool)):
            raise _BadAdminRequest("ttl must be a number of seconds")
        scopes = body.get("scopes")
        if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
            raise _BadAdminRequest("scopes must be a list of scope strings")
        user = sandbox.user_by_username(str(username))
        if user is None:
            return _bad(f"unknown user: {username}", 404)
        try:
            token, expires_at = sandbox.mint_token(user.username, ttl, scopes)
        except ValueError as exc:
            raise _BadAdminRequest(str(exc)) from None
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": round(expires_at - sandbox.now()),
                "username": user.username,
                "user_id": user.id,
                "scope": " ".join(sorted(ALL_SCOPES if scopes is None else set(scopes))),
            }
        )

    @admin
    async def expire(request: Request) -> Response:
        body = await _body(request)
        token = body.get("access_token")
        return JSONResponse({"expired": sandbox.expire_tokens(str(token) if token is not None else None)})

    @admin
    async def clock(request: Request) -> Response:
        body = await _body(request)
        advance = body.get("advance", 0)
        if not isinstance(advance, int | float) or isinstance(advance, bool):
            raise _BadAdminRequest("advance must be a number of seconds")
        return JSONResponse({"now": sandbox.advance_clock(float(advance))})

    @admin
    async def rate_limits(request: Request) -> Response:
        body = await _body(request)
        key, limit = _endpoint_key(body), _int(body, "limit")
        window = body.get("window", "15min")
        if limit < 0:
            raise _BadAdminRequest("limit must be >= 0")
        if window not in WINDOWS:
            raise _BadAdminRequest(f"window must be one of {list(WINDOWS)}")
        sandbox.set_rate_limit(key, limit, window)
        return JSONResponse({"endpoint": key, "limit": limit, "window": window})

    async def billing(request: Request) -> Response:
        return JSONResponse(sandbox.billing())

    @admin
    async def plan(request: Request) -> Response:
        body = await _body(request)
        try:
            sandbox.set_plan(str(body.get("plan", "")))
        except ValueError as exc:
            raise _BadAdminRequest(str(exc)) from None
        return JSONResponse(sandbox.billing())

    @admin
    async def credits(request: Request) -> Response:
        body = await _body(request)
        usd = body.get("usd")
        if usd is not None and (not isinstance(usd, int | float) or isinstance(usd, bool)):
            raise _BadAdminRequest("usd must be a number of US dollars, or null to stop metering")
        sandbox.set_credits(None if usd is None else float(usd))
        return JSONResponse(sandbox.billing())

    @admin
    async def usage_cap(request: Request) -> Response:
        body = await _body(request)
        capped = body.get("capped")
        if capped is not None and not isinstance(capped, bool):
            raise _BadAdminRequest("capped must be true or false")
        cap: int | None = -1
        if "post_read_cap" in body:
            cap = None if body["post_read_cap"] is None else _int(body, "post_read_cap")
            if cap is not None and cap < 0:
                raise _BadAdminRequest("post_read_cap must be >= 0, or null for no cap")
        sandbox.set_usage_cap(capped, cap)
        return JSONResponse(sandbox.billing())

    @admin
    async def oauth_client(request: Request) -> Response:
        body = await _body(request)
        client_id, secret, uris = body.get("client_id"), body.get("client_secret"), body.get("redirect_uris")
        if not isinstance(client_id, str) or (secret is not None and not isinstance(secret, str)):
            raise _BadAdminRequest("client_id (and client_secret, if any) must be strings")
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise _BadAdminRequest("redirect_uris must be a list of URLs")
        try:
            sandbox.oauth.register_client(client_id, secret, tuple(uris))
        except ValueError as exc:
            raise _BadAdminRequest(str(exc)) from None
        return JSONResponse({"client_id": client_id, "redirect_uris": uris}, status_code=201)

    @admin
    async def consent(request: Request) -> Response:
        body = await _body(request)
        approve = body.get("approve", True)
        username = body.get("username")
        if not isinstance(approve, bool):
            raise _BadAdminRequest("approve must be true or false")
        if username is not None and not isinstance(username, str):
            raise _BadAdminRequest("username must be a string")
        try:
            return JSONResponse(sandbox.oauth.set_consent(approve, username))
        except KeyError:
            return _bad(f"unknown user: {username}", 404)

    async def grants(request: Request) -> Response:
        return JSONResponse(sandbox.oauth.grants())

    return [
        Route("/_sandbox/posts", create_post, methods=["POST"]),
        Route("/_sandbox/users", add_user, methods=["POST"]),
        Route("/_sandbox/users/protected", protect, methods=["POST"]),
        Route("/_sandbox/app-token", app_token, methods=["POST"]),
        Route("/_sandbox/activity", activity, methods=["GET"]),
        Route("/_sandbox/activity", activity_settings, methods=["POST"]),
        Route("/_sandbox/activity/cut", cut_streams, methods=["POST"]),
        Route("/_sandbox/state", state, methods=["GET"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
        Route("/_sandbox/requests", requests, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/faults", add_fault, methods=["POST"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/tokens", mint, methods=["POST"]),
        Route("/_sandbox/tokens/expire", expire, methods=["POST"]),
        Route("/_sandbox/clock", clock, methods=["POST"]),
        Route("/_sandbox/rate-limits", rate_limits, methods=["POST"]),
        Route("/_sandbox/oauth/consent", consent, methods=["POST"]),
        Route("/_sandbox/oauth/grants", grants, methods=["GET"]),
        Route("/_sandbox/oauth/clients", oauth_client, methods=["POST"]),
        Route("/_sandbox/plan", billing, methods=["GET"]),
        Route("/_sandbox/plan", plan, methods=["POST"]),
        Route("/_sandbox/credits", credits, methods=["POST"]),
        Route("/_sandbox/usage-cap", usage_cap, methods=["POST"]),
    ]
