"""Remote media: the SSRF rules, and fetching from a real loopback server the test starts and allows.

Every refusal must happen before any connection or file read: refused URLs go through a client
whose transport records every request, or to the loopback server, which records what it saw.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from xcourier.tools.errors import InvalidInputError
from xcourier.tools.fetch import forbidden_kind, literal_address
from xcourier.tools.media import MAX_GIF_BYTES, MAX_IMAGE_BYTES, FileVideo, MediaLoader
from xcourier.tools.models import FileEntry

from .captured import PNG

pytestmark = pytest.mark.anyio

CHUNK = 64 * 1024
FAKE_DNS = {"images.example": "127.0.0.1", "localhost": "127.0.0.1", "cdn.example": "93.184.216.34"}
GIF_BODY = b"GIF89a\x01\x00\x01\x00\x00\x00\x00" + b"\x00" * (6 * 1024 * 1024)  # 6 MB: fine for a GIF
# An ISO base media file (ftyp box, major brand isom) of 20 MB: over the GIF cap, fine for a video.
VIDEO_BODY = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41" + b"\x07" * (20 * 1024 * 1024)


async def fake_resolve(host: str, port: int) -> Sequence[str]:
    """DNS for the tests: no real lookups, names map to addresses the test controls."""
    if host not in FAKE_DNS:
        raise OSError(f"unknown host {host}")
    return [FAKE_DNS[host]]


class ImageServer:
    """A loopback HTTP server serving test images; records every request path and Host header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.accepts: list[str] = []  # the Accept header of each request
        self.streamed = 0  # bytes /endless.png managed to write before the client hung up
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                server.accepts.append(self.headers.get("Accept", ""))
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        if path == "/cat.png":
            self._send(h, PNG)
        elif path == "/anim.gif":
            self._send(h, GIF_BODY, "image/gif")
        elif path == "/clip.mp4":
            self._send(h, VIDEO_BODY, "video/mp4")
        elif path == "/huge.mp4":  # declares 513 MB, sends one chunk
            h.send_response(200)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(513 * 1024 * 1024))
            h.end_headers()
            with contextlib.suppress(OSError):
                h.wfile.write(VIDEO_BODY[:CHUNK])
        elif path == "/six.png":
            self._send(h, PNG + b"\x00" * (6 * 1024 * 1024))  # declares its 6 MB length
        elif path == "/endless.png":
            self._endless(h)
        elif path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self._send(h, PNG)
            else:
                self._redirect(h, f"/hop/{left - 1}")
        elif path.startswith("/redirect?to="):
            self._redirect(h, path.split("=", 1)[1])
        elif path == "/slow.png":
            self.release.wait(10)
            self._send(h, PNG)
        else:
            h.send_error(404)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, body: bytes, content_type: str = "image/png") -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        with contextlib.suppress(OSError):  # a client that stopped reading may hang up
            h.wfile.write(body)

    @staticmethod
    def _redirect(h: BaseHTTPRequestHandler, location: str) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _endless(self, h: BaseHTTPRequestHandler) -> None:
        """50 MB with no Content-Length: only the client's own cap can stop it."""
        h.protocol_version = "HTTP/1.0"
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Connection", "close")
        h.end_headers()
        body = PNG + b"\x00" * (CHUNK - len(PNG))
        try:
            for _ in range(50 * 1024 * 1024 // CHUNK):
                h.wfile.write(body)
                self.streamed += len(body)
                body = b"\x00" * CHUNK
        except OSError:
            pass  # the client hung up, as it should


@pytest.fixture
def server() -> Iterator[ImageServer]:
    image_server = ImageServer()
    image_server.thread.start()
    yield image_server
    image_server.release.set()
    image_server.httpd.shutdown()
    image_server.httpd.server_close()


class CountingTransport(httpx.AsyncBaseTransport):
    """A real transport that counts the body bytes the client actually received."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.received = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        transport = self
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)

        class Counting(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in stream:
                    transport.received += len(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await stream.aclose()

        return httpx.Response(
            response.status_code, headers=response.headers, stream=Counting(), extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class Recorder:
    """An httpx client whose transport records requests and answers 200 with a PNG."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.http = httpx.AsyncClient(transport=httpx.MockTransport(self._answer))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    yield rec
    await rec.http.aclose()


async def refused(loader: MediaLoader, url: str, name: str = "pic.png") -> str:
    with pytest.raises(InvalidInputError) as info:
        await loader.load(FileEntry(name=name, url=url), 0)
    assert info.value.status is None  # raised locally
    message = str(info.value)
    assert name in message  # says which attachment
    return message


SSRF_TABLE = [
    pytest.param("http://127.0.0.1/cat.png", "127.0.0.1", "loopback address 127.0.0.1", id="loopback-v4"),
    pytest.param("http://127.8.9.10/cat.png", "127.8.9.10", "loopback address 127.8.9.10", id="loopback-v4-range"),
    pytest.param("http://localhost/cat.png", "localhost", "resolves to a loopback address 127.0.0.1", id="localhost"),
    pytest.param("http://10.0.0.5/cat.png", "10.0.0.5", "private address 10.0.0.5", id="10/8"),
    pytest.param("http://172.16.4.2/cat.png", "172.16.4.2", "private address 172.16.4.2", id="172.16/12"),
    pytest.param("http://192.168.1.1/cat.png", "192.168.1.1", "private address 192.168.1.1", id="192.168/16"),
    pytest.param(
        "http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local address", id="cloud-metadata"
    ),
    pytest.param("http://0.0.0.0/cat.png", "0.0.0.0", "unspecified address", id="unspecified-v4"),
    pytest.param("http://224.0.0.1/cat.png", "224.0.0.1", "multicast address", id="multicast-v4"),
    pytest.param("http://100.64.0.1/cat.png", "100.64.0.1", "non-public address", id="shared-cgnat"),
    pytest.param("http://[::1]/cat.png", "::1", "loopback address ::1", id="loopback-v6"),
    pytest.param("http://[fc00::1]/cat.png", "fc00::1", "private address fc00::1", id="unique-local-v6"),
    pytest.param("http://[fe80::1]/cat.png", "fe80::1", "link-local address", id="link-local-v6"),
    pytest.param("http://[ff02::1]/cat.png", "ff02::1", "multicast address", id="multicast-v6"),
    pytest.param("http://[::]/cat.png", "::", "unspecified address", id="unspecified-v6"),
    pytest.param(
        "http://[::ffff:127.0.0.1]/cat.png", "::ffff:127.0.0.1", "loopback address", id="ipv4-mapped-loopback"
    ),
    pytest.param("http://[::ffff:a00:5]/cat.png", "::ffff:a00:5", "private address", id="ipv4-mapped-private-hex"),
    pytest.param("http://[64:ff9b::7f00:1]/cat.png", "64:ff9b::7f00:1", "loopback address", id="nat64-loopback"),
    pytest.param("http://[2002:7f00:1::1]/cat.png", "2002:7f00:1::1", "loopback address", id="6to4-loopback"),
    pytest.param("http://2130706433/cat.png", "2130706433", "loopback address 127.0.0.1", id="decimal-ip"),
    pytest.param("http://0x7f000001/cat.png", "0x7f000001", "loopback address 127.0.0.1", id="hex-ip"),
    pytest.param("http://0x7f.0.0.1/cat.png", "0x7f.0.0.1", "loopback address 127.0.0.1", id="hex-dotted-ip"),
    pytest.param("http://127.1/cat.png", "127.1", "loopback address 127.0.0.1", id="short-ip"),
    pytest.param("http://images.example/cat.png", "images.example", "resolves to a loopback", id="name-to-loopback"),
]


@pytest.mark.parametrize(("url", "host", "reason"), SSRF_TABLE)
async def test_internal_addresses_are_refused_before_any_request(recorder: Recorder, url, host, reason):
    loader = MediaLoader(http=recorder.http, resolve=fake_resolve)

    message = await refused(loader, url)

    assert reason in message
    assert host in message  # names the URL's host
    assert "Only public internet addresses" in message
    assert recorder.requests == []


async def test_a_name_resolving_to_public_and_private_addresses_is_refused(recorder: Recorder):
    async def both(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "10.1.2.3"]

    message = await refused(MediaLoader(http=recorder.http, resolve=both), "https://cdn.example/cat.png")

    assert "resolves to a private address 10.1.2.3" in message
    assert recorder.requests == []


async def test_an_unresolvable_host_is_refused(recorder: Recorder):
    message = await refused(MediaLoader(http=recorder.http, resolve=fake_resolve), "https://nowhere.example/a.png")

    assert "nowhere.example could not be resolved" in message
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # httpx itself refuses dotted octal as an invalid IPv4 address: refused before any lookup.
        pytest.param("http://0177.0.0.1/cat.png", "not a valid URL", id="octal-ip"),
        pytest.param("http://user:secret@cdn.example/cat.png", "credentials", id="userinfo"),
        pytest.param("ftp://cdn.example/cat.png", "unsupported URL scheme 'ftp'", id="ftp"),
        pytest.param("gopher://cdn.example/cat.png", "unsupported URL scheme 'gopher'", id="gopher"),
    ],
)
async def test_urls_with_credentials_or_other_schemes_are_refused(recorder: Recorder, url, expected):
    message = await refused(MediaLoader(http=recorder.http, resolve=fake_resolve), url)

    assert expected in message
    assert recorder.requests == []


