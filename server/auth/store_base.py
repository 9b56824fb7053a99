"""What every token store shares, below the TokenStore interface: errors, sealing, the record and login codecs.

The stores (sqlite_store, redis_store, memory_store) import this, never store.py: store.py is the front
(the interface and `open_store`, which picks an implementation), so the import graph has no circle.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .tokenset import TokenSet

logger = logging.getLogger("xcourier.auth")


class StoreError(Exception):
    """The store can't be used as configured; the message says what to do."""


class StoreUnavailableError(StoreError):
    """The store is configured right but can't be reached now (Redis down or away); trying later may work."""


# The exit code of a command that stopped because its store can't be reached (2 is a usage error, 3 a busy port).
EXIT_STORE_UNAVAILABLE = 4


class StaleLockError(StoreError):
    """A refresh-lock holder lost its lock to a later one; its write was refused."""


def fernet_for(key: str) -> Any:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise StoreError(
            "XCOURIER_STORE_KEY is not a Fernet key (32 url-safe base64-encoded bytes). Make one with: "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None


SEALED_PREFIX = "x2."
_AEAD_INFO = b"xcourier store v2: AES-256-GCM, bound to kind and key"
_KEY_ID_INFO = b"xcourier store v2: key id"


def place(*parts: str) -> bytes:
    """What a sealed value is and where it lives, as AEAD associated data (JSON: no two places share a spelling)."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()


class Sealer:
    """XCOURIER_STORE_KEY at work: AES-256-GCM with the value's place as associated data.

    Fernet (the format before) authenticates only the ciphertext, so a sealed value copied to another
    key (alice's issued-token record under the hash of "mine", alice's X login under bob's user id)
    still opened. AES-GCM's associated data makes the place part of what is authenticated: a moved value
    fails to open, and nothing has to remember to compare an embedded label. The AEAD key is derived
    (HKDF-SHA256) from the same 32 bytes, so the configured key stays as it is. A short key id in front
    tells a wrong XCOURIER_STORE_KEY (a configuration error, said as such) from a value that was moved or
    altered (an attack, or damage: the value counts as absent). Fernet stays for reading the old
    format once, in the stores' migration.
    """

    def __init__(self, key: str) -> None:
        import base64

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        self.fernet = fernet_for(key)  # validates the key, with the message saying how to make one
        raw = base64.urlsafe_b64decode(key.encode())
        self._aead = AESGCM(HKDF(hashes.SHA256(), 32, salt=None, info=_AEAD_INFO).derive(raw))
        key_id = HKDF(hashes.SHA256(), 6, salt=None, info=_KEY_ID_INFO).derive(raw)
        self._prefix = SEALED_PREFIX + base64.urlsafe_b64encode(key_id).decode() + "."

    def seal(self, where: bytes, plaintext: bytes) -> str:
        import base64

        nonce = os.urandom(12)  # random 96-bit nonces: safe far beyond the number of writes a store sees
        return self._prefix + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plaintext, where)).decode()

    def open(self, where: bytes, sealed: str, location: str) -> bytes | None:
        """The plaintext, or None if the value was sealed for another place or altered; StoreError for another key."""
        import base64
        import binascii

        from cryptography.exceptions import InvalidTag

        if not sealed.startswith(self._prefix):
            raise StoreError(
                f"XCOURIER_STORE_KEY does not decrypt the records in {location}; use the key they were saved with."
            )
        try:
            blob = base64.urlsafe_b64decode(sealed[len(self._prefix) :].encode())
            return self._aead.decrypt(blob[:12], blob[12:], where)
        except (InvalidTag, ValueError, binascii.Error):
            return None


def check_cursors(cursors: Mapping[str, str]) -> dict[str, str]:
    """A copy of `cursors` once every key and post id is valid, else ValueError naming the bad one.

    Checked and copied before a store writes anything, so a bad entry (or a mapping that fails while it is
    read) can't leave half a batch written.
    """
    checked: dict[str, str] = {}
    for key, post_id in cursors.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"a cursor's key must be a non-empty string, not {key!r}")
        if not isinstance(post_id, str) or not post_id.isdigit() or not post_id.isascii():
            raise ValueError(f"the cursor for {key!r} must be a post id (digits only), not {post_id!r}")
        checked[key] = post_id
    return checked


def cursor_keys(keys: Iterable[str]) -> list[str]:
    """`keys` without repeats, in order; ValueError for one that isn't a non-empty string."""
    unique = list(dict.fromkeys(keys))
    for key in unique:
        if not isinstance(key, str) or not key:
            raise ValueError(f"a cursor's key must be a non-empty string, not {key!r}")
    return unique


def check_lease_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"a lease's ttl must be a positive number of seconds, not {ttl!r}")


def seal_record(sealer: Sealer | None, kind: str, key: str, value: dict[str, Any]) -> str:
    """A record as stored: JSON, or that JSON sealed to its kind and key when the store has a key."""
    text = json.dumps(value, ensure_ascii=False)
    return sealer.seal(place("record", kind, key), text.encode()) if sealer is not None else text


def open_record(
    sealer: Sealer | None, sealed: str, location: str, kind: str, key: str, warned: set[str]
) -> dict[str, Any] | None:
    """The record back from what `seal_record` made, or None for one that must not count.

    With a key, only records sealed with it for exactly this kind and key count: anyone who can write to
    the store but lacks the key could otherwise forge one (an issued token's hash standing for someone
    else's login) or move one (a sealed record copied under another token's hash). Plain JSON (kept before
    the key was set, or written by someone without it), a moved or altered value, and the old Fernet format
    left after the store's migration are logged once per kind and reason in `warned` (the store's own set),
    never with their content: it is untrusted and may be a secret. Without a key, records are plain JSON
    and a sealed one means the key is missing.
    """
    if sealed.startswith("{"):
        if sealer is None:
            return json.loads(sealed)
        _ignored(
            warned,
            location,
            kind,
            "an unencrypted",
            "a plain one was kept before the key was set, or was written by someone without it",
        )
        return None
    if sealer is None:
        raise StoreError(
            f"The records in {location} are encrypted; set XCOURIER_STORE_KEY to the key they were saved with."
        )
    if not sealed.startswith(SEALED_PREFIX):
        _ignored(warned, location, kind, "an old-format", "the store's migration rewrote every one it found")
        return None
    opened = sealer.open(place("record", kind, key), sealed, location)
    if opened is None:
        _ignored(warned, location, kind, "a misplaced", "it was sealed for another record or altered")
        return None
    return json.loads(opened)


def _ignored(warned: set[str], location: str, kind: str, what: str, why: str) -> None:
    if f"{what}|{kind}" in warned:
        return
    warned.add(f"{what}|{kind}")
    logger.warning(
        "ignored %s %r record in %s: with XCOURIER_STORE_KEY set, only records sealed with the key for their "
        "own place are used (%s); further ones are ignored silently",
        what,
        kind,
        location,
        why,
    )


def seal_tokens(sealer: Sealer, tokens: TokenSet) -> str:
    """A whole login, metadata included (username, scopes, expiry, API base URL, client id), sealed to its user id."""
    return sealer.seal(place("tokens", tokens.user_id), json.dumps(tokens_to_dict(tokens)).encode())


def open_tokens(sealer: Sealer, user_id: str, sealed: str, location: str) -> TokenSet | None:
    """The login `seal_tokens` sealed for `user_id`, or None (logged) if it was sealed for another user or altered."""
    opened = sealer.open(place("tokens", user_id), sealed, location)
    if opened is None:
        logger.warning(
            "ignored the login stored for user id %s in %s: it was sealed for another place or altered "
            "(moved or swapped by someone with write access to the store, or damaged); that user signs in again",
            user_id,
            location,
        )
        return None
    return tokens_from_dict(json.loads(opened))


def tokens_to_dict(tokens: TokenSet) -> dict[str, Any]:
    return {
        "user_id": tokens.user_id,
        "username": tokens.username,
        "scopes": sorted(tokens.scopes),
        "expires_at": tokens.expires_at,
        "api_base_url": tokens.api_base_url,
        "client_id": tokens.client_id,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "client_secret": tokens.client_secret,
        "version": tokens.version,
        "logged_in_at": tokens.logged_in_at,
    }


def tokens_from_dict(record: dict[str, Any]) -> TokenSet:
    return TokenSet(
        user_id=str(record["user_id"]),
        username=str(record["username"]),
        scopes=frozenset(record["scopes"]),
        expires_at=float(record["expires_at"]),
        api_base_url=str(record["api_base_url"]),
        client_id=str(record["client_id"]),
        access_token=str(record["access_token"]),
        refresh_token=record.get("refresh_token"),
        client_secret=record.get("client_secret"),
        version=int(record["version"]),
        logged_in_at=float(record["logged_in_at"]),
    )
