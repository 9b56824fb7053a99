"""The X front door every emulated endpoint shares: call counting, faults, auth, rate limits,
the plan's usage cap and credits, and X's response conventions (problem JSON, rate-limit headers)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import errors
from .config import REQUIRED_SCOPES
from .state import Sandbox, User

Handler = Callable[[Request, User], Awaitable[tuple[int, dict[str, Any]]]]


def problem_response(problem: errors.XProblem, headers: dict[str, str] | None = None) -> Response:
    # X serves problems as application/problem+json; the 200-with-errors[] partial results stay JSON.
    return JSONResponse(
        problem.body, status_code=problem.status, headers=headers, media_type="application/problem+json"
    )


class DroppedResponse(Response):
    """Starts a chunked response and never finishes it, so uvicorn closes the connection and the
    client sees a transport error after the server has already done the work."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(status_code=status_code, headers=headers, media_type="application/json")
        # No content-length: the body is chunked, so a cut connection is detectably incomplete.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b'{"data":', "more_body": True})


def x_route(sandbox: Sandbox, method: str, path: str, key: str, handler: Handler) -> Route:
    async def endpoint(request: Request) -> Response:
        sandbox.count_call(key)
        fault = sandbox.take_fault(key)
        if fault is not None and fault.kind == "latency":
            await anyio.sleep(fault.latency_ms / 1000)
        try:
            # Scopes are checked with authentication, before faults and limits, so a token that
            # lacks a scope spends no rate-limit budget (the order on X is a guess).
            user = sandbox.authenticate(request.headers.get("authorization"), REQUIRED_SCOPES.get(key, frozenset()))
        except errors.XProblem as problem:
            return problem_response(problem)
        sandbox.note_request(key, request.url.path, user.username)
        if fault is not None and fault.kind == "status":
            headers = sandbox.peek_limits(user.id, key)
            if fault.status == 429:
                headers["x-rate-limit-remaining"] = "0"
            return problem_response(errors.generic(fault.status), headers)
        allowed, headers = sandbox.hit_limits(user.id, key)
        if not allowed:
            return problem_response(errors.too_many_requests(), headers)
        try:
            sandbox.check_spend(key)
            status, body = await handler(request, user)
        except errors.XProblem as problem:
            return problem_response(problem, headers)
        if fault is not None and fault.kind == "drop":
            return DroppedResponse(status, headers)
        return JSONResponse(body, status_code=status, headers=headers)

    return Route(path, endpoint, methods=[method])


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.invalid_request("Request body is not valid JSON.", {"body": []}) from exc
    if not isinstance(body, dict):
        raise errors.invalid_request("Request body must be a JSON object.", {"body": []})
    return body


def check_query_params(request: Request, allowed: tuple[str, ...]) -> None:
    unknown = [name for name in request.query_params if name not in allowed]
    if unknown:
        raise errors.invalid_request(
            f"The query parameters [{','.join(unknown)}] is not one of [{','.join(allowed)}]",
            {name: request.query_params.getlist(name) for name in unknown},
        )


def int_param(request: Request, name: str, low: int, high: int, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise errors.invalid_request(
            f"The `{name}` query parameter value [{raw}] is not between {low} and {high}", {name: [raw]}
        )
    return value


def id_param(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise errors.invalid_request(
            f"The `{name}` query parameter value [{raw}] does not match ^[0-9]{{1,19}}$", {name: [raw]}
        )
    return raw


def path_id(value: str, name: str) -> str:
    if not value.isdigit() or len(value) > 19:
        raise errors.invalid_request(
            f"The `{name}` path parameter value [{value}] does not match ^[0-9]{{1,19}}$", {name: [value]}
        )
    return value
