"""`xcourier auth login | status | logout` and `serve` on a stored login, as real processes."""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.results import SANDBOX_NOTE
from xcourier.server.sandbox import PUBLIC_CLIENT_ID

from ..e2e.conftest import XCOURIER, child_env, wait_for_line

pytestmark = pytest.mark.slow


def _login_process(sandbox_url: str, store_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *XCOURIER,
            "auth",
            "login",
            "--no-browser",
            "--port",
            "0",
            "--api-base-url",
            sandbox_url,
            "--store",
            str(store_path),
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(XCOURIER_CLIENT_ID=PUBLIC_CLIENT_ID),
    )


def _follow_printed_url(process: subprocess.Popen[str]) -> None:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in iter(process.stderr.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    url = wait_for_line(lines, "/i/oauth2/authorize?", []).strip()
    location = httpx.get(url).headers["location"]
    httpx.get(location)


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XCOURIER, *args], capture_output=True, text=True, timeout=60, env=child_env(**env), stdin=subprocess.DEVNULL
    )


def test_login_status_serve_and_logout(sandbox, tmp_path: Path):
    store_path = tmp_path / "store.db"
    login = _login_process(sandbox.base_url, store_path)
    _follow_printed_url(login)
    assert login.wait(timeout=60) == 0
    out = login.stdout.read()
    assert "Logged in as @xcourier_demo" in out and str(store_path) in out
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600

    stored = SQLiteTokenStore(store_path)
    import anyio

    tokens = anyio.run(stored.load)
    status = _run("auth", "status", "--store", str(store_path))
    assert "@xcourier_demo (user id 1700000000000000001)" in status.stdout
    assert "offline.access" in status.stdout and "refreshes automatically" in status.stdout
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in status.stdout + status.stderr + out + login.stderr.read()

    async def use_the_stored_login() -> None:
        params = StdioServerParameters(
            command=XCOURIER[0], args=[*XCOURIER[1:], "serve", "--store", str(store_path), "--account", "xcourier_demo"]
        )
        async with Client(params, mode="legacy") as client:
            result = await client.call_tool("createPost", {"text": "posted with a stored login"})
            assert result.is_error is False, result.content[0].text
            # The login was made against `xcourier sandbox`: marked as `serve --sandbox` is, never taken for X.
            assert SANDBOX_NOTE in result.content[0].text
            assert "CONNECTED TO THE XCOURIER SANDBOX" in (client.instructions or "")

    anyio.run(use_the_stored_login)

    logout = _run("auth", "logout", "--store", str(store_path))
    assert logout.returncode == 0, logout.stderr
    assert "revoked at X and deleted" in logout.stdout
    assert anyio.run(stored.list_accounts) == []
    me = httpx.get(sandbox.base_url + "/2/users/me", headers={"Authorization": f"Bearer {tokens.access_token}"})
    assert me.status_code == 401


def test_login_without_a_client_id_says_where_to_put_it(tmp_path: Path):
    completed = subprocess.run(
        [*XCOURIER, "auth", "login", "--no-browser", "--store", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(XCOURIER_CONFIG=str(tmp_path / "none.toml")),
    )
    assert completed.returncode == 1
    assert "--client-id" in completed.stderr and "XCOURIER_CLIENT_ID" in completed.stderr


def test_client_id_can_come_from_the_config_file(sandbox, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f'[auth]\nclient_id = "{PUBLIC_CLIENT_ID}"\nscopes = ["tweet.read", "users.read"]\n')
    store_path = tmp_path / "store.db"
    process = subprocess.Popen(
        [
            *XCOURIER,
            "auth",
            "login",
            "--no-browser",
            "--port",
            "0",
            "--api-base-url",
            sandbox.base_url,
            "--store",
            str(store_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(XCOURIER_CONFIG=str(config)),
    )
    _follow_printed_url(process)
    assert process.wait(timeout=60) == 0
    assert "scopes:  tweet.read users.read" in process.stdout.read()


def test_serve_with_an_unknown_account_lists_the_known_ones(tmp_path: Path):
    completed = _run("serve", "--store", str(tmp_path / "empty.db"), "--account", "nobody")
    assert completed.returncode == 2
    assert "--account nobody: no such login" in completed.stderr


def test_serve_with_an_empty_store_says_how_to_log_in(tmp_path: Path):
    completed = _run("serve", "--store", str(tmp_path / "empty.db"))
    assert completed.returncode == 2
    assert "xcourier auth login" in completed.stderr and "XCOURIER_ACCESS_TOKEN" in completed.stderr


def test_sandbox_login_runs_the_whole_flow_and_stores_nothing(tmp_path: Path):
    process = subprocess.Popen(
        [*XCOURIER, "auth", "login", "--sandbox", "--no-browser", "--port", "0", "--store", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    _follow_printed_url(process)
    assert process.wait(timeout=60) == 0
    out = process.stdout.read()
    assert "Logged in to the xcourier sandbox as @xcourier_demo" in out and "Nothing was stored" in out
    assert not (tmp_path / "s.db").exists()


def test_sandbox_command_lists_its_oauth_clients(sandbox):
    process = subprocess.Popen([*XCOURIER, "sandbox"], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        line = json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert line["client_id"] == PUBLIC_CLIENT_ID
    assert line["confidential_client_id"] and line["confidential_client_secret"]
