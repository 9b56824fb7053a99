"""The token store on Redis, for several xcourier instances sharing logins.

Same interface as SQLite. The refresh lock is a Redis lock (SET NX PX with a random owner,
released by compare-and-delete) carrying a fencing token: every acquisition increments a
counter, and a save made under the lock is refused if a later holder has already saved. So
a holder that stalled past its lock's expiry can't overwrite a newer rotation. The lock's
lease is short and renewed while its holder lives, so a holder killed mid-refresh (SIGKILL,
OOM) keeps the next caller waiting for seconds, not for the length of a refresh's timeout.

With XCOURIER_STORE_KEY every value is sealed to its place (see store_base.Sealer): a login to its
user id, a record to its kind and key. Stores written by earlier versions (Fernet, login
metadata in the clear) are migrated once, on first use, by compare-and-set rewrites.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import math
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio

from .store_base import (
    SEALED_PREFIX,
    Sealer,
    StaleLockError,
    StoreError,
    StoreUnavailableError,
    check_cursors,
    check_lease_ttl,
    cursor_keys,
    open_record,
    open_tokens,
    seal_record,
    seal_tokens,
    tokens_from_dict,
)
from .tokenset import TokenSet

logger = logging.getLogger("xcourier.auth")

P = ParamSpec("P")
T = TypeVar("T")

INSTALL_HINT = (
    "pip install 'xcourier[redis]' (pipx: `pipx inject xcourier redis`; uv: `uv tool install 'xcourier[redis]'`)"
)

# The refresh lock's lease, renewed every third of it while the holder lives: a refresh may take up to
# its HTTP timeout (30 s), but a dead holder costs the next caller at most this long.
LOCK_LEASE = 5.0
FORMAT = "2"  # the store's sealing format; see _migrate

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
# Replace KEYS[1]'s value ARGV[1] with ARGV[2], keeping its expiry; nothing if it changed meanwhile.
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
    return 1
end
return 0
"""
# Extend KEYS[1]'s expiry to ARGV[2] ms if ARGV[1] still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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


def import_redis(url: str) -> Any:
    """redis.asyncio, or a StoreError saying how to install it: it is an optional dependency."""
    try:
        import redis.asyncio as redis
    except ModuleNotFoundError:
        raise StoreError(
            f"--store {_redacted(url)}: a Redis store needs the redis package, which is not installed. "
            f"Install it with {INSTALL_HINT}."
        ) from None
    return redis


def unreachable(location: str, exc: BaseException) -> StoreUnavailableError:
    reason = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    return StoreUnavailableError(
        f"The store {location} can't be reached ({reason}). Start Redis there, or point --store / XCOURIER_STORE at "
        "a Redis that runs, then try again."
    )