async def test_the_connection_is_pinned_to_the_checked_address(recorder: Recorder):
    loader = MediaLoader(http=recorder.http, resolve=fake_resolve)

    image = await loader.load(FileEntry(url="https://cdn.example/img/cat.png?size=large"), 0)

    assert image.content == PNG
    (request,) = recorder.requests
    assert request.url.host == "93.184.216.34"  # connects to the address it checked, no second lookup
    assert request.url.path == "/img/cat.png" and request.url.query == b"size=large"
    assert request.headers["host"] == "cdn.example"  # the server still sees the name
    assert request.extensions["sni_hostname"] == "cdn.example"  # and TLS verifies the certificate for it
    assert request.headers["accept-encoding"] == "identity"


def test_numeric_hosts_are_read_as_inet_aton_does():
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0x7f.1")) == "127.0.0.1"
    assert str(literal_address("[::1]")) == "::1"
    assert literal_address("cdn.example") is None
    assert literal_address("deadbeef") is None  # a name, not hex without its 0x
    assert forbidden_kind(literal_address("93.184.216.34")) is None  # type: ignore[arg-type]


# ---- a real loopback server ---------------------------------------------------------------------


async def test_image_from_an_allowed_loopback_server_is_loaded(server: ImageServer):
    loader = MediaLoader(allowed_hosts={"127.0.0.1"})

    image = await loader.load(FileEntry(url=server.url("/cat.png")), 0)

    assert image.content == PNG
    assert image.mime_type == "image/png"
    assert server.requests == [("/cat.png", f"127.0.0.1:{server.port}")]


