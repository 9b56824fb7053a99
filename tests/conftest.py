"""Shared fixtures: one sandbox per test session on loopback, reset before each test that uses it."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.sandbox import SandboxServer
from xcourier.server.settings import Settings

# The variables that decide where xcourier (and anything it spawns) finds the user's files.
_USER_DIR_VARIABLES = ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
REAL_USER_DIRS = {name: os.environ.get(name) for name in _USER_DIR_VARIABLES}


def _real_xcourier_paths() -> list[Path]:
    home = Path(REAL_USER_DIRS["HOME"] or Path.home())
    data = Path(REAL_USER_DIRS["XDG_DATA_HOME"] or home / ".local" / "share")
    config = Path(REAL_USER_DIRS["XDG_CONFIG_HOME"] or home / ".config")
    return [data / "xcourier", config / "xcourier"]


def fingerprint(paths: list[Path]) -> dict[str, str]:
    """Every file under `paths` with a hash of its bytes: equal fingerprints mean nothing was touched."""
    found: dict[str, str] = {}
    for root in paths:
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# Variables that steer the test suite itself, not xcourier: they pass through.
_TEST_SWITCHES = ("XCOURIER_UPDATE_SNAPSHOTS", "XCOURIER_SOAK_ROUNDS", "XCOURIER_WHEELHOUSE")

_REAL_FILES_AT_START = fingerprint(_real_xcourier_paths())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The user's own login store, audit trail and config must be exactly as the suite found them."""
    if fingerprint(_real_xcourier_paths()) != _REAL_FILES_AT_START:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nFAILED: the test suite changed the user's real xcourier files under", _real_xcourier_paths())


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test, and every process it spawns, gets its own HOME and XDG directories and no XCOURIER_*
    setting from the developer's shell: a login in the real HOME never leaks into a test, and no test
    writes to it."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name, folder in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        monkeypatch.setenv(name, str(home / folder))
    for name in list(os.environ):
        if name.startswith("XCOURIER_") and name not in _TEST_SWITCHES:
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.sandbox.reset()
    return sandbox_server


class Admin:
    """The sandbox's admin API, as a test (or a user) reaches it: over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url + "/_sandbox", timeout=10)

    def calls(self) -> dict[str, int]:
        return self.http.get("/calls").raise_for_status().json()["calls"]

    def x_calls(self) -> int:
        return sum(self.calls().values())

    def state(self) -> dict:
        return self.http.get("/state").raise_for_status().json()

    def post_as(self, username: str, text: str) -> dict:
        return self.http.post("/posts", json={"username": username, "text": text}).raise_for_status().json()

    def fault(self, endpoint: str, kind: str, **extra: object) -> None:
        self.http.post("/faults", json={"endpoint": endpoint, "kind": kind, **extra}).raise_for_status()

    def rate_limit(self, endpoint: str, limit: int) -> None:
        self.http.post("/rate-limits", json={"endpoint": endpoint, "limit": limit}).raise_for_status()


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[Admin]:
    client = Admin(sandbox.base_url)
    yield client
    client.http.close()


@pytest.fixture
def enterprise(admin: Admin) -> None:
    """The sandbox plays pay-per-use (what a new X developer gets), where likes are refused since
    2026-04-20: tests that use likePost as an ordinary write switch it to an Enterprise account."""
    admin.http.post("/plan", json={"plan": "enterprise"}).raise_for_status()


@pytest.fixture
async def runtime(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    media_root = tmp_path_factory.mktemp("media")
    async with Runtime.open(Settings(sandbox=True, media_roots=(media_root,)), sandbox_server=sandbox) as rt:
        yield rt


@pytest.fixture
def mcp_server(runtime: Runtime):
    return build_server(runtime)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@pytest.fixture(autouse=True)
def no_token_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that talks to the shared sandbox: no token it issued may appear in a log line."""
    collector = _Collect()
    collector.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("xcourier")
    previous = ours.level
    root.addHandler(collector)
    ours.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(collector)
        ours.setLevel(previous)
    if "sandbox" in request.fixturenames:
        secrets = request.getfixturevalue("sandbox_server").sandbox.issued_secrets()
        logged = "\n".join(collector.texts)
        leaked = [s for s in secrets if s in logged]
        assert not leaked, f"{len(leaked)} token value(s) appeared in log output"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a unix socket of its own (.ci/run installs the Debian package)."""
    import os
    import shutil

    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run must install it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    from .redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
