"""Hosted mode as it runs: `xcourier serve --auth x` processes on loopback, sharing a real Redis
and the shared sandbox (which plays X: its OAuth pages sign users in, its API serves them)."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from cryptography.fernet import Fernet

from xcourier.server.sandbox import PUBLIC_CLIENT_ID, SandboxServer

from ..e2e.conftest import XCOURIER, _pump, child_env, wait_for_line

STORE_KEY = Fernet.generate_key().decode()


@dataclass
class Instance:
    url: str  # its MCP endpoint as reached directly
    process: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.url.removesuffix("/mcp")

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no lease released, no cleanup
        self.process.wait(timeout=20)


@pytest.fixture
def hosted_store(redis_url: str) -> str:
    """A Redis database of its own, emptied first: hosted tests see only what they did."""
    url = f"{redis_url}?db=1"
    connection = redis.Redis.from_url(url)
    connection.flushdb()
    connection.close()
    return url


class Launcher:
    def __init__(self, sandbox: SandboxServer, store: str) -> None:
        self.sandbox = sandbox
        self.store = store
        self.instances: list[Instance] = []

    def start(self, *extra: str, public_url: str | None = None) -> Instance:
        args = [
            *XCOURIER,
            "serve",
            "--transport",
            "http",
            "--port",
            "0",
            "--auth",
            "x",
            "--api-base-url",
            self.sandbox.base_url,
            "--store",
            self.store,
            "--poll-interval",
            "0.2",
            "--no-search",
            "--lease-ttl",
            "1.5",
            "--log-level",
            "DEBUG",  # the most a log says: still no secret (checked when the processes stop)
            *(["--public-url", public_url] if public_url else []),
            *extra,
        ]
        env = child_env(XCOURIER_X_CLIENT_ID=PUBLIC_CLIENT_ID, XCOURIER_STORE_KEY=STORE_KEY)
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()
        instance = Instance(url="", process=process)
        threading.Thread(target=_pump, args=(process.stderr, lines, instance.stderr), daemon=True).start()
        self.instances.append(instance)
        line = wait_for_line(lines, "serving MCP over streamable HTTP at ", [])
        announced = line.split(" at ", 1)[1].strip()
        if public_url is None:
            instance.url = announced
        else:
            # It announces the public URL; tests reach it directly on its own port.
            instance.url = _direct_url(instance, announced)
        return instance

    def stop_all(self) -> None:
        for instance in self.instances:
            if instance.process.poll() is None:
                instance.process.terminate()
                try:
                    instance.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    instance.process.kill()
                    instance.process.wait(timeout=20)


def _direct_url(instance: Instance, announced: str) -> str:
    import psutil

    ports = [c.laddr.port for c in psutil.Process(instance.process.pid).net_connections("tcp") if c.status == "LISTEN"]
    assert len(ports) == 1, ports
    return f"http://127.0.0.1:{ports[0]}/mcp"


@pytest.fixture
def launcher(sandbox: SandboxServer, hosted_store: str) -> Iterator[Launcher]:
    fleet = Launcher(sandbox, hosted_store)
    yield fleet
    fleet.stop_all()
    logs = "".join(line for instance in fleet.instances for line in instance.stderr)
    leaked = [secret for secret in sandbox.sandbox.issued_secrets() if secret in logs]
    assert not leaked, "an X token issued by the sandbox appears in an xcourier log"
    assert STORE_KEY not in logs