async def test_allowed_host_names_are_exact(server: ImageServer):
    """Allowing 127.0.0.1 does not allow other spellings or names of the same address."""
    loader = MediaLoader(allowed_hosts={"127.0.0.1"}, resolve=fake_resolve)

    for host in ("localhost", "2130706433", "127.0.0.2", "[::ffff:127.0.0.1]"):
        message = await refused(loader, server.url("/cat.png", host))
        assert "loopback address" in message

    assert server.requests == []


async def test_allowed_name_connects_to_its_resolved_address_with_its_host_header(server: ImageServer):
    loader = MediaLoader(allowed_hosts={"images.example"}, resolve=fake_resolve)

    image = await loader.load(FileEntry(url=server.url("/cat.png", "images.example")), 0)

    assert image.content == PNG
    assert server.requests == [("/cat.png", f"images.example:{server.port}")]


async def test_loopback_server_is_refused_unless_allowed(server: ImageServer):
    message = await refused(MediaLoader(), server.url("/cat.png"))

    assert "loopback address 127.0.0.1" in message
    assert server.requests == []


async def test_redirect_from_an_allowed_host_to_loopback_is_refused(server: ImageServer):
    loader = MediaLoader(allowed_hosts={"images.example"}, resolve=fake_resolve)
    start = server.url(f"/redirect?to=http://localhost:{server.port}/cat.png", "images.example")

    message = await refused(loader, start)

    assert "localhost" in message and "resolves to a loopback address 127.0.0.1" in message
    assert server.paths == [f"/redirect?to=http://localhost:{server.port}/cat.png"]  # the target never asked


async def test_redirect_to_an_ip_literal_is_checked_too(server: ImageServer):
    loader = MediaLoader(allowed_hosts={"images.example"}, resolve=fake_resolve)

    message = await refused(loader, server.url("/redirect?to=http://169.254.169.254/latest/", "images.example"))

    assert "link-local address 169.254.169.254" in message
    assert len(server.requests) == 1


async def test_redirect_to_a_file_url_is_refused(server: ImageServer):
    loader = MediaLoader(allowed_hosts={"127.0.0.1"})

    message = await refused(loader, server.url("/redirect?to=file:///etc/passwd"))

    assert "only http and https" in message


async def test_three_redirects_are_followed(server: ImageServer):
    image = await MediaLoader(allowed_hosts={"127.0.0.1"}).load(FileEntry(url=server.url("/hop/3")), 0)

    assert image.content == PNG
    assert server.paths == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]


