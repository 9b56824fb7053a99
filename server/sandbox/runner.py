"""Serve a sandbox with uvicorn on a loopback socket, in a daemon thread."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .config import SandboxConfig
from .plans import DEFAULT_PLAN, parse_plan
from .state import Sandbox

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

    def start(self) -> SandboxServer:
        import uvicorn  # lazy: keep `import xcourier.server.sandbox` cheap

        from .app import create_app

        if self._thread is not None:
            raise RuntimeError("sandbox server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this; without it Nagle + delayed ACK add ~40 ms per response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Bound and listening before the thread starts: connections queue in the backlog until
        # uvicorn accepts them, so base_url works at once without polling.
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        host_in_url = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.base_url = f"http://{host_in_url}:{self.port}"
        config = uvicorn.Config(
            create_app(self.sandbox),
            log_level="warning",
            access_log=False,
            log_config=_LOG_CONFIG,
            lifespan="off",
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._socket = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="xcourier-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
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
