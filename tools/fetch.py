"""Fetching media from the web without letting a URL reach inside the network (SSRF rules).

A FILE_ENTRY url comes from an agent, and an agent's input can come from a prompt injection, so
a URL is treated as hostile:

- only http and https, and no credentials in the URL;
- the host is resolved here and every address it resolves to must be a public one: loopback,
  private, link-local, multicast, reserved, unspecified and other non-global addresses are
  refused, IPv4 and IPv6, with IPv4 addresses embedded in IPv6 (mapped, 6to4, Teredo, NAT64)
  unwrapped first, and numeric hosts read with inet_aton rules (http://2130706433/ is 127.0.0.1);
- the connection goes to the address that was checked (the URL is rewritten to the IP, the Host
  header and TLS SNI keep the name), so DNS cannot answer differently a second time (rebinding);
- redirects are followed by hand, at most MAX_REDIRECTS, each target checked like the first URL;
- the body is streamed and reading stops as soon as it passes the size cap; one timeout covers
  the whole fetch, redirects included, stretched for a large cap (a video) to what the cap takes
  at MIN_FETCH_RATE, so a 512 MB video is not cut off at 20 s yet a stalled host still ends.

An operator may name hosts in `allowed_hosts` (exact names, e.g. an intranet image server, or
127.0.0.1 in tests): those skip the address check, nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Protocol

import anyio
import httpx

from .errors import InvalidInputError

MAX_REDIRECTS = 3
DEFAULT_FETCH_TIMEOUT = 20.0  # seconds for the whole fetch, redirects included
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "image/*, video/mp4, video/quicktime"
_MB = 1024 * 1024
# The slowest delivery a large file is given time for: the fetch may last cap / MIN_FETCH_RATE
# seconds when that is longer than the timeout (512 MB at 1 MB/s: about 8.5 minutes).
MIN_FETCH_RATE = 1 * _MB

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host, port -> the addresses the name resolves to, as strings. Injectable so tests can map a
# public-looking name to an address they control without touching real DNS.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Decides the size cap once the first bytes are in: the caller knows which types have which limit.
SizeCap = Callable[[bytes], int]


class Sink(Protocol):
    """Where a streamed body goes, chunk by chunk: memory for images, a temporary file for a video."""

    async def write(self, chunk: bytes) -> None: ...


# Enough bytes to recognise every supported type by its magic number (WEBP needs 12).
SNIFF_BYTES = 16

# Hosts made only of digits, dots and hex markers are IP literals in the forms inet_aton accepts
# (decimal 2130706433, hex 0x7f000001, octal 0177.0.0.1, short 127.1); browsers read them so too.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}\.?$", re.IGNORECASE)

# NAT64 well-known prefix: 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver, off the event loop (anyio runs getaddrinfo in a worker thread)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, or None for a name that needs DNS."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, where packets would really go."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is the one traffic reaches
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_kind(address: IPAddress) -> str | None:
    """Why an address must not be fetched from ("a loopback address"), or None for a public one."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return forbidden_kind(inner)
    # Order matters for the message only: the most specific reason first.
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        # What remains non-global: shared address space (100.64/10), benchmarking, documentation.
        ("non-public", not address.is_global),
    )
    for kind, hit in checks:
        if hit:
            return kind
    return None


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class UnreachableError(InvalidInputError):
    """The host did not deliver (timeout, connection refused or reset, TLS): worth not asking again soon."""