def _reached(
    method: Callable[Concatenate[RedisTokenStore, P], Awaitable[T]],
) -> Callable[Concatenate[RedisTokenStore, P], Awaitable[T]]:
    """Redis being down is said as a StoreUnavailableError (one line for the user), not as redis's own error."""

    @functools.wraps(method)
    async def reaching(self: RedisTokenStore, *args: P.args, **kwargs: P.kwargs) -> T:
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            return await method(self, *args, **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            raise unreachable(self.location, exc) from exc

    return reaching


class RedisTokenStore:
    def __init__(
        self,
        url: str,
        *,
        key: str | None = None,
        prefix: str = "xcourier",
        sealed_only: bool = False,
        lock_lease: float = LOCK_LEASE,
    ) -> None:
        redis = import_redis(url)
        self.location = _redacted(url)
        self._redis = redis.from_url(url, decode_responses=True)
        self._sealer = Sealer(key) if key else None
        self._prefix = prefix
        # Hosted mode: a login whose secrets aren't sealed with the key was not written by xcourier.
        self._sealed_only = sealed_only and key is not None
        self._warned: set[str] = set()  # kinds of unsealed record already logged (see open_record)
        self._lock_lease = lock_lease
        self._migrated = False
        self._migrating = anyio.Lock()
        if key is None:
            # Said once per store opened: without a key, whoever can write to Redis can write any login.
            logger.info(
                "the Redis store %s has no XCOURIER_STORE_KEY: its logins are neither sealed nor bound to their "
                "place, so anyone who can write to it can write any login",
                self.location,
            )

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    @_reached
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

    @_reached
    async def load_user(self, user_id: str) -> TokenSet | None:
        await self._ready()
        record = await self._redis.get(self._key("tokens", user_id))
        return None if record is None else self._decode(user_id, json.loads(record))

    @_reached
    async def save(self, tokens: TokenSet) -> None:
        await self._ready()  # an old-format value must be migrated before a new one can be told from it
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

    @_reached
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

    @_reached
    async def list_accounts(self) -> list[TokenSet]:
        await self._ready()
        user_ids = await self._redis.zrevrange(self._key("accounts"), 0, -1)
        found = []
        for user_id in user_ids:
            record = await self._redis.get(self._key("tokens", user_id))
            tokens = None if record is None else self._decode(user_id, json.loads(record))
            if tokens is not None:
                found.append(tokens)
        return found

    async def preflight(self) -> None:
        """Raise StoreError now if the store can't be used (Redis away, a wrong key), before a browser sign-in."""
        await self.list_accounts()

    @asynccontextmanager
    async def refresh_lock(self, user_id: str) -> AsyncIterator[None]:
        lock_key = self._key("refresh-lock", user_id)
        owner = secrets.token_hex(16)
        lease_ms = _milliseconds(self._lock_lease)
        fence = await self._acquire_lock(lock_key, owner, lease_ms, user_id)
        reset = _fence.set((user_id, fence))
        try:
            async with anyio.create_task_group() as renewals:
                renewals.start_soon(self._keep_lock, lock_key, owner, lease_ms)
                try:
                    yield
                finally:
                    renewals.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The renewals never raise, so the one exception is the holder's own: the caller catches it
            # (LoginRequiredError, ...) as if no task group had been there.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            _fence.reset(reset)
            with anyio.CancelScope(shield=True):
                await self._release_lock(lock_key, owner)

    @_reached
    async def _acquire_lock(self, lock_key: str, owner: str, lease_ms: int, user_id: str) -> int:
        """Wait for the lock; its fencing token."""
        delay = 0.005
        while not await self._redis.set(lock_key, owner, nx=True, px=lease_ms):
            await anyio.sleep(delay)  # a back-off between attempts, bounded by the lease of a dead holder
            delay = min(delay * 2, 0.1)
        return int(await self._redis.incr(self._key("fence", user_id)))

    @_reached
    async def _release_lock(self, lock_key: str, owner: str) -> None:
        await self._redis.eval(_RELEASE, 1, lock_key, owner)

    async def _keep_lock(self, lock_key: str, owner: str, lease_ms: int) -> None:
        """Renew the lock every third of its lease while its holder lives; a dead holder's lease runs out."""
        while True:
            await anyio.sleep(lease_ms / 3000)  # the renewal period, not a synchronisation
            try:
                if not await self._redis.eval(_RENEW, 1, lock_key, owner, lease_ms):
                    # Lost (Redis stalled past the lease): the fence refuses this holder's save, so stop renewing.
                    logger.warning("a refresh lock in %s ran out before its holder finished", self.location)
                    return
            except Exception as exc:
                # A moment without Redis: keep trying until the lease is gone; the fence guards the save.
                # One line per attempt; the traceback only with --log-level DEBUG.
                logger.warning("could not renew a refresh lock in %s (%s); trying again", self.location, exc)
                logger.debug("refresh lock renewal failed", exc_info=True)

    async def load_cursor(self, key: str) -> str | None:
        return (await self.load_cursors([key])).get(key)

    async def save_cursor(self, key: str, post_id: str) -> None:
        await self.save_cursors({key: post_id})

    @_reached
    async def load_cursors(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = cursor_keys(keys)
        if not wanted:
            return {}
        # One MGET: one round trip, and one command, so one consistent view of the batch.
        values = await self._redis.mget([self._key("cursor", key) for key in wanted])
        return {key: str(value) for key, value in zip(wanted, values, strict=True) if value is not None}

    @_reached
    async def save_cursors(self, cursors: Mapping[str, str]) -> None:
        checked = check_cursors(cursors)
        if checked:
            # MSET sets every key at once (Redis documents it as atomic): no reader sees half a batch, and of
            # two writers' batches one is applied whole after the other. One command, so one round trip.
            await self._redis.mset({self._key("cursor", key): post_id for key, post_id in checked.items()})

    @_reached
    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        member = json.dumps({"id": uuid.uuid4().hex, "at": at, "record": record}, ensure_ascii=False)
        await self._redis.zadd(self._key("audit"), {member: at})

    @_reached
    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        members = await self._redis.zrangebyscore(self._key("audit"), since, "+inf")
        entries = [json.loads(member) for member in members]
        return [(float(entry["at"]), entry["record"]) for entry in entries]

    @_reached
    async def put_record(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        await self._ready()
        sealed = seal_record(self._sealer, kind, key, value)
        if ttl > 0:
            await self._redis.set(self._key("record", kind, key), sealed, px=_milliseconds(ttl))
        else:
            await self._redis.delete(self._key("record", kind, key))

    @_reached
    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        await self._ready()
        sealed = await self._redis.get(self._key("record", kind, key))
        return None if sealed is None else self._open(kind, key, sealed)

    @_reached
    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        await self._ready()
        # GETDEL: an unsealed record in a store with a key is gone now too: it was never ours to keep.
        sealed = await self._redis.getdel(self._key("record", kind, key))
        return None if sealed is None else self._open(kind, key, sealed)

    def _open(self, kind: str, key: str, sealed: str) -> dict[str, Any] | None:
        return open_record(self._sealer, sealed, self.location, kind, key, self._warned)

    @_reached
    async def delete_record(self, kind: str, key: str) -> None:
        await self._redis.delete(self._key("record", kind, key))

    @_reached
    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        check_lease_ttl(ttl)
        return bool(await self._redis.eval(_HOLD, 1, self._key("lease", name), holder, _milliseconds(ttl)))

    @_reached
    async def release_lease(self, name: str, holder: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._key("lease", name), holder)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _encode(self, tokens: TokenSet) -> dict[str, Any]:
        if self._sealer is not None:
            # The username stays readable for the index clean-up in `delete`; nothing trusts it.
            return {
                "format": int(FORMAT),
                "user_id": tokens.user_id,
                "username": tokens.username,
                "sealed": seal_tokens(self._sealer, tokens),
            }
        secrets_json = json.dumps(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "client_secret": tokens.client_secret,
            }
        )
        return {**_plain_metadata(tokens), "encrypted": False, "secrets": secrets_json}

    def _decode(self, user_id: str, record: dict[str, Any]) -> TokenSet | None:
        """The login stored under `user_id`, or None for one that must not count (logged, never its content)."""
        if record.get("format") is not None:
            if self._sealer is None:
                raise StoreError(f"The logins in {self.location} are encrypted; set XCOURIER_STORE_KEY.")
            return open_tokens(self._sealer, user_id, str(record.get("sealed", "")), self.location)
        if record.get("encrypted"):
            if self._sealer is None:
                raise StoreError(f"The logins in {self.location} are encrypted; set XCOURIER_STORE_KEY.")
            logger.warning(
                "ignored an old-format login in %s (user id %s): the migration rewrote every one it found",
                self.location,
                user_id,
            )
            return None
        if self._sealed_only:
            logger.warning(
                "refused an unsealed login in %s (user id %s): not written by xcourier", self.location, user_id
            )
            return None
        return tokens_from_dict({**record, **json.loads(record["secrets"])})

    # -- migration from the Fernet format -----------------------------------------------------------------

    async def _ready(self) -> None:
        if self._migrated:
            return
        async with self._migrating:
            if not self._migrated:
                await self._migrate()
                self._migrated = True

    async def _migrate(self) -> None:
        """Rewrite the old format (Fernet, place not bound, login metadata in the clear) once, then refuse it.

        Only a store holding no current-format value yet is migrated: once one exists, an old-format value
        can only be a copy kept from before (someone deleting the marker to have it bound wherever they put
        it gets nothing). Each rewrite is a compare-and-set, so a value changed meanwhile (a refresh by
        another instance) is left as its writer wrote it.
        """
        if self._sealer is None or await self._redis.get(self._key("format")) == FORMAT:
            return
        legacy: list[tuple[str, str, str]] = []  # (redis key, old value, new value)
        current = False
        async for name in self._redis.scan_iter(match=self._key("*"), count=1000):
            kind, _, rest = name[len(self._prefix) + 1 :].partition(":")
            if kind not in ("record", "tokens"):
                continue
            value = await self._redis.get(name)
            if value is None:
                continue
            if kind == "record":
                if value.startswith(SEALED_PREFIX):
                    current = True
                elif not value.startswith("{"):
                    record_kind, _, record_key = rest.partition(":")
                    plain = self._legacy_open(value)
                    legacy.append((name, value, seal_record(self._sealer, record_kind, record_key, plain)))
                continue
            record = json.loads(value)
            if record.get("format") is not None:
                current = True
            elif record.get("encrypted"):
                tokens = tokens_from_dict({**record, **self._legacy_open(record["secrets"])})
                legacy.append((name, value, json.dumps(self._encode(tokens))))
        if not current:
            for name, old, new in legacy:
                await self._redis.eval(_SWAP, 1, name, old, new)
            if legacy:
                logger.info(
                    "sealed %d value(s) in %s to their place (store format %s)", len(legacy), self.location, FORMAT
                )
        elif legacy:
            logger.warning(
                "left %d old-format value(s) in %s unread: the store was migrated before, so they are copies",
                len(legacy),
                self.location,
            )
        await self._redis.set(self._key("format"), FORMAT)

    def _legacy_open(self, token: str) -> dict[str, Any]:
        from cryptography.fernet import InvalidToken

        assert self._sealer is not None
        try:
            return json.loads(self._sealer.fernet.decrypt(token.encode()))
        except InvalidToken:
            raise StoreError(f"XCOURIER_STORE_KEY does not decrypt the logins in {self.location}.") from None


def _plain_metadata(tokens: TokenSet) -> dict[str, Any]:
    return {
        "user_id": tokens.user_id,
        "username": tokens.username,
        "scopes": sorted(tokens.scopes),
        "expires_at": tokens.expires_at,
        "api_base_url": tokens.api_base_url,
        "client_id": tokens.client_id,
        "version": tokens.version,
        "logged_in_at": tokens.logged_in_at,
    }


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
