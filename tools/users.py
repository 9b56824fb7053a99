"""Who is who: the authenticated user and username -> id lookups, cached."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import anyio

from . import validation
from .client import XClient
from .errors import NotFoundError, UserNotFoundError
from .models import User, UserAnswer, answer_unreadable, parse_response

_MAX_CACHED_USERNAMES = 1024
ME = "/2/users/me"
BY_USERNAME = "/2/users/by/username/{username}"


def _user(body: dict[str, Any], endpoint: str, asked_for: str | None = None) -> User:
    data = parse_response(UserAnswer, body, endpoint).data
    if data is None or not data.id:
        raise answer_unreadable(endpoint, "the user's id (data.id) is missing")
    username = data.username or asked_for
    if not username:
        raise answer_unreadable(endpoint, "the user's username (data.username) is missing")
    return User(id=data.id, username=username, name=data.name)


class UserDirectory:
    """Caches for one XClient, which is bound to one account (the token owner)."""

    def __init__(self, client: XClient) -> None:
        self._client = client
        self._me: User | None = None
        self._me_lock = anyio.Lock()
        self._by_username: OrderedDict[str, User] = OrderedDict()

    async def me(self) -> User:
        """The authenticated user, fetched from /2/users/me once."""
        if self._me is None:
            async with self._me_lock:  # concurrent first calls share one request
                if self._me is None:
                    body = await self._client.request("GET", ME)
                    # login stores the handle and every action needs the id: both must be there.
                    self._me = _user(body, f"GET {ME}")
        return self._me

    async def by_username(self, username: str) -> User:
        username = validation.username(username)
        key = username.lower()
        cached = self._by_username.get(key)
        if cached is not None:
            self._by_username.move_to_end(key)
            return cached
        try:
            body = await self._client.request("GET", BY_USERNAME, path_params={"username": username})
        except NotFoundError as exc:
            raise UserNotFoundError(
                f"There is no X user @{username}. Check the spelling (usernames are 1-15 letters, digits "
                "or underscores).",
                **exc.details(),
            ) from None
        # The handle is the one asked for when X leaves it out (spec 2.167's User requires nothing).
        user = _user(body, f"GET {BY_USERNAME}", username)
        self._by_username[key] = user
        if len(self._by_username) > _MAX_CACHED_USERNAMES:
            self._by_username.popitem(last=False)
        return user
