"""Who may ask for tokens: clients registered dynamically (RFC 7591) and Client ID Metadata Documents.

A CIMD client's client_id is an https URL serving its metadata; it is fetched under the same
SSRF rules as remote media (the URL is chosen by whoever starts a sign-in), must name itself
as client_id, and is a public client (PKCE, no secret). Documents are cached briefly.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from xcourier.tools.errors import XError
from xcourier.tools.fetch import RemoteFetcher

from ..auth.store import TokenStore

logger = logging.getLogger("xcourier.hosted")

REGISTRATION_TTL = 365 * 24 * 3600
DOCUMENT_CACHE_SECONDS = 300.0
# A refused document is retried sooner: its host may have had a moment's outage.
REFUSAL_CACHE_SECONDS = 30.0
# Anyone can name any URL as a client id: bound what that costs (memory, connections).
MAX_CACHED_DOCUMENTS = 1024
MAX_CONCURRENT_FETCHES = 8
MAX_DOCUMENT_BYTES = 64 * 1024


class ClientRegistry:
    def __init__(self, store: TokenStore, fetcher: RemoteFetcher, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._fetcher = fetcher
        self._clock = clock
        self._documents: OrderedDict[str, tuple[float, OAuthClientInformationFull | None]] = OrderedDict()
        self._fetching = anyio.CapacityLimiter(MAX_CONCURRENT_FETCHES)

    async def get(self, client_id: str) -> OAuthClientInformationFull | None:
        if client_id.startswith("https://"):
            return await self._metadata_document(client_id)
        record = await self._store.get_record("client", client_id)
        return None if record is None else OAuthClientInformationFull.model_validate(record)

    async def register(self, client: OAuthClientInformationFull) -> None:
        # The secret is kept (encrypted with the store) because the token endpoint compares it.
        await self._store.put_record(
            "client", client.client_id or "", client.model_dump(mode="json", exclude_none=True), REGISTRATION_TTL
        )

    async def _metadata_document(self, url: str) -> OAuthClientInformationFull | None:
        cached = self._documents.get(url)
        if cached is not None and cached[0] > self._clock():
            self._documents.move_to_end(url)
            return cached[1]
        try:
            self._fetching.acquire_nowait()
        except anyio.WouldBlock:
            # Busy (perhaps someone naming slow URLs on purpose): a known client keeps its last good
            # document; an unknown one is refused now rather than queued behind the others.
            logger.warning("client metadata document %s not fetched: too many fetches in progress", url)
            return cached[1] if cached is not None else None
        try:
            client = await self._fetch_document(url)
        finally:
            self._fetching.release()
        if client is None and cached is not None and cached[1] is not None:
            return cached[1]  # a failed refetch doesn't lock out a client whose document was good
        keep = DOCUMENT_CACHE_SECONDS if client is not None else REFUSAL_CACHE_SECONDS
        self._documents[url] = (self._clock() + keep, client)
        self._documents.move_to_end(url)
        while len(self._documents) > MAX_CACHED_DOCUMENTS:
            self._documents.popitem(last=False)
        return client

    async def _fetch_document(self, url: str) -> OAuthClientInformationFull | None:
        try:
            body = await self._fetcher.fetch(url, "client metadata document", lambda _head: MAX_DOCUMENT_BYTES)
            document: Any = json.loads(body)
        except XError as exc:
            logger.warning("client metadata document %s refused: %s", url, exc.message)
            return None
        except ValueError:
            logger.warning("client metadata document %s is not JSON", url)
            return None
        if not isinstance(document, dict) or document.get("client_id") != url:
            logger.warning("client metadata document %s does not name itself as its client_id", url)
            return None
        if document.get("client_secret") or document.get("token_endpoint_auth_method", "none") != "none":
            logger.warning("client metadata document %s asks for a client secret; CIMD clients are public", url)
            return None
        try:
            return OAuthClientInformationFull.model_validate({**document, "token_endpoint_auth_method": "none"})
        except ValidationError as exc:
            logger.warning("client metadata document %s is invalid: %s", url, exc.error_count())
            return None
