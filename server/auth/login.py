"""`xcourier auth login`: authorization code with PKCE, answered on a one-shot loopback callback."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
from anyio.abc import SocketStream

from xcourier.tools.client import StaticTokenProvider, XClient
from xcourier.tools.errors import XError
from xcourier.tools.models import User
from xcourier.tools.users import UserDirectory

from . import oauth
from .store import TokenStore
from .tokenset import TokenSet

logger = logging.getLogger("xcourier.auth")

KNOWN_SCOPES = frozenset(
    (
        "tweet.read tweet.write tweet.moderate.write users.read follows.read follows.write offline.access "
        "space.read mute.read mute.write like.read like.write list.read list.write block.read block.write "
        "bookmark.read bookmark.write dm.read dm.write media.write"
    ).split()
)
CALLBACK_PATH = "/callback"
_MAX_REQUEST_HEAD = 16 * 1024

_PAGE = (
    "<!doctype html><meta charset=utf-8><title>xcourier</title>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body>"
)


class LoginError(Exception):
    """The login did not complete; nothing was stored. The message says what to do."""


@dataclass(frozen=True)
class Callback:
    params: dict[str, str]


def check_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise LoginError(f"Unknown X OAuth scope(s): {' '.join(unknown)}. Known: {' '.join(sorted(KNOWN_SCOPES))}.")
    if not scopes:
        raise LoginError("No scopes given; the default set is: " + " ".join(oauth.DEFAULT_SCOPES))
    return scopes


class CallbackServer:
    """Listens on 127.0.0.1 only, for the single redirect that ends the login."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._result: Callback | None = None
        self._done = anyio.Event()
        # Set once the authorization exists; only a redirect carrying it ends the wait, so any
        # web page poking at 127.0.0.1:PORT/callback can't break the login.
        self.expected_state: str | None = None

    async def listen(self) -> Any:
        """Bind the callback port, before any task group: a busy port is one LoginError, not a group."""
        from anyio.abc import SocketAttribute

        try:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self._port)
        except OSError as exc:
            raise LoginError(
                f"Can't listen on 127.0.0.1:{self._port} for X's callback ({exc.strerror}). Stop what is "
                "listening there, or pick another port with --port and register "
                "http://127.0.0.1:PORT/callback in the X app."
            ) from None
        self._port = listener.extra(SocketAttribute.local_port)
        return listener

    async def serve(self, listener: Any, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        async with listener:
            task_status.started(self._port)
            await listener.serve(self._handle)

    async def wait(self) -> Callback:
        await self._done.wait()
        assert self._result is not None
        return self._result

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            head = b""
            with anyio.move_on_after(10):
                while b"\r\n\r\n" not in head and len(head) < _MAX_REQUEST_HEAD:
                    chunk = await stream.receive(4096)
                    if not chunk:
                        break
                    head += chunk
            status, title, text = self._respond(head)
            body = _PAGE.format(title=title, text=text).encode()
            await stream.send(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\nCache-Control: no-store\r\n\r\n".encode()
                + body
            )

    def _respond(self, head: bytes) -> tuple[str, str, str]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ") if lines else []
        if len(parts) != 3 or parts[0] != "GET":
            return "400 Bad Request", "Bad request", "This address only answers X's login redirect."
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        # Refuse any other Host: a web page can't reach this server through DNS rebinding.
        if headers.get("host") not in (f"127.0.0.1:{self._port}", f"localhost:{self._port}"):
            return "403 Forbidden", "Forbidden", "Wrong host."
        target = urlsplit(parts[1])
        if target.path != CALLBACK_PATH or self._done.is_set():
            return "404 Not Found", "Not found", "Nothing here."
        params = dict(parse_qsl(target.query))
        if self.expected_state is None or not hmac.compare_digest(params.get("state", ""), self.expected_state):
            logger.warning("ignored a callback whose state does not match this login")
            return "400 Bad Request", "Not this login", "This callback does not belong to the login in progress."
        self._result = Callback(params=params)
        self._done.set()
        if "error" in self._result.params:
            return "200 OK", "Login not completed", "X did not grant access. You can close this tab."
        return "200 OK", "Logged in", "xcourier received X's answer. You can close this tab."


async def login(
    app: oauth.OAuthApp,
    scopes: tuple[str, ...],
    store: TokenStore,
    *,
    port: int = 8765,
    timeout: float = 300.0,
    show_url: Callable[[str], None],
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Run the whole flow; returns the stored TokenSet. Raises LoginError with what to do."""
    check_scopes(scopes)
    server = CallbackServer(port)
    listener = await server.listen()
    async with anyio.create_task_group() as tasks:
        bound_port = await tasks.start(server.serve, listener)
        redirect_uri = f"http://127.0.0.1:{bound_port}{CALLBACK_PATH}"
        authorization = oauth.start_authorization(app, redirect_uri, scopes)
        server.expected_state = authorization.state
        show_url(authorization.url)
        with anyio.move_on_after(timeout) as waited:
            callback = await server.wait()
        tasks.cancel_scope.cancel()
    if waited.cancelled_caught:
        raise LoginError(
            f"Login timed out: no answer from X's authorize page within {timeout:.0f} s. "
            "Run `xcourier auth login` again and approve the app in the browser."
        )
    params = callback.params  # its state matched: CallbackServer accepts nothing else
    if "error" in params:
        reason = params.get("error_description") or params["error"]
        raise LoginError(f"X did not grant access ({reason}). Run login again and approve the app.")
    code = params.get("code")
    if not code:
        raise LoginError("X's callback carried no authorization code. Run login again.")
    started = clock()
    try:
        token = await oauth.exchange_code(app, authorization, code)
    except oauth.GrantRejected as exc:
        raise LoginError(
            f"X refused the authorization code ({exc}). Codes live 30 seconds and work once; run login again."
        ) from None
    except oauth.OAuthUnavailable as exc:
        raise LoginError(
            f"Could not reach X's token endpoint ({exc}). Check the network and run login again."
        ) from None
    tokens = await signed_in(app, token, scopes, started=started, now=clock())
    await store.save(tokens)
    logger.info("logged in as @%s", tokens.username)
    return tokens


async def signed_in(
    app: oauth.OAuthApp, token: Mapping[str, Any], scopes: tuple[str, ...], *, started: float, now: float
) -> TokenSet:
    """The login a granted token response makes: X is asked whose it is. Raises LoginError."""
    access_token = str(token["access_token"])
    user = await _who_am_i(app.api_base_url, access_token)
    return TokenSet(
        user_id=user.id,
        username=user.username,
        scopes=oauth.granted_scopes(token, scopes),
        expires_at=oauth.expiry(token, started),
        api_base_url=app.api_base_url,
        client_id=app.client_id,
        access_token=access_token,
        refresh_token=token.get("refresh_token"),
        client_secret=app.client_secret,
        logged_in_at=now,
    )


async def _who_am_i(api_base_url: str, access_token: str) -> User:
    client = XClient(StaticTokenProvider(access_token), base_url=api_base_url)
    try:
        return await UserDirectory(client).me()
    except XError as exc:
        raise LoginError(f"Logged in, but X's /2/users/me failed: {exc.message}") from None
    finally:
        await client.aclose()