class RemoteFetcher:
    """GETs one http(s) URL under the rules above; every refusal is an InvalidInputError."""

    def __init__(
        self,
        *,
        allowed_hosts: Collection[str] = (),
        http: httpx.AsyncClient | None = None,
        resolve: Resolver = system_resolve,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.allowed_hosts = frozenset(h.strip().strip("[]").lower() for h in allowed_hosts if h.strip())
        self._http = http
        self._resolve = resolve
        self.timeout = timeout
        self.max_redirects = max_redirects

    async def fetch(self, url: str, label: str, cap: SizeCap) -> bytes:
        """The body of `url`, at most `cap(first bytes)` bytes long."""
        sink = _MemorySink()
        await self.fetch_into(url, label, cap, sink)
        return b"".join(sink.chunks)

    async def fetch_into(self, url: str, label: str, cap: SizeCap, sink: Sink) -> int:
        """Stream the body of `url` into `sink`, at most `cap(first bytes)` bytes; returns its size.

        Nothing larger than the cap is ever held: a declared Content-Length over it is refused
        before the body is read, and reading stops at the first byte past it.
        """
        first_host = _host_of(url)
        started = anyio.current_time()
        scope = anyio.CancelScope(deadline=started + self.timeout)

        def stretch(limit: int) -> None:
            # Once the cap is known, the fetch gets the time that many bytes take at MIN_FETCH_RATE.
            scope.deadline = max(scope.deadline, started + limit / MIN_FETCH_RATE)

        with scope:
            if self._http is not None:
                return await self._follow(self._http, url, label, cap, sink, stretch)
            # No shared client: a short-lived one that ignores proxy variables, since a proxy
            # would connect on our behalf to whatever the name means to it, undoing the pin.
            async with httpx.AsyncClient(trust_env=False, timeout=self.timeout) as http:
                return await self._follow(http, url, label, cap, sink, stretch)
        if scope.cancelled_caught:
            allowed = scope.deadline - started
            raise UnreachableError(
                f"{label}: {first_host} did not deliver the file within {allowed:g} s; "
                "try another URL or attach the file another way."
            )
        raise AssertionError("unreachable: the scope returns, raises or is cancelled")  # pragma: no cover

    async def _follow(
        self, http: httpx.AsyncClient, url: str, label: str, cap: SizeCap, sink: Sink, on_limit: Callable[[int], None]
    ) -> int:
        current = self._parse(url, label)
        for hop in range(self.max_redirects + 1):
            address = await self._checked_address(current, label)
            request = self._pinned_request(http, current, address)
            try:
                response = await http.send(request, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise UnreachableError(
                    f"{label}: could not fetch the file from {current.host} ({type(exc).__name__})."
                ) from None
            try:
                if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                    if hop == self.max_redirects:
                        raise InvalidInputError(
                            f"{label}: {current.host} led through more than {self.max_redirects} redirects; "
                            "refusing to follow further. Link the file itself."
                        )
                    # Relative to the URL as the user wrote it (the host name), not the pinned IP.
                    current = self._parse(str(current.join(response.headers["location"])), label)
                    continue
                if not response.is_success:
                    raise InvalidInputError(
                        f"{label}: {current.host} answered HTTP {response.status_code} for the media URL."
                    )
                return await _stream_capped(response, current.host, label, cap, sink, on_limit)
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _parse(self, url: str, label: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise InvalidInputError(f"{label}: {url!r} is not a valid URL.") from None
        if parsed.scheme not in ("http", "https"):
            raise InvalidInputError(
                f"{label}: {parsed.host or url}: only http and https URLs can be fetched, not {parsed.scheme!r}."
            )
        if not parsed.host:
            raise InvalidInputError(f"{label}: {url!r} has no host name.")
        if parsed.userinfo:
            raise InvalidInputError(
                f"{label}: {parsed.host}: URLs with credentials (user:password@) are not accepted; use a public URL."
            )
        return parsed

    async def _checked_address(self, url: httpx.URL, label: str) -> str:
        """The address to connect to, after checking every address the host resolves to."""
        host = url.host.lower()
        allowed = host in self.allowed_hosts
        literal = literal_address(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                resolved = await self._resolve(host, port)
            except OSError:
                raise InvalidInputError(f"{label}: the host {host} could not be resolved.") from None
            addresses = []
            for raw in resolved:
                try:
                    addresses.append(ipaddress.ip_address(raw.split("%", 1)[0]))
                except ValueError:
                    continue
            if not addresses:
                raise InvalidInputError(f"{label}: the host {host} could not be resolved.")
        if not allowed:
            # Every address, not just the first: the connection must not land on a bad one later.
            for address in addresses:
                kind = forbidden_kind(address)
                if kind is not None:
                    says = "is" if literal is not None else "resolves to"
                    raise InvalidInputError(
                        f"{label}: refused to fetch from {host}: it {says} {_article(kind)} {kind} address "
                        f"{address}. Only public internet addresses can be fetched; the operator can allow "
                        "a host by name in the server settings."
                    )
        return str(addresses[0])

    @staticmethod
    def _pinned_request(http: httpx.AsyncClient, url: httpx.URL, address: str) -> httpx.Request:
        host_header = url.netloc.decode("ascii")  # the name (and port) as the URL has them
        extensions: dict[str, object] = {}
        if url.scheme == "https" and literal_address(url.host) is None:
            # TLS still verifies the certificate against the name: SNI and hostname check use it.
            extensions["sni_hostname"] = url.host
        return http.build_request(
            "GET",
            url.copy_with(host=address),
            # identity: the cap counts the bytes that arrive; a compressed body could inflate far past it.
            headers={"Host": host_header, "Accept": _ACCEPT, "Accept-Encoding": "identity"},
            extensions=extensions,
        )


class _MemorySink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)


async def _stream_capped(
    response: httpx.Response, host: str, label: str, cap: SizeCap, sink: Sink, on_limit: Callable[[int], None]
) -> int:
    """Pass the body to `sink`, stopping as soon as it passes the cap the first bytes imply."""
    declared = response.headers.get("content-length")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise InvalidInputError(
            f"{label}: {host} sent the file {encoding}-compressed although it was asked not to; "
            "compressed bodies are refused because they could inflate past the size limit."
        )
    head = b""  # the first bytes, kept until the type (and so the cap) is known
    received = 0
    limit: int | None = None
    # Non-identity encodings are refused above, so these are the bytes as they arrived.
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if limit is None:
            head += chunk
            if len(head) < SNIFF_BYTES:
                continue
            limit = cap(head[:SNIFF_BYTES])
            on_limit(limit)
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _over_cap(label, host, limit, declared=int(declared))
            chunk, head = head, b""
        if received > limit:
            raise _over_cap(label, host, limit)
        await sink.write(chunk)
    if limit is None:  # a body shorter than SNIFF_BYTES
        if received > cap(head):
            raise _over_cap(label, host, cap(head))
        if head:
            await sink.write(head)
    return received


def _over_cap(label: str, host: str, limit: int, declared: int | None = None) -> InvalidInputError:
    size = f"{declared / _MB:.1f} MB" if declared is not None else f"more than {limit // _MB} MB"
    return InvalidInputError(
        f"{label}: the file at {host} is {size}, over {limit // _MB} MB, X's limit for this type "
        "(stopped reading); resize or recompress it."
    )


def _host_of(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except (httpx.InvalidURL, ValueError):
        return url
