"""The X Activity API's endpoints: subscriptions and the persistent event stream (see activity.py
for the sources), plus `GET /2/users/{id}` with `user.fields=protected`, which is how a client
learns that XAA will never deliver a user's posts."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import errors, plans
from .activity import CREATE, DELETE, DELETE_MANY, LIST, RETENTION_SECONDS, STREAM, UPDATE, ActivityBook, Event
from .endpoint import check_query_params, int_param, json_body, path_id, problem_response
from .fields import time_param
from .state import Sandbox

USER_BY_ID = "GET /2/users/{id}"
_STREAM_PARAMS = ("backfill_minutes", "start_time", "end_time")
# consuming-streaming-data.mdx: "the stream sends a keep-alive signal ... in the form of a `\r\n`".
_KEEPALIVE = b"\r\n"

Handler = Callable[[Request], Awaitable[tuple[int, dict[str, Any]]]]


def routes(sandbox: Sandbox) -> list[Route]:
    book = sandbox.activity

    def authed(key: str, handler: Handler, *, user_tokens: bool) -> Callable[[Request], Awaitable[Response]]:
        """Spec 2.167: create and list take a user token or the app's Bearer Token; update, delete and
        the stream only the Bearer Token."""

        async def endpoint(request: Request) -> Response:
            sandbox.count_call(key)
            fault = sandbox.take_fault(key)
            if fault is not None and fault.kind == "latency":
                await anyio.sleep(fault.latency_ms / 1000)
            try:
                _authenticate(sandbox, request, user_tokens=user_tokens)
                if fault is not None and fault.kind == "status":
                    raise errors.generic(fault.status)
                sandbox.check_spend(key)
                status, body = await handler(request)
            except errors.XProblem as problem:
                return problem_response(problem)
            return JSONResponse(body, status_code=status)

        return endpoint

    async def create(request: Request) -> tuple[int, dict[str, Any]]:
        subscription = book.create(await json_body(request))
        # Spec 2.167's CreateActivitySubscriptionResponse nests the subscription under data.subscription
        # (the quickstart's example shows it directly under data; clients read both).
        return 200, {"data": {"subscription": subscription.render()}, "meta": {"total_subscriptions": book.count()}}

    async def listing(request: Request) -> tuple[int, dict[str, Any]]:
        check_query_params(request, ("max_results", "pagination_token"))
        max_results = int_param(request, "max_results", 1, 1000, 100)
        token = request.query_params.get("pagination_token")
        if token is not None and len(token) < 16:
            raise errors.invalid_request(
                "The pagination_token must be at least 16 characters.", {"pagination_token": [token]}
            )
        chosen, next_token = book.page(max_results, token)
        # The spec's response has no `meta`; the quickstart shows meta.total_subscriptions. next_token
        # follows X's other paginated lists (inferred: XAA documents no paging of its own).
        meta: dict[str, Any] = {"total_subscriptions": book.count(), "result_count": len(chosen)}
        if next_token is not None:
            meta["next_token"] = next_token
        body: dict[str, Any] = {"meta": meta}
        if chosen:
            body["data"] = [s.render() for s in chosen]
        return 200, body

    async def update(request: Request) -> tuple[int, dict[str, Any]]:
        subscription_id = path_id(request.path_params["subscription_id"], "subscription_id")
        subscription = book.update(subscription_id, await json_body(request))
        return 200, {"data": {"subscription": subscription.render(), "total_subscriptions": book.count()}}

    async def delete(request: Request) -> tuple[int, dict[str, Any]]:
        subscription_id = path_id(request.path_params["subscription_id"], "subscription_id")
        return 200, {"data": {"deleted": book.delete(subscription_id)}, "meta": {"total_subscriptions": book.count()}}

    async def delete_many(request: Request) -> tuple[int, dict[str, Any]]:
        check_query_params(request, ("ids",))
        ids = [i for i in (request.query_params.get("ids") or "").split(",") if i]
        if not 1 <= len(ids) <= 100 or not all(i.isdigit() and len(i) <= 19 for i in ids):
            raise errors.invalid_request("ids must be 1 to 100 subscription ids.", {"ids": ids[:5]})
        deleted: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for subscription_id in ids:
            try:
                deleted.append({"subscription_id": subscription_id, "deleted": book.delete(subscription_id)})
            except errors.XProblem:
                failed.append(
                    {"subscription_id": subscription_id, "reason": "not-found", "message": "No such subscription."}
                )
        body: dict[str, Any] = {"data": deleted, "meta": {"total_subscriptions": book.count()}}
        if failed:
            body["errors"] = failed
        return 200, body

    async def user_by_id(request: Request) -> Response:
        """X's user lookup by id (BearerToken or a user token). Only what clients of the sandbox ask
        for is modelled: id, name, username, and `protected` when user.fields names it."""
        sandbox.count_call(USER_BY_ID)
        try:
            _authenticate(sandbox, request, user_tokens=True)
            check_query_params(request, ("user.fields", "expansions", "tweet.fields"))
            user = sandbox.user_by_id(path_id(request.path_params["id"], "id"))
            if user is None:
                raise errors.not_found("user", "id", request.path_params["id"])
            body: dict[str, Any] = user.public()
            if "protected" in (request.query_params.get("user.fields") or "").split(","):
                body["protected"] = user.id in book.protected
            sandbox.charge_reads("user", [user.id], plans.USER_READ)
        except errors.XProblem as problem:
            return problem_response(problem)
        return JSONResponse({"data": body})

    return [
        Route("/2/activity/stream", _StreamEndpoint(sandbox), methods=["GET"]),
        Route("/2/activity/subscriptions", authed(CREATE, create, user_tokens=True), methods=["POST"]),
        Route("/2/activity/subscriptions", authed(LIST, listing, user_tokens=True), methods=["GET"]),
        Route("/2/activity/subscriptions", authed(DELETE_MANY, delete_many, user_tokens=False), methods=["DELETE"]),
        Route(
            "/2/activity/subscriptions/{subscription_id}", authed(UPDATE, update, user_tokens=False), methods=["PUT"]
        ),
        Route(
            "/2/activity/subscriptions/{subscription_id}", authed(DELETE, delete, user_tokens=False), methods=["DELETE"]
        ),
        Route("/2/users/{id}", user_by_id, methods=["GET"]),
    ]


def _authenticate(sandbox: Sandbox, request: Request, *, user_tokens: bool) -> None:
    authorization = request.headers.get("authorization")
    try:
        sandbox.activity.authenticate_app(authorization)
    except errors.XProblem as problem:
        if not (user_tokens and problem.status == 403):
            raise
        # A user token where the spec allows one: tweet.read, as the spec's create description says.
        sandbox.authenticate(authorization, frozenset({"tweet.read"}))


class _StreamEndpoint:
    """`GET /2/activity/stream`: newline-delimited JSON events, `\\r\\n` keep-alives, for as long as the
    client stays. A raw ASGI endpoint, so a `cut` fault can end the body without its last chunk."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox, book = self._sandbox, self._sandbox.activity
        request = Request(scope, receive)
        sandbox.count_call(STREAM)
        fault = sandbox.take_fault(STREAM)
        if fault is not None and fault.kind == "latency":
            await anyio.sleep(fault.latency_ms / 1000)
        try:
            _authenticate(sandbox, request, user_tokens=False)
            if fault is not None and fault.kind == "status":
                raise errors.generic(fault.status)
            since, until = _window(sandbox, request)
            sandbox.check_spend(STREAM)
        except errors.XProblem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        limit = None
        if fault is not None and fault.kind in ("cut", "stall", "drop"):
            limit = 0 if fault.kind == "drop" else fault.after_events
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-cache")],
            }
        )
        waker = book.add_waker()
        try:
            async with anyio.create_task_group() as group:

                async def until_client_leaves() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(until_client_leaves)
                cut = await self._pump(book, waker, send, since, until, limit, fault.kind if fault else None)
                if not cut:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        finally:
            book.remove_waker(waker)

    async def _pump(
        self,
        book: ActivityBook,
        waker: Any,
        send: Send,
        since: float | None,
        until: float | None,
        limit: int | None,
        fault: str | None,
    ) -> bool:
        """Send events until the client leaves; True when a fault cut the body short."""
        sent = 0
        cuts = book.cuts
        # Live events start after what exists now; a backfill or start_time replays retained ones first.
        position = book.last_seq()
        pending: list[Event] = book.events_after(0, since=since, until=until) if since is not None else []
        held: list[Event] = []  # waiting to be sent shuffled (ActivityBook.shuffle)
        flushing = False  # the stream went quiet: what is held goes out as it is
        while True:
            if book.cuts != cuts:
                return True
            if not pending:
                if until is not None and until <= self._sandbox.now():
                    return False  # inferred: end_time bounds the stream, which ends once it has passed
                waker.event.clear()
                pending = book.events_after(position)
                if not pending:
                    with anyio.move_on_after(book.keepalive_seconds) as idle:
                        await waker.event.wait()
                    if idle.cancelled_caught:
                        if held:
                            pending, held, flushing = _shuffled(book, held), [], True
                        else:
                            await send({"type": "http.response.body", "body": _KEEPALIVE, "more_body": True})
                    if not pending:
                        continue
            if book.shuffle > 1 and not flushing:
                held.extend(pending)
                position = max(position, *(e.seq for e in pending))
                pending = []
                if len(held) < book.shuffle:
                    continue
                pending, held = _shuffled(book, held), []
            flushing = False
            for event in pending:
                position = max(position, event.seq)
                if until is not None and event.at > until:
                    continue
                if limit is not None and sent >= limit:
                    if fault == "stall":
                        await anyio.sleep_forever()  # not even a keep-alive, until the client gives up
                    return True  # cut: the chunked body never gets its last chunk
                body = json.dumps(event.body, separators=(",", ":")).encode() + b"\r\n"
                await send({"type": "http.response.body", "body": body, "more_body": True})
                book.deliver(event)
                sent += 1
            pending = []
            if limit is not None and sent >= limit:
                if fault == "stall":
                    await anyio.sleep_forever()
                return True


def _shuffled(book: ActivityBook, events: list[Event]) -> list[Event]:
    with book._lock:
        book.shuffle_rng.shuffle(events)
    return events


def _window(sandbox: Sandbox, request: Request) -> tuple[float | None, float | None]:
    """Where a (re)connecting stream starts: `backfill_minutes` back, or from `start_time`."""
    check_query_params(request, _STREAM_PARAMS)
    backfill = int_param(request, "backfill_minutes", 0, 5, 0)
    start, end = time_param(request, "start_time"), time_param(request, "end_time")
    now = sandbox.now()
    if start is not None and backfill:
        # Inferred: the spec offers both but not their combination; one recovery window at a time.
        raise errors.invalid_request(
            "Give either backfill_minutes or start_time, not both.", {"backfill_minutes": [str(backfill)]}
        )
    if start is not None and end is not None and end < start:
        raise errors.invalid_request("end_time must not be before start_time.", {"end_time": []})
    if start is not None and start < now - RETENTION_SECONDS:
        # Inferred from backfill_minutes' maximum: X keeps 5 minutes of events for reconnecting clients.
        start = now - RETENTION_SECONDS
    if backfill:
        start = now - backfill * 60
    return start, end
