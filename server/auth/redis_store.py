"""The token store on Redis, for several xcourier instances sharing logins.

Same interface as SQLite. The refresh lock is a Redis lock (SET NX PX with a random owner,
released by compare-and-delete) carrying a fencing token: every acquisition increments a
counter, and a save made under the lock is refused if a later holder has already saved. So
a holder that stalled past its lock's expiry can't overwrite a newer rotation.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .store import StaleLockError, StoreError, check_lease_ttl, open_record, seal_record
from .tokenset import TokenSet

logger = logging.getLogger("xcourier.auth")

LOCK_TTL_MS = 60_000  # longer than a refresh can take (the HTTP timeout is 30 s)

# The fencing token of the refresh lock this task holds, if any.
_fence: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("xcourier_fence", default=None)

# Save only if no later lock holder has saved: KEYS[1] token set, KEYS[2] last writer's fence,
# KEYS[3] accounts index, KEYS[4] username index; ARGV[1] record, ARGV[2] fence (0: no lock),
# ARGV[3] logged_in_at, ARGV[4] user id.
_SAVE = """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local fence = tonumber(ARGV[2])
if fence > 0 and fence < last then return 0 end
if fence > 0 then redis.call('SET', KEYS[2], fence) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('SET', KEYS[4], ARGV[4])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Renew the lease KEYS[1] if ARGV[1] holds it, else take it if it's free; ARGV[2] ttl in ms.
_HOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class RedisTokenStore:
    def __init__(
        self, url: str, *, key: str | None = None, prefix: str = "xcourier", sealed_only: bool = False
    ) -> None:
        import redis.asyncio as redis

        from .store import fernet_for

        self.location = _redacted(url)
        self._redis = redis.from_url(url, decode_responses=True)
        self._fernet = fernet_for(key) if key else None
        self._prefix = prefix
        # Hosted mode: a login whose secrets aren't sealed with the key was not written by xcourier.
        self._sealed_only = sealed_only and key is not None
        self._warned: set[str] = set()  # kinds of unsealed record already logged (see open_record)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def load(self, account: str | None = None) -> TokenSet | None:
        if account is None:
            newest = await self._redis.zrevrange(self._key("accounts"), 0, 0)
            return await self.load_user(newest[0]) if newest else None
        # The exact user id first: an all-digit username may equal another login's id.
        exact = await self.load_user(account)
        if exact is not None:
            return exact
        wanted = account.lstrip("@").lower()
        user_id = await self._redis.get(self._key("username", wanted))
        named = None if user_id is None else await self.load_user(user_id)
        # The index isn't cleared when an account's username changes, so it may name a login that has another
        # username by now; as SQLite and memory do, match the current username only.
        return named if named is not None and named.username.lower() == wanted else None

    async def load_user(self, user_id: str) -> TokenSet | None:
        record = await self._redis.get(self._key("tokens", user_id))
        if record is None:
            return None
        decoded = json.loads(record)
        if self._sealed_only and not decoded.get("encrypted"):
            logger.warning(
                "refused an unsealed login in %s (user id %s): not written by xcourier", self.location, user_id
            )
            return None
        return self._decode(decoded)

    async def save(self, tokens: TokenSet) -> None:
        fence = _fence.get()
        fence_value = fence[1] if fence is not None and fence[0] == tokens.user_id else 0
        saved = await self._redis.eval(
            _SAVE,
            4,
            self._key("tokens", tokens.user_id),
            self._key("fence-written", tokens.user_id),
            self._key("accounts"),
            self._key("username", tokens.username.lower()),
            json.dumps(self._encode(tokens)),
            fence_value,
            tokens.logged_in_at,
            tokens.user_id,
        )
        if not saved:
            raise StaleLockError(
                f"refused a stale write of @{tokens.username}'s login: a later refresh already saved a newer one"
            )

    async def delete(self, user_id: str) -> bool:
        record = await self._redis.get(self._key("tokens", user_id))
        if record is None:
            return False
        username = json.loads(record)["username"]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("tokens", user_id))
            pipe.zrem(self._key("accounts"), user_id)
            pipe.delete(self._key("username", username.lower()))
            await pipe.execute()
        return True

    async def list_accounts(self) -> list[TokenSet]:
        user_ids = await self._redis.zrevrange(self._key("accounts"), 0, -1)
        records = [await self._redis.get(self._key("tokens", user_id)) for user_id in user_ids]
        return [self._decode(json.loads(record)) for record in records if record is not None]

    @asynccontextmanager
    async def refresh_lock(self, user_id: str) -> AsyncIterator[None]:
        lock_key = self._key("refresh-lock", user_id)
        owner = secrets.token_hex(16)
        delay = 0.005
        while not await self._redis.set(lock_key, owner, nx=True, px=LOCK_TTL_MS):
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.1)
        fence = int(await self._redis.incr(self._key("fence", user_id)))
        reset = _fence.set((user_id, fence))
        try:
            yield
        finally:
            _fence.reset(reset)
            with anyio.CancelScope(shield=True):
                await self._redis.eval(_RELEASE, 1, lock_key, owner)

    async def load_cursor(self, key: str) -> str | None:
        value = await self._redis.get(self._key("cursor", key))
        return None if value is None else str(value)

    async def save_cursor(self, key: str, post_id: str) -> None:
        await self._redis.set(self._key("cursor", key), post_id)

    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        member = json.dumps({"id": uuid.uuid4().hex, "at": at, "record": record}, ensure_ascii=False)
        await self._redis.zadd(self._key("audit"), {member: at})

    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        members = await self._redis.zrangebyscore(self._key("audit"), since, "+inf")
        entries = [json.loads(member) for member in members]
        return [(float(entry["at"]), entry["record"]) for entry in entries]

    async def put_record(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        sealed = seal_record(self._fernet, value)
        if ttl > 0:
            await self._redis.set(self._key("record", kind, key), sealed, px=_milliseconds(ttl))
        else:
            await self._redis.delete(self._key("record", kind, key))

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        sealed = await self._redis.get(self._key("record", kind, key))
        return None if sealed is None else open_record(self._fernet, sealed, self.location, kind, self._warned)

    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        # GETDEL: an unsealed record in a store with a key is gone now too: it was never ours to keep.
        sealed = await self._redis.getdel(self._key("record", kind, key))
        return None if sealed is None else open_record(self._fernet, sealed, self.location, kind, self._warned)

    async def delete_record(self, kind: str, key: str) -> None:
        await self._redis.delete(self._key("record", kind, key))

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        check_lease_ttl(ttl)
        return bool(await self._redis.eval(_HOLD, 1, self._key("lease", name), holder, _milliseconds(ttl)))

    async def release_lease(self, name: str, holder: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._key("lease", name), holder)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _encode(self, tokens: TokenSet) -> dict[str, Any]:
        secrets_json = json.dumps(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "client_secret": tokens.client_secret,
            }
        )
        sealed = self._fernet.encrypt(secrets_json.encode()).decode() if self._fernet else secrets_json
        return {
            "user_id": tokens.user_id,
            "username": tokens.username,
            "scopes": sorted(tokens.scopes),
            "expires_at": tokens.expires_at,
            "api_base_url": tokens.api_base_url,
            "client_id": tokens.client_id,
            "version": tokens.version,
            "logged_in_at": tokens.logged_in_at,
            "encrypted": self._fernet is not None,
            "secrets": sealed,
        }

    def _decode(self, record: dict[str, Any]) -> TokenSet:
        sealed = record["secrets"]
        if record.get("encrypted"):
            if self._fernet is None:
                raise StoreError(f"The logins in {self.location} are encrypted; set XCOURIER_STORE_KEY.")
            from cryptography.fernet import InvalidToken

            try:
                sealed = self._fernet.decrypt(sealed.encode()).decode()
            except InvalidToken:
                raise StoreError(f"XCOURIER_STORE_KEY does not decrypt the logins in {self.location}.") from None
        secret_values = json.loads(sealed)
        return TokenSet(
            user_id=record["user_id"],
            username=record["username"],
            scopes=frozenset(record["scopes"]),
            expires_at=float(record["expires_at"]),
            api_base_url=record["api_base_url"],
            client_id=record["client_id"],
            access_token=secret_values["access_token"],
            refresh_token=secret_values.get("refresh_token"),
            client_secret=secret_values.get("client_secret"),
            version=int(record["version"]),
            logged_in_at=float(record["logged_in_at"]),
        )


def _milliseconds(ttl: float) -> int:
    """Redis's PX unit, rounded up so a short positive ttl never becomes 0 (which Redis refuses)."""
    return max(1, math.ceil(ttl * 1000))


def _redacted(url: str) -> str:
    """The URL without a password, for messages and `auth status`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
