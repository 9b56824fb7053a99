"""Serve a sandbox with uvicorn on a loopback socket, in a daemon thread."""

from __future__ import annotations

import ipaddress
import selectors
import socket
import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .config import SandboxConfig
from .plans import DEFAULT_PLAN, parse_plan
from .state import Sandbox, load_text_rules

if TYPE_CHECKING:
    import uvicorn

# uvicorn's default config sends the access log to stdout, which is the MCP stdio channel in the
# parent process; route everything to stderr instead.
_LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "xcourier-sandbox %(levelname)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        name: {"handlers": ["stderr"], "level": "WARNING", "propagate": False}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    },
}


def _loopback_address(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"sandbox host must be a loopback address, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"sandbox host must be a loopback address, got {host!r}")
    return host


# The server thread looks this often for a waiting client or an idle process (and for stop()).
_TICK = 0.02
# The process counts as idle when all its threads together used less than this share of one CPU over a
# tick: its other work is done or waiting (an MCP server between requests), so loading now takes
# nothing from it.
_IDLE_SHARE = 0.1


def _wait_for_a_client_or_idle(sock: socket.socket, stopping: threading.Event) -> bool:
    """Block (without the GIL) until a connection is waiting on `sock` or the process is idle; False on stop."""
    used = time.process_time()
    # A selector, not select.select: that refuses file descriptors past 1023 (a busy process's).
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while not stopping.is_set():
            if selector.select(_TICK):
                return True
            before, used = used, time.process_time()
            if used - before < _TICK * _IDLE_SHARE:
                return True
    return False


def _warm_up_when_idle(stopping: threading.Event, done: threading.Event) -> None:
    """Load twitter-text (~0.2 s of CPU) once the process is idle, so that the first post doesn't pay it.

    A post that arrives meanwhile waits for the import under way (Python's module lock), no longer."""
    used = time.process_time()
    while not stopping.wait(_TICK):
        before, used = used, time.process_time()
        if used - before < _TICK * _IDLE_SHARE:
            load_text_rules()
            done.set()
            return


def _build_server(sandbox: Sandbox) -> uvicorn.Server:
    import uvicorn  # here, in the server thread: ~10 ms (with h11) off the starting thread's path

    from .app import create_app

    config = uvicorn.Config(
        create_app(sandbox),
        log_level="warning",
        access_log=False,
        log_config=_LOG_CONFIG,
        lifespan="off",
        loop="asyncio",
    )
    config.load()
    return uvicorn.Server(config)


class SandboxServer:
    def __init__(
        self, sandbox: Sandbox | None = None, host: str = "127.0.0.1", port: int = 0, plan: str | None = None
    ) -> None:
        """`plan` (plans.PLANS) picks the X plan of a new sandbox; default pay-per-use."""
        if sandbox is not None and plan is not None:
            raise ValueError("give the plan in the Sandbox's SandboxConfig, not beside a Sandbox")
        self.sandbox = sandbox or Sandbox(SandboxConfig(plan=parse_plan(plan or DEFAULT_PLAN).name))
        self.host = _loopback_address(host)
        self.port = port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        # Set once the warm-up has loaded what the first post needs (the process went idle after start).
        self.warmed_up = threading.Event()
        self._stopping = threading.Event()
        # Orders stop() against the thread publishing its server: a stop never misses a server it must end.
        self._state_lock = threading.Lock()

    def start(self) -> SandboxServer:
        """Listen on the loopback socket and serve it from a daemon thread; raises OSError if it can't bind.

        The socket is bound and listening before this returns, so base_url works at once: connections
        wait in the backlog until the thread accepts them. The thread builds uvicorn and the app (and
        then loads what the first post needs) only once a client connects or the process has gone idle,
        so a process that starts a sandbox on its way to other work (`xcourier serve --sandbox`, answering
        tools/list) doesn't share its CPU, and the GIL, with that build.
        """
        if self._thread is not None:
            raise RuntimeError("sandbox server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted sockets inherit this; without it Nagle + delayed ACK add ~40 ms per response.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        host_in_url = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.base_url = f"http://{host_in_url}:{self.port}"
        self._socket = sock
        # A new flag for each run: a thread of an earlier run that outlived stop()'s join keeps seeing its own.
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, self._stopping), name="xcourier-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self, sock: socket.socket, stopping: threading.Event) -> None:
        try:
            if not _wait_for_a_client_or_idle(sock, stopping):
                return
            server = _build_server(self.sandbox)
        except BaseException:
            # Nobody would ever accept the queued connections: refuse them (the caller sees an error at
            # once rather than waiting on a sandbox that will never answer), and say why on stderr.
            sock.close()
            raise
        with self._state_lock:
            if stopping.is_set():
                return
            self._server = server
        threading.Thread(
            target=_warm_up_when_idle,
            args=(stopping, self.warmed_up),
            name="xcourier-sandbox-warm-up",
            daemon=True,
        ).start()
        server.run(sockets=[sock])

    def stop(self, timeout: float = 5.0) -> None:
        with self._state_lock:
            self._stopping.set()
            server = self._server
        if server is not None:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                print("xcourier-sandbox: server thread did not stop in time", file=sys.stderr)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
