"""`xcourier doctor` against the sandbox on loopback: what passes, what fails, and what it says to do."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from xcourier.server import doctor
from xcourier.server.auth import oauth
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.tokenset import TokenSet
from xcourier.server.sandbox import PUBLIC_CLIENT_ID

from ..auth.conftest import log_in
from ..e2e.conftest import XCOURIER, child_env

pytestmark = pytest.mark.slow


def _doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XCOURIER, "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(**env),
        stdin=subprocess.DEVNULL,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [name])


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "xcourier.db"


def _logged_in(sandbox, store_path: Path, scopes: tuple[str, ...] = oauth.DEFAULT_SCOPES) -> TokenSet:
    app = oauth.OAuthApp(client_id=PUBLIC_CLIENT_ID, api_base_url=sandbox.base_url)
    return anyio.run(lambda: log_in(app, SQLiteTokenStore(store_path), scopes=scopes))


def test_a_healthy_login_passes_every_check_and_refresh_really_rotates(sandbox, store_path: Path):
    before = _logged_in(sandbox, store_path)
    completed = _doctor("--store", str(store_path))
    assert completed.returncode == 0, completed.stdout
    out = completed.stdout
    assert "All checks passed" in out
    for name in ("store", "X", "clock", "login", "scopes", "refresh", "token"):
        assert _line(out, name).split()[0] == "ok", out
    assert "@xcourier_demo" in out
    after = anyio.run(SQLiteTokenStore(store_path).load)
    assert after.version == before.version + 1 and after.refresh_token != before.refresh_token
    assert not [secret for secret in sandbox.sandbox.issued_secrets() if secret in out + completed.stderr]


def test_no_refresh_skips_the_rotation(sandbox, store_path: Path):
    before = _logged_in(sandbox, store_path)
    completed = _doctor("--store", str(store_path), "--no-refresh")
    assert completed.returncode == 0, completed.stdout
    assert _line(completed.stdout, "refresh").split()[0] == "skip"
    assert anyio.run(SQLiteTokenStore(store_path).load).version == before.version


def test_no_login_fails_says_how_to_log_in_and_creates_nothing(sandbox, store_path: Path):
    completed = _doctor("--store", str(store_path), "--api-base-url", sandbox.base_url)
    assert completed.returncode == 1
    assert _line(completed.stdout, "login").split()[0] == "FAIL"
    assert "xcourier auth login" in completed.stdout
    assert not store_path.parent.exists()


def test_missing_scopes_are_a_warning_naming_them(sandbox, store_path: Path):
    _logged_in(sandbox, store_path, scopes=("tweet.read", "tweet.write", "users.read", "offline.access"))
    completed = _doctor("--store", str(store_path))
    assert completed.returncode == 0, completed.stdout
    scopes = _line(completed.stdout, "scopes")
    assert scopes.split()[0] == "WARN" and "dm.write" in scopes and "like.write" in scopes


def test_a_refused_refresh_token_fails_with_log_in_again(sandbox, store_path: Path):
    good = _logged_in(sandbox, store_path)
    spoiled = TokenSet(
        user_id=good.user_id,
        username=good.username,
        scopes=good.scopes,
        expires_at=good.expires_at,
        api_base_url=good.api_base_url,
        client_id=good.client_id,
        access_token=good.access_token,
        refresh_token="not-a-refresh-token",
        version=good.version + 1,
    )
    anyio.run(SQLiteTokenStore(store_path).save, spoiled)
    completed = _doctor("--store", str(store_path))
    assert completed.returncode == 1
    assert _line(completed.stdout, "refresh").split()[0] == "FAIL"
    assert "xcourier auth login" in completed.stdout


def test_an_unreachable_api_fails_with_what_to_check(store_path: Path, sandbox):
    port = _closed_port()
    completed = _doctor("--store", str(store_path), "--api-base-url", f"http://127.0.0.1:{port}")
    assert completed.returncode == 1
    reach = _line(completed.stdout, "X")
    assert reach.split()[0] == "FAIL" and f"127.0.0.1:{port}" in reach
    assert "Traceback" not in completed.stderr


def test_an_unreachable_redis_store_is_one_line_not_a_traceback(sandbox):
    completed = _doctor("--store", f"redis://127.0.0.1:{_closed_port()}/0", "--api-base-url", sandbox.base_url)
    assert completed.returncode == 1
    assert _line(completed.stdout, "store").split()[0] == "FAIL"
    assert "start Redis" in completed.stdout
    assert "Traceback" not in completed.stderr + completed.stdout


@pytest.mark.anyio
async def test_a_clock_far_from_xs_fails_the_clock_check(sandbox, tmp_path: Path):
    options = doctor.Options(store=str(tmp_path / "none.db"), api_base_url=sandbox.base_url)
    checks = await doctor.diagnose(options, {}, clock=lambda: time.time() + 600)
    clock = next(check for check in checks if check.name == "clock")
    assert clock.status == "fail" and "ahead of" in clock.summary and "time" in clock.fix


@pytest.mark.anyio
async def test_a_clock_in_step_with_xs_passes(sandbox, tmp_path: Path):
    options = doctor.Options(store=str(tmp_path / "none.db"), api_base_url=sandbox.base_url)
    checks = await doctor.diagnose(options, {})
    assert next(check for check in checks if check.name == "clock").status == "ok"


def _app_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:3] == ["app", "token"])


def test_without_an_app_token_push_is_a_skipped_check_with_how_to_turn_it_on(sandbox, store_path: Path):
    _logged_in(sandbox, store_path)
    completed = _doctor("--store", str(store_path), "--no-refresh")
    assert completed.returncode == 0, completed.stdout
    line = _app_line(completed.stdout)
    assert line.split()[0].lower() == "skip" and "newPost polls" in line
    assert "xcourier auth app" in line


def test_an_app_token_x_accepts_passes_and_one_it_refuses_fails(sandbox, admin, store_path: Path):
    _logged_in(sandbox, store_path)
    token = admin.http.post("/app-token").raise_for_status().json()["access_token"]
    accepted = _doctor("--store", str(store_path), "--no-refresh", XCOURIER_APP_BEARER_TOKEN=token)
    assert accepted.returncode == 0, accepted.stdout
    assert _app_line(accepted.stdout).split()[0].lower() == "ok"
    assert token not in accepted.stdout + accepted.stderr
    refused = _doctor("--store", str(store_path), "--no-refresh", XCOURIER_APP_BEARER_TOKEN="not-a-token")
    assert refused.returncode != 0
    assert _app_line(refused.stdout).split()[0].lower() == "fail"
    assert "Bearer Token" in refused.stdout
