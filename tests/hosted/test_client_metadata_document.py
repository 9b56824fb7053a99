"""Client ID Metadata Documents: an MCP client whose client_id is the https URL of its metadata.

The document is served over real TLS on loopback (a certificate made here, trusted only by the
hosted server's fetch client), and the hosted server runs in-process so that it can be handed
that client and allowed to fetch from 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .conftest import STORE_KEY
from .signin import REDIRECT_URI, Browser, session, sign_in
from .test_auth_errors import hosted_in_process, hosted_settings, refresh
from .test_sign_in import author_of, consent_as

pytestmark = pytest.mark.anyio


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xcourier tests")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@dataclass
class DocumentServer:
    """Client metadata documents at https://127.0.0.1:<port>/clients/<name>.json."""

    port: int
    cert_file: Path
    documents: dict[str, dict] = field(default_factory=dict)  # path -> JSON document
    requested: list[str] = field(default_factory=list)  # paths, in order

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}/clients/{name}.json"

    def publish(self, url: str, document: dict) -> None:
        self.documents[urlsplit(url).path] = document

    async def serve(self, request: Request) -> Response:
        self.requested.append(request.url.path)
        document = self.documents.get(request.url.path)
        return JSONResponse(document) if document is not None else Response(status_code=404)

    def trusting_client(self) -> httpx.AsyncClient:
        """What the hosted server fetches documents with: trusts this server's certificate only."""
        return httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(self.cert_file)), trust_env=False)


def document_for(url: str, *, client_id: str | None = None) -> dict:
    return {
        "client_id": client_id or url,
        "client_name": "xcourier tests (CIMD)",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


@pytest.fixture
def documents(tmp_path: Path) -> Iterator[DocumentServer]:
    cert_file, key_file = make_certificate(tmp_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Listening before the thread starts: connections wait in the backlog until uvicorn accepts them.
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server_state = DocumentServer(port=sock.getsockname()[1], cert_file=cert_file)
    app = Starlette(routes=[Route("/clients/{name}", server_state.serve, methods=["GET"])])
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        lifespan="off",
        log_level="warning",
        access_log=False,
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="cimd-documents", daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        assert not thread.is_alive(), "the document server did not stop"


class SignInRefused(Exception):
    pass


class RecordingBrowser(Browser):
    """Stops at xcourier's answer to /authorize, whatever it is, and ends the sign-in there."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: httpx.Response | None = None

    async def open(self, url: str) -> None:
        self.visited.append(url)
        async with httpx.AsyncClient(follow_redirects=False, timeout=20, trust_env=False) as http:
            self.answer = await http.get(url)

    async def code(self):  # type: ignore[override]
        raise SignInRefused(self.answer.text if self.answer is not None else "no answer")


def client_id_in(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["client_id"][0]


async def attempt_refused_sign_in(mcp_url: str, client_metadata_url: str) -> RecordingBrowser:
    browser = RecordingBrowser()
    with pytest.RaisesGroup(SignInRefused, allow_unwrapped=True, flatten_subgroups=True):
        await sign_in(mcp_url, client_metadata_url=client_metadata_url, browser=browser)
    assert browser.visited and client_id_in(browser.visited[0]) == client_metadata_url
    return browser


async def test_a_client_named_by_its_metadata_document_signs_in_and_acts(
    documents, sandbox, admin, hosted_store, monkeypatch
):
    monkeypatch.setenv("XCOURIER_STORE_KEY", STORE_KEY)
    url = documents.url("xcourier-tests")
    documents.publish(url, document_for(url))
    settings = hosted_settings(sandbox.base_url, hosted_store, client_metadata_allowed_hosts=("127.0.0.1",))
    async with (
        documents.trusting_client() as fetch_client,
        hosted_in_process(settings, fetch_client=fetch_client) as server,
    ):
        consent_as(admin, "alice")
        signed = await sign_in(server.url, client_metadata_url=url)

        # No registration: the URL was the client id from the first request on.
        assert signed.client.client_id == url
        assert client_id_in(signed.browser.visited[0]) == url
        assert "/clients/xcourier-tests.json" in documents.requested
        async with session(server.url, signed.tokens.access_token, mode="legacy") as client:
            result = await client.call_tool("createPost", {"text": "hello from a CIMD client"})
        assert not result.is_error, result
        assert author_of(sandbox, result.structured_content["data"]["id"]) == "alice"

        # The token endpoint knows the client by its document too.
        assert signed.tokens.refresh_token
        refreshed = await refresh(server.origin, signed.client, signed.tokens.refresh_token)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["access_token"] != signed.tokens.access_token


async def test_a_document_that_names_another_client_is_refused(documents, sandbox, hosted_store, monkeypatch, caplog):
    monkeypatch.setenv("XCOURIER_STORE_KEY", STORE_KEY)
    url = documents.url("impostor")
    # Reachable and well-formed, but it claims to be another client's document.
    documents.publish(url, document_for(url, client_id=documents.url("someone-else")))
    settings = hosted_settings(sandbox.base_url, hosted_store, client_metadata_allowed_hosts=("127.0.0.1",))
    async with (
        documents.trusting_client() as fetch_client,
        hosted_in_process(settings, fetch_client=fetch_client) as server,
    ):
        browser = await attempt_refused_sign_in(server.url, url)

    assert browser.answer is not None
    assert browser.answer.status_code == 400, browser.answer.text
    assert browser.answer.json()["error"] == "invalid_request"
    assert "/clients/impostor.json" in documents.requested  # fetched, then refused for what it says
    assert f"client metadata document {url} does not name itself as its client_id" in caplog.text
    assert not any("/i/oauth2/authorize" in visited for visited in browser.visited)  # X never saw it


async def test_a_document_on_a_private_host_that_is_not_allowed_is_not_fetched(
    documents, sandbox, hosted_store, monkeypatch, caplog
):
    monkeypatch.setenv("XCOURIER_STORE_KEY", STORE_KEY)
    # The same loopback server under the name localhost, while only 127.0.0.1 is allowed.
    local = documents.url("local", host="localhost")
    documents.publish(local, document_for(local))
    settings = hosted_settings(sandbox.base_url, hosted_store, client_metadata_allowed_hosts=("127.0.0.1",))
    async with (
        documents.trusting_client() as fetch_client,
        hosted_in_process(settings, fetch_client=fetch_client) as server,
    ):
        browser = await attempt_refused_sign_in(server.url, local)
    assert browser.answer is not None
    assert browser.answer.status_code == 400, browser.answer.text
    assert browser.answer.json()["error"] == "invalid_request"
    assert "refused to fetch from localhost: it resolves to a loopback address" in caplog.text

    # With no host allowed, 127.0.0.1 is refused the same way.
    loopback = documents.url("loopback")
    documents.publish(loopback, document_for(loopback))
    async with (
        documents.trusting_client() as fetch_client,
        hosted_in_process(hosted_settings(sandbox.base_url, hosted_store), fetch_client=fetch_client) as server,
    ):
        browser = await attempt_refused_sign_in(server.url, loopback)
    assert browser.answer is not None and browser.answer.status_code == 400
    assert "refused to fetch from 127.0.0.1: it is a loopback address" in caplog.text

    assert documents.requested == []  # neither was fetched: refused before any connection
