"""Sandbox fixtures: one real HTTP sandbox per session, reset before every test, and clients
that hold every X request and response against X's OpenAPI spec as they go."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from xcourier.server.sandbox import Sandbox, SandboxServer

from .openapi_check import validate_request, validate_response

_TEMPLATES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), template)
    for method, template in [
        ("GET", "/2/users/me"),
        ("GET", "/2/users/by/username/{username}"),
        ("GET", "/2/users/{id}/tweets"),
        ("POST", "/2/users/{id}/likes"),
        ("POST", "/2/users/{id}/retweets"),
        ("GET", "/2/tweets/search/recent"),
        ("POST", "/2/tweets"),
        ("DELETE", "/2/tweets/{id}"),
        ("POST", "/2/dm_conversations/with/{participant_id}/messages"),
        ("GET", "/2/media/upload"),
        ("POST", "/2/media/upload"),
        ("POST", "/2/media/upload/initialize"),
        ("POST", "/2/media/upload/{id}/append"),
        ("POST", "/2/media/upload/{id}/finalize"),
        ("DELETE", "/2/users/{id}/likes/{tweet_id}"),
        ("DELETE", "/2/users/{id}/retweets/{source_tweet_id}"),
        ("GET", "/2/tweets/{id}"),
        ("GET", "/2/users/{id}/mentions"),
        ("GET", "/2/users/{id}/bookmarks"),
        ("POST", "/2/activity/subscriptions"),
        ("GET", "/2/activity/subscriptions"),
        ("DELETE", "/2/activity/subscriptions"),
        ("PUT", "/2/activity/subscriptions/{subscription_id}"),
        ("DELETE", "/2/activity/subscriptions/{subscription_id}"),
        # Last: /2/users/me and /2/users/{id}/... match first.
        ("GET", "/2/users/{id}"),
    ]
]

# (method, template, status) of every response validated this session; the conformance test reads it.
VALIDATED: set[tuple[str, str, int]] = set()


def template_of(method: str, path: str) -> str | None:
    return next((t for m, rx, t in _TEMPLATES if m == method and rx.match(path)), None)


def _check_request(request: httpx.Request) -> None:
    template = template_of(request.method, request.url.path)
    if request.extensions.get("deliberately_invalid"):
        return
    if template and request.headers.get("content-type", "").startswith("application/json") and request.content:
        validate_request(request.method, template, json.loads(request.content))


def _check_response(response: httpx.Response) -> None:
    template = template_of(response.request.method, response.request.url.path)
    if template is None:
        return
    response.read()
    content_type = response.headers.get("content-type", "")
    assert content_type, f"{template}: response without content-type"
    validate_response(response.request.method, template, response.status_code, response.json(), content_type)
    VALIDATED.add((response.request.method, template, response.status_code))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox()) as server:
        yield server


@pytest.fixture(scope="session")
def sandbox(sandbox_server: SandboxServer) -> Sandbox:
    return sandbox_server.sandbox


@pytest.fixture(autouse=True)
def _reset_sandbox(sandbox_server: SandboxServer) -> None:
    httpx.post(f"{sandbox_server.base_url}/_sandbox/reset").raise_for_status()


@pytest.fixture
def admin(sandbox_server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server.base_url) as client:
        yield client


@pytest.fixture
def client_for(sandbox_server: SandboxServer) -> Iterator[Callable[..., httpx.Client]]:
    """client_for("alice") -> an httpx.Client holding a fresh token for alice, spec-checked."""
    clients: list[httpx.Client] = []

    def make(username: str = "xcourier_demo", token: str | None = None) -> httpx.Client:
        if token is None:
            token, _ = sandbox_server.sandbox.mint_token(username)
        client = httpx.Client(
            base_url=sandbox_server.base_url,
            headers={"authorization": f"Bearer {token}"},
            event_hooks={"request": [_check_request], "response": [_check_response]},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def x(client_for: Callable[..., httpx.Client]) -> httpx.Client:
    """A spec-checked client signed in as the demo user."""
    return client_for()
