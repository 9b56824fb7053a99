"""The embedded token store: one SQLite file (WAL, mode 0600) plus a lock file for refreshes.

SQLite commits are atomic and, with synchronous=FULL, durable, so a process killed at any
point leaves either the old or the new token set. The refresh lock is an flock on a
side file: the kernel drops it when the holder dies, so a crash can't wedge the next process.

With XCOURIER_STORE_KEY a login is sealed whole (metadata too) to its user id, and a record to
its kind and key (see store_base.Sealer); stores written by earlier versions are migrated once.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .store_base import (
    SEALED_PREFIX,
    Sealer,
    StoreError,
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

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS token_sets (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at REAL NOT NULL,
    api_base_url TEXT NOT NULL,
    client_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    logged_in_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    encrypted INTEGER NOT NULL,
    secrets BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS cursors (
    key TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_expires_at ON records (expires_at);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

FORMAT = "2"  # the sealing format; see _migrate
_SEALED = 2  # token_sets.encrypted: 0 plain, 1 the old Fernet format (secrets only), 2 sealed whole to its user id
# A batch of cursors up to this size is written right on the event loop (~0.03 ms a cursor); a bigger one
# (every watched user at once) in a worker thread, so the loop is never held for long.
INLINE_CURSORS = 512
# Keys per SELECT ... IN (...): below SQLite's smallest limit on bound parameters (999 before 3.32).
_KEYS_PER_QUERY = 500
_COLUMNS = "user_id, username, scopes, expires_at, api_base_url, client_id, version, logged_in_at, encrypted, secrets"


class SQLiteTokenStore:
    def __init__(
        self,
        path: Path,
        *,
        key: str | None = None,
        sealed_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        # Hosted mode: a login whose secrets aren't sealed with the key was not written by xcourier.
        self._sealed_only = sealed_only and key is not None
        self._clock = clock  # for records' and leases' expiry
        self.location = str(path)
        self._sealer = Sealer(key) if key else None
        self._migrated = False
        self._lock_path = path.with_name(path.name + ".lock")
        self._initialised = False
        self._local_locks: dict[str, anyio.Lock] = {}
        # One connection kept open for the audit and the watcher's cursors (small, frequent writes), guarded
        # by a thread lock: used right on the event loop when it is free, else from a worker thread.
        self._kept_db: sqlite3.Connection | None = None
        self._kept_busy_timeout_ms: int | None = None  # as last set on _kept_db: a PRAGMA a write is ~20 us
        self._kept_lock = threading.Lock()
        self._warned: set[str] = set()  # kinds of unsealed record already logged (see open_record)

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if not self._initialised:
            self._create()
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA synchronous = FULL")
        return connection

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file 0600 before SQLite opens it; SQLite gives its -wal and -shm files
        # the same mode as the database.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(_SCHEMA)
        finally:
            connection.close()
        self._initialised = True

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def job() -> T:
            try:
                connection = self._connect()
                if not self._migrated:
                    self._migrate(connection)
                    self._migrated = True
                try:
                    return work(connection)
                finally:
                    connection.close()
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"The store {self.location} can't be used: {exc}") from None

        return await anyio.to_thread.run_sync(job)

    async def _read(self, work: Callable[[sqlite3.Connection], T], absent: T) -> T:
        """`work` on the store, or `absent` while there is no store file: reading creates nothing (no file,
        no folders), so `serve` without a login, `auth status` or a mistyped --store leave no trace."""
        if not self._initialised and not self.path.exists():
            return absent
        return await self._run(work)

    async def preflight(self) -> None:
        """Raise StoreError now if the store can't be written (before a browser sign-in), creating nothing."""
        problem = _unusable(self.path)
        if problem is not None:
            raise StoreError(
                f"The store {self.location} can't be used: {problem}. Give --store (or XCOURIER_STORE) a file path "
                "in a folder you can write to."
            )
        await self.list_accounts()  # an existing file: that it is a store, readable with this key

    # -- the TokenStore interface -------------------------------------------------------------

    async def load(self, account: str | None = None) -> TokenSet | None:
        def work(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            if account is None:
                query = f"SELECT {_COLUMNS} FROM token_sets ORDER BY logged_in_at DESC LIMIT 1"
                return db.execute(query).fetchone()
            # The exact user id first (an all-digit username may equal another login's id), then of several
            # logins with the username (X lets a name pass to another account) the newest.
            query = (
                f"SELECT {_COLUMNS} FROM token_sets WHERE user_id = ? OR lower(username) = lower(?) "
                "ORDER BY user_id = ? DESC, logged_in_at DESC LIMIT 1"
            )
            return db.execute(query, (account, account.lstrip("@"), account)).fetchone()

        row = await self._read(work, None)
        tokens = None if row is None else self._decode(row)
        if tokens is None or account is None:
            return tokens
        # The columns picked the row; what counts is what was sealed (someone may have edited a username).
        matches = tokens.user_id == account or tokens.username.lower() == account.lstrip("@").lower()
        return tokens if matches else None

    async def load_user(self, user_id: str) -> TokenSet | None:
        def work(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            return db.execute(f"SELECT {_COLUMNS} FROM token_sets WHERE user_id = ?", (user_id,)).fetchone()

        row = await self._read(work, None)
        return None if row is None else self._decode(row)

    async def save(self, tokens: TokenSet) -> None:
        row = self._row(tokens)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO token_sets (user_id, username, scopes, expires_at, api_base_url, "
                "client_id, version, logged_in_at, updated_at, encrypted, secrets) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )

        await self._run(work)

    def _row(self, tokens: TokenSet) -> tuple[Any, ...]:
        if self._sealer is not None:
            encrypted, blob = _SEALED, seal_tokens(self._sealer, tokens).encode()
        else:
            secrets = {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "client_secret": tokens.client_secret,
            }
            encrypted, blob = 0, json.dumps(secrets).encode()
        # The columns stay readable for look-ups by username and ordering; _decode trusts only the sealed copy.
        return (
            tokens.user_id,
            tokens.username,
            " ".join(sorted(tokens.scopes)),
            tokens.expires_at,
            tokens.api_base_url,
            tokens.client_id,
            tokens.version,
            tokens.logged_in_at,
            time.time(),
            encrypted,
            blob,
        )

    async def delete(self, user_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM token_sets WHERE user_id = ?", (user_id,)).rowcount > 0

        return await self._read(work, False)

    async def list_accounts(self) -> list[TokenSet]:
        def work(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(f"SELECT {_COLUMNS} FROM token_sets ORDER BY logged_in_at DESC").fetchall()

        decoded = [self._decode(row) for row in await self._read(work, [])]
        return [tokens for tokens in decoded if tokens is not None]

    async def load_cursor(self, key: str) -> str | None:
        return (await self.load_cursors([key])).get(key)

    async def save_cursor(self, key: str, post_id: str) -> None:
        await self.save_cursors({key: post_id})

    async def load_cursors(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = cursor_keys(keys)
        if not wanted or (not self._initialised and not self.path.exists()):
            return {}  # reading creates nothing

        def read(db: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            with _transaction(db, "BEGIN"):  # one snapshot across the chunks
                for start in range(0, len(wanted), _KEYS_PER_QUERY):
                    chunk = wanted[start : start + _KEYS_PER_QUERY]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT key, post_id FROM cursors WHERE key IN ({marks})"
                    found.update(db.execute(query, chunk).fetchall())
            return found

        return await self._on_kept(read, inline=len(wanted) <= INLINE_CURSORS)

    async def save_cursors(self, cursors: Mapping[str, str]) -> None:
        checked = check_cursors(cursors)
        if not checked:
            return
        now = time.time()
        rows = [(key, post_id, now) for key, post_id in checked.items()]

        def write(db: sqlite3.Connection) -> None:
            # One transaction, one commit: a batch is written whole or not at all, and costs one sync.
            with _transaction(db, "BEGIN IMMEDIATE"):
                db.executemany("INSERT OR REPLACE INTO cursors (key, post_id, updated_at) VALUES (?, ?, ?)", rows)

        await self._on_kept(write, inline=len(rows) <= INLINE_CURSORS)

    async def _on_kept(self, work: Callable[[sqlite3.Connection], T], *, inline: bool) -> T:
        """`work` on the kept connection (synchronous=NORMAL: in WAL mode still atomic and safe from a process
        crash; only a power cut can lose the newest commits; token sets keep FULL on their own connections).
        Tried right here with no wait when `inline` (~50 us for a small write, no thread hop), and handed to a
        worker thread that may wait when another process holds the write lock, or for big batches."""

        def attempt(busy_timeout_ms: int) -> T:
            if self._kept_db is None:
                if not self._initialised:
                    self._create()
                self._kept_db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                self._kept_db.execute("PRAGMA synchronous = NORMAL")
                self._kept_busy_timeout_ms = None
            if busy_timeout_ms != self._kept_busy_timeout_ms:
                self._kept_db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
                self._kept_busy_timeout_ms = busy_timeout_ms
            return work(self._kept_db)

        def waiting() -> T:
            with self._kept_lock:
                return attempt(30_000)

        try:
            if inline and self._kept_lock.acquire(blocking=False):
                try:
                    return attempt(0)
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                finally:
                    self._kept_lock.release()
            return await anyio.to_thread.run_sync(waiting)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"The store {self.location} can't be used: {exc}") from None

    async def append_audit(self, at: float, record: dict[str, Any]) -> None:
        """On every write's path, so on the kept connection (see `_on_kept`)."""
        line = json.dumps(record, ensure_ascii=False)

        def insert(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO audit (at, record) VALUES (?, ?)", (at, line))

        await self._on_kept(insert, inline=True)

    async def audit_since(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        def work(db: sqlite3.Connection) -> list[tuple[float, str]]:
            return db.execute("SELECT at, record FROM audit WHERE at >= ? ORDER BY id", (since,)).fetchall()

        return [(at, json.loads(record)) for at, record in await self._read(work, [])]

    async def put_record(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        sealed = seal_record(self._sealer, kind, key, value)

        def work(db: sqlite3.Connection) -> None:
            now = self._clock()
            # A ttl of 0 or less writes an already expired row, which the purge below removes at once.
            expires_at = now + ttl if ttl > 0 else now
            db.execute("BEGIN IMMEDIATE")
            with db:  # one commit for both
                db.execute(
                    "INSERT OR REPLACE INTO records (kind, key, value, expires_at) VALUES (?, ?, ?, ?)",
                    (kind, key, sealed, expires_at),
                )
                db.execute("DELETE FROM records WHERE expires_at <= ?", (now,))  # expired ones, lazily

        await self._run(work)

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        def work(db: sqlite3.Connection) -> tuple[str] | None:
            return db.execute(
                "SELECT value FROM records WHERE kind = ? AND key = ? AND expires_at > ?", (kind, key, self._clock())
            ).fetchone()

        row = await self._run(work)
        return None if row is None else open_record(self._sealer, row[0], self.location, kind, key, self._warned)

    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        def work(db: sqlite3.Connection) -> list[tuple[str]]:
            # One autocommit statement holds the write lock from start to end, so of concurrent takers
            # exactly one deletes the row. fetchall() runs it to completion, which commits.
            return db.execute(
                "DELETE FROM records WHERE kind = ? AND key = ? AND expires_at > ? RETURNING value",
                (kind, key, self._clock()),
            ).fetchall()

        rows = await self._run(work)
        # An unsealed record in a store with a key is gone now too: it was never ours to keep.
        return open_record(self._sealer, rows[0][0], self.location, kind, key, self._warned) if rows else None

    async def delete_record(self, kind: str, key: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))

        await self._run(work)

    async def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        check_lease_ttl(ttl)

        def work(db: sqlite3.Connection) -> bool:
            now = self._clock()
            # One statement, so one write lock: take a free lease, renew our own, or change nothing.
            cursor = db.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                (name, holder, now + ttl, now),
            )
            return cursor.rowcount > 0

        return await self._run(work)

    async def release_lease(self, name: str, holder: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

        await self._run(work)

    async def aclose(self) -> None:
        with self._kept_lock:
            if self._kept_db is not None:
                self._kept_db.close()
                self._kept_db = None

    @asynccontextmanager
    async def refresh_lock(self, user_id: str) -> AsyncIterator[None]:
        import fcntl

        # In-process first, so only one thread per account ever blocks on the file lock.
        local = self._local_locks.setdefault(user_id, anyio.Lock())
        async with local:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # Non-blocking attempts, so a waiting caller stays cancellable (a thread blocked
                # in flock could not be).
                delay = 0.002
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await anyio.sleep(delay)
                        delay = min(delay * 2, 0.05)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    # -- decoding -----------------------------------------------------------------------------

    def _decode(self, row: tuple[Any, ...]) -> TokenSet | None:
        """The login in `row`, or None for one that must not count (logged, never its content)."""
        user_id, username, scopes, expires_at, api_base_url, client_id, version, logged_in_at, encrypted, blob = row
        if encrypted and self._sealer is None:
            raise StoreError(
                f"The logins in {self.location} are encrypted; set XCOURIER_STORE_KEY to the key they were "
                "saved with, or log in again with `xcourier auth login`."
            )
        if encrypted == _SEALED:
            assert self._sealer is not None
            return open_tokens(self._sealer, user_id, _text(blob), self.location)
        if encrypted:
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
        columns = {
            "user_id": user_id,
            "username": username,
            "scopes": scopes.split(),
            "expires_at": expires_at,
            "api_base_url": api_base_url,
            "client_id": client_id,
            "version": version,
            "logged_in_at": logged_in_at,
        }
        return tokens_from_dict({**columns, **json.loads(bytes(blob))})

    # -- migration from the Fernet format -----------------------------------------------------------------

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Rewrite the old format (Fernet, place not bound, login metadata in the clear) once, then refuse it.

        In one transaction, and only in a store that holds no current-format value yet: once one exists,
        an old-format value can only be a copy kept from before, and binding it where someone put it would
        do what the format exists to prevent.
        """
        if self._sealer is None:
            return
        db.execute("BEGIN IMMEDIATE")
        with db:
            marker = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            if marker is not None and marker[0] == FORMAT:
                return
            current = db.execute(
                "SELECT 1 FROM token_sets WHERE encrypted = ? UNION ALL SELECT 1 FROM records WHERE value LIKE ? "
                "LIMIT 1",
                (_SEALED, SEALED_PREFIX + "%"),
            ).fetchone()
            if current is None:
                self._rewrite_legacy(db)
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('format', ?)", (FORMAT,))

    def _rewrite_legacy(self, db: sqlite3.Connection) -> None:
        from cryptography.fernet import InvalidToken

        assert self._sealer is not None
        fernet = self._sealer.fernet
        try:
            for row in db.execute(f"SELECT {_COLUMNS} FROM token_sets WHERE encrypted = 1").fetchall():
                secrets = json.loads(fernet.decrypt(bytes(row[9])))
                user_id, username, scopes, expires_at, api_base_url, client_id, version, logged_in_at = row[:8]
                tokens = tokens_from_dict(
                    {
                        "user_id": user_id,
                        "username": username,
                        "scopes": scopes.split(),
                        "expires_at": expires_at,
                        "api_base_url": api_base_url,
                        "client_id": client_id,
                        "version": version,
                        "logged_in_at": logged_in_at,
                        **secrets,
                    }
                )
                db.execute(
                    "UPDATE token_sets SET encrypted = ?, secrets = ? WHERE user_id = ?",
                    (_SEALED, seal_tokens(self._sealer, tokens).encode(), user_id),
                )
            legacy = db.execute("SELECT kind, key, value FROM records WHERE value NOT LIKE '{%'").fetchall()
            for kind, key, value in legacy:
                plain = json.loads(fernet.decrypt(value.encode()))
                db.execute(
                    "UPDATE records SET value = ? WHERE kind = ? AND key = ?",
                    (seal_record(self._sealer, kind, key, plain), kind, key),
                )
        except InvalidToken:
            raise StoreError(
                f"XCOURIER_STORE_KEY does not decrypt the logins in {self.location}; use the key they were "
                "saved with, or log in again."
            ) from None


@contextmanager
def _transaction(db: sqlite3.Connection, begin: str) -> Iterator[None]:
    """`begin`, then COMMIT, or ROLLBACK if anything fails (so the kept connection is never left mid-transaction)."""
    db.execute(begin)
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _text(blob: Any) -> str:
    return (
        blob.decode() if isinstance(blob, bytes | bytearray | memoryview) and not isinstance(blob, str) else str(blob)
    )


def _unusable(path: Path) -> str | None:
    """Why a store can't be created or written at `path`, found without creating anything; None if it can."""
    if path.is_dir():
        return "that is a folder; name a file in it, e.g. " + str(path / "xcourier.db")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return "no permission to read and write it"
        folder = path.parent
    else:
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            return f"{folder} is a file, where a folder should be"
    # The folder takes the lock file and SQLite's -wal and -shm files beside the store.
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to create files in {folder}"
    return None
