"""Who may ask for tokens: clients registered dynamically (RFC 7591) and Client ID Metadata Documents.

A CIMD client's client_id is an https URL serving its metadata; it is fetched under the same
SSRF rules as remote media (the URL is chosen by whoever starts a sign-in), must name itself
as client_id, and is a public client (PKCE, no secret). Documents are cached briefly.

Registration is open to anyone, so a registration is bounded in size and kept for a day until
a sign-in through it completes; only then is it kept for a year. Redirect URIs that a browser
would run or render instead of navigating to (javascript:, data:, ...) are refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from xcourier.tools.errors import XError
from xcourier.tools.fetch import RemoteFetcher, UnreachableError

from ..auth.store import TokenStore

logger = logging.getLogger("xcourier.hosted")

REGISTRATION_TTL = 365 * 24 * 3600  # once a sign-in through the client has completed
UNUSED_REGISTRATION_TTL = 24 * 3600  # until then: most registrations nobody signs in through are junk
MAX_CLIENT_RECORD_BYTES = 4096
MAX_CLIENT_NAME = 200
MAX_FIELD_CHARS = 2048  # any other string: a URI, a scope list
MAX_LIST_ITEMS = 10  # redirect_uris, contacts, grant types ...
# Schemes a browser runs or renders in place rather than navigating to: as a redirect target they would
# run the attacker's script with the code in hand (RFC 9700 section 4.1; OAuth 2.1 draft section 7.5).
REFUSED_REDIRECT_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
DOCUMENT_CACHE_SECONDS = 300.0
# A refused document is retried sooner: its host may have had a moment's outage.
REFUSAL_CACHE_SECONDS = 30.0
# Anyone can name any URL as a client id: bound what that costs (memory, connections).
MAX_CACHED_DOCUMENTS = 1024
MAX_CONCURRENT_FETCHES = 8
# One site's slow or failing URLs must not take every fetch slot: at most this many at once per site, and
# once a fetch from a site failed (timeout, refused connection, bad TLS), none from it for a while.
MAX_FETCHES_PER_SITE = 2
SITE_FAILURE_SECONDS = 30.0
MAX_DOCUMENT_BYTES = 64 * 1024


class ClientRegistry:
    def __init__(self, store: TokenStore, fetcher: RemoteFetcher, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._fetcher = fetcher
        self._clock = clock
        self._documents: OrderedDict[str, tuple[float, OAuthClientInformationFull | None]] = OrderedDict()
        self._fetching = anyio.CapacityLimiter(MAX_CONCURRENT_FETCHES)
        self._per_site: dict[str, int] = {}
        self._site_failed: OrderedDict[str, float] = OrderedDict()  # site -> until when it is not fetched from

    async def get(self, client_id: str) -> OAuthClientInformationFull | None:
        if client_id.startswith("https://"):
            return await self._metadata_document(client_id)
        record = await self._store.get_record("client", client_id)
        return None if record is None else OAuthClientInformationFull.model_validate(record)

    async def register(self, client: OAuthClientInformationFull) -> None:
        """Keep a new client for a day, or refuse its metadata (RegistrationError, RFC 7591 section 3.2.2)."""
        record = client.model_dump(mode="json", exclude_none=True)
        problem = metadata_problem(record)
        if problem is not None:
            raise RegistrationError(
                "invalid_redirect_uri" if "redirect" in problem else "invalid_client_metadata", problem
            )
        # The secret is kept (encrypted with the store) because the token endpoint compares it.
        await self._store.put_record("client", client.client_id or "", record, UNUSED_REGISTRATION_TTL)

    async def confirm(self, client: OAuthClientInformationFull) -> None:
        """A sign-in through `client` completed: keep its registration for a year from now."""
        if client.client_id and not client.client_id.startswith("https://"):
            record = client.model_dump(mode="json", exclude_none=True)
            await self._store.put_record("client", client.client_id, record, REGISTRATION_TTL)

    async def _metadata_document(self, url: str) -> OAuthClientInformationFull | None:
        cached = self._documents.get(url)
        now = self._clock()
        if cached is not None and cached[0] > now:
            self._documents.move_to_end(url)
            return cached[1]
        site = _site(url)
        failed_until = self._site_failed.get(site)
        if failed_until is not None and failed_until > now:
            logger.warning("client metadata document %s not fetched: a fetch from its site failed just now", url)
            return cached[1] if cached is not None else None
        if self._per_site.get(site, 0) >= MAX_FETCHES_PER_SITE:
            logger.warning("client metadata document %s not fetched: its site has fetches in progress", url)
            return cached[1] if cached is not None else None
        try:
            self._fetching.acquire_nowait()
        except anyio.WouldBlock:
            # Busy (perhaps someone naming slow URLs on purpose): a known client keeps its last good
            # document; an unknown one is refused now rather than queued behind the others.
            logger.warning("client metadata document %s not fetched: too many fetches in progress", url)
            return cached[1] if cached is not None else None
        self._per_site[site] = self._per_site.get(site, 0) + 1
        try:
            client, unreachable = await self._fetch_document(url)
        finally:
            self._fetching.release()
            self._per_site[site] -= 1
            if not self._per_site[site]:
                del self._per_site[site]
        if unreachable:
            self._site_failed[site] = self._clock() + SITE_FAILURE_SECONDS
            self._site_failed.move_to_end(site)
            while len(self._site_failed) > MAX_CACHED_DOCUMENTS:
                self._site_failed.popitem(last=False)
        if client is None and cached is not None and cached[1] is not None:
            return cached[1]  # a failed refetch doesn't lock out a client whose document was good
        keep = DOCUMENT_CACHE_SECONDS if client is not None else REFUSAL_CACHE_SECONDS
        self._documents[url] = (self._clock() + keep, client)
        self._documents.move_to_end(url)
        while len(self._documents) > MAX_CACHED_DOCUMENTS:
            self._documents.popitem(last=False)
        return client

    async def _fetch_document(self, url: str) -> tuple[OAuthClientInformationFull | None, bool]:
        """The client the document describes, or None; and whether its site failed to answer at all."""
        try:
            body = await self._fetcher.fetch(url, "client metadata document", lambda _head: MAX_DOCUMENT_BYTES)
        except UnreachableError as exc:
            logger.warning("client metadata document %s could not be fetched: %s", url, exc.message)
            return None, True
        except XError as exc:
            logger.warning("client metadata document %s refused: %s", url, exc.message)
            return None, False
        return self._client_from(url, body), False

    def _client_from(self, url: str, body: bytes) -> OAuthClientInformationFull | None:
        try:
            document: Any = json.loads(body)
        except ValueError:
            logger.warning("client metadata document %s is not JSON", url)
            return None
        if not isinstance(document, dict) or document.get("client_id") != url:
            logger.warning("client metadata document %s does not name itself as its client_id", url)
            return None
        if document.get("client_secret") or document.get("token_endpoint_auth_method", "none") != "none":
            logger.warning("client metadata document %s asks for a client secret; CIMD clients are public", url)
            return None
        problem = metadata_problem(document)
        if problem is not None:
            logger.warning("client metadata document %s refused: %s", url, problem)
            return None
        try:
            return OAuthClientInformationFull.model_validate({**document, "token_endpoint_auth_method": "none"})
        except ValidationError as exc:
            logger.warning("client metadata document %s is invalid: %s", url, exc.error_count())
            return None


def metadata_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with a client's metadata for this server, or None; says which field and its limit."""
    if len(json.dumps(record, ensure_ascii=False).encode()) > MAX_CLIENT_RECORD_BYTES:
        return f"client metadata is over {MAX_CLIENT_RECORD_BYTES} bytes"
    for name, value in record.items():
        limit = MAX_CLIENT_NAME if name == "client_name" else MAX_FIELD_CHARS
        if isinstance(value, str) and len(value) > limit:
            return f"{name} is over {limit} characters"
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                return f"{name} has over {MAX_LIST_ITEMS} entries"
            if any(isinstance(item, str) and len(item) > MAX_FIELD_CHARS for item in value):
                return f"an entry of {name} is over {MAX_FIELD_CHARS} characters"
    for uri in record.get("redirect_uris") or []:
        scheme = str(uri).split(":", 1)[0].strip().lower()
        if scheme in REFUSED_REDIRECT_SCHEMES:
            return f"redirect_uris: a {scheme}: URI is not a place to send an authorization code"
    return None


def _site(url: str) -> str:
    """The site a URL is on, for the per-site limits: its host's last two labels (an IP address whole).

    Coarse on purpose: sub-domains are free to make, so "a.evil.example" and "b.evil.example" share one
    budget. Under a public suffix of two labels (example.co.uk) several owners share one; the cost is only
    that one of them may wait for another's fetch.
    """
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return ".".join(host.split(".")[-2:])