async def test_a_fourth_redirect_is_refused(server: ImageServer):
    message = await refused(MediaLoader(allowed_hosts={"127.0.0.1"}), server.url("/hop/4"))

    assert "more than 3 redirects" in message
    assert "127.0.0.1" in message
    assert server.paths == ["/hop/4", "/hop/3", "/hop/2", "/hop/1"]  # /hop/0 never requested


async def test_an_image_declaring_6mb_is_refused_before_its_body_is_read(server: ImageServer):
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        message = await refused(MediaLoader(allowed_hosts={"127.0.0.1"}, http=http), server.url("/six.png"))

    assert "over 5 MB" in message
    assert "6.0 MB" in message
    assert transport.received <= 2 * CHUNK


async def test_an_endless_image_is_cut_off_just_past_5mb(server: ImageServer):
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        message = await refused(MediaLoader(allowed_hosts={"127.0.0.1"}, http=http), server.url("/endless.png"))

    assert "over 5 MB" in message
    assert MAX_IMAGE_BYTES < transport.received <= MAX_IMAGE_BYTES + 2 * CHUNK
    assert server.streamed < 50 * 1024 * 1024  # the server could not push it all


async def test_a_gif_gets_the_15mb_cap_not_the_image_cap(server: ImageServer):
    image = await MediaLoader(allowed_hosts={"127.0.0.1"}).load(FileEntry(url=server.url("/anim.gif")), 0)

    assert image.mime_type == "image/gif"
    assert MAX_IMAGE_BYTES < len(image.content) <= MAX_GIF_BYTES


async def test_a_video_url_is_streamed_into_a_temporary_file_under_the_512mb_cap(server: ImageServer):
    video = await MediaLoader(allowed_hosts={"127.0.0.1"}).load(FileEntry(url=server.url("/clip.mp4")), 0)

    assert video.mime_type == "video/mp4"
    assert video.content == b"" and isinstance(video.source, FileVideo)  # not held in memory
    assert video.size == len(VIDEO_BODY)
    assert await video.source.read(len(VIDEO_BODY) - 5, 5) == VIDEO_BODY[-5:]
    assert "video/mp4" in server.accepts[-1]
    video.close()


async def test_a_video_declaring_513mb_is_refused_before_its_body_is_read(server: ImageServer):
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        message = await refused(MediaLoader(allowed_hosts={"127.0.0.1"}, http=http), server.url("/huge.mp4"))

    assert "513.0 MB, over 512 MB" in message
    assert transport.received <= 2 * CHUNK


async def test_a_slow_server_hits_the_timeout(server: ImageServer):
    loader = MediaLoader(allowed_hosts={"127.0.0.1"}, fetch_timeout=0.2)

    message = await refused(loader, server.url("/slow.png"))

    assert "did not deliver the file within 0.2 s" in message


async def test_an_http_error_is_reported_with_the_host(server: ImageServer):
    message = await refused(MediaLoader(allowed_hosts={"127.0.0.1"}), server.url("/missing.png"))

    assert "127.0.0.1 answered HTTP 404" in message


# ---- local files --------------------------------------------------------------------------------


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every Path.open call, so a test can assert that no file was read."""
    calls: list[Path] = []
    original = Path.open

    def recording(self: Path, *args: object, **kwargs: object) -> object:
        calls.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", recording)
    return calls


async def test_etc_passwd_outside_the_media_roots_is_refused_unread(media_root: Path, opened: list[Path]):
    message = await refused(MediaLoader(roots=[media_root]), "file:///etc/passwd")

    assert "outside the allowed media directories" in message
    assert opened == []


async def test_symlink_escaping_a_media_root_is_refused_unread(media_root: Path, tmp_path: Path, opened: list[Path]):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    os.symlink(secret, media_root / "innocent.png")
    opened.clear()  # the setup's own writes

    message = await refused(MediaLoader(roots=[media_root]), str(media_root / "innocent.png"))

    assert "outside the allowed media directories" in message
    assert opened == []


async def test_symlinked_directory_escaping_a_media_root_is_refused_unread(
    media_root: Path, tmp_path: Path, opened: list[Path]
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cat.png").write_bytes(PNG)
    os.symlink(outside, media_root / "linked")
    opened.clear()  # the setup's own writes

    message = await refused(MediaLoader(roots=[media_root]), (media_root / "linked" / "cat.png").as_uri())

    assert "outside the allowed media directories" in message
    assert opened == []
