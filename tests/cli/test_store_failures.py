"""A store that can't be used is said in one line, before anything irreversible, and creates nothing:
Redis not running, the redis package missing, a --store path that can't be written, no login yet."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ..e2e.conftest import XCOURIER, child_env

# `import redis` fails in this interpreter as if the package were not installed.
WITHOUT_REDIS = [
    sys.executable,
    "-c",
    "import sys; sys.modules['redis'] = None; from xcourier.server.cli import main; sys.exit(main(sys.argv[1:]))",
]


def _run(*args: str, command: list[str] = XCOURIER, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, env=child_env(**env), stdin=subprocess.DEVNULL
    )


def _last_line(completed: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed.stderr.strip().splitlines()[-1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on leaving: nothing listens there


@pytest.mark.parametrize("command", [("serve",), ("auth", "status"), ("auth", "logout"), ("audit",)])
def test_an_unreachable_redis_is_one_line_and_exit_code_4(command: tuple[str, ...], closed_port: int):
    store = f"redis://127.0.0.1:{closed_port}/0"
    completed = _run(*command, "--store", store)
    assert completed.returncode == 4
    line = _last_line(completed)
    assert line.startswith(f"xcourier: The store {store} can't be reached (")
    assert "Start Redis there, or point --store / XCOURIER_STORE at a Redis that runs" in line


def test_auth_login_finds_an_unreachable_redis_before_the_browser(closed_port: int):
    completed = _run(
        "auth", "login", "--client-id", "app", "--no-browser", "--store", f"redis://127.0.0.1:{closed_port}"
    )
    assert completed.returncode == 4
    assert "can't be reached" in _last_line(completed)
    assert "authorize" not in completed.stderr  # no sign-in was started


def test_an_unreachable_redis_traceback_is_there_with_log_level_debug(closed_port: int):
    completed = _run("serve", "--store", f"redis://127.0.0.1:{closed_port}", "--log-level", "DEBUG")
    assert completed.returncode == 4
    assert "Traceback" in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith("xcourier: The store ")


@pytest.mark.parametrize("command", [("serve",), ("auth", "status")])
def test_a_redis_store_without_the_redis_package_names_the_extra_to_install(command: tuple[str, ...]):
    completed = _run(*command, "--store", "redis://127.0.0.1:6379/0", command=WITHOUT_REDIS)
    assert completed.returncode in (1, 2)
    line = _last_line(completed)
    assert "needs the redis package" in line and "pip install 'xcourier[redis]'" in line
    assert "ModuleNotFoundError" not in completed.stderr


def _login(store: str) -> subprocess.CompletedProcess[str]:
    return _run("auth", "login", "--client-id", "app", "--no-browser", "--timeout", "30", "--store", store)


def test_auth_login_refuses_a_store_under_a_file_before_the_browser(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    store = tmp_path / "notes.txt" / "xcourier" / "xcourier.db"
    completed = _login(str(store))
    assert completed.returncode == 1
    line = _last_line(completed)
    assert f"{tmp_path / 'notes.txt'} is a file, where a folder should be" in line
    assert "Open this URL" not in completed.stderr and "authorize" not in completed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_auth_login_refuses_a_store_that_is_a_folder(tmp_path: Path):
    completed = _login(str(tmp_path))
    assert completed.returncode == 1
    assert "that is a folder; name a file in it" in _last_line(completed)
    assert "Open this URL" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


def _without_root_privileges() -> list[str]:
    """As root, permissions don't stop a write; setpriv drops the capabilities that let root ignore them."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): a folder's permissions can't refuse root")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_auth_login_refuses_a_store_in_a_folder_it_may_not_write_before_the_browser(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        command = [*_without_root_privileges(), *XCOURIER]
        store = str(locked / "sub" / "xcourier.db")
        completed = _run("auth", "login", "--client-id", "app", "--no-browser", "--store", store, command=command)
    finally:
        locked.chmod(0o700)
    assert completed.returncode == 1
    assert f"no permission to create files in {locked}" in _last_line(completed)
    assert "Open this URL" not in completed.stderr
    assert list(locked.iterdir()) == []


def test_serve_without_a_login_creates_nothing(isolated_user_dirs: Path, tmp_path: Path):
    before = sorted(str(p) for p in isolated_user_dirs.rglob("*"))
    completed = _run("serve")
    assert completed.returncode == 2
    assert _last_line(completed).startswith("xcourier: No X login.")
    assert sorted(str(p) for p in isolated_user_dirs.rglob("*")) == before  # no store file, no folders
    store = tmp_path / "new" / "folders" / "xcourier.db"
    completed = _run("serve", "--store", str(store))
    assert completed.returncode == 2 and "No X login" in completed.stderr
    assert not (tmp_path / "new").exists()


def test_auth_status_without_a_store_creates_nothing(tmp_path: Path):
    store = tmp_path / "new" / "xcourier.db"
    completed = _run("auth", "status", "--store", str(store))
    assert completed.returncode == 0 and "No logins" in completed.stdout
    assert not (tmp_path / "new").exists()


def test_auth_login_port_is_parsed_as_serve_parses_it():
    completed = _run("auth", "login", "--port", "abc")
    assert completed.returncode == 2
    assert "'abc' is not a port number (0-65535)" in completed.stderr and "_port" not in completed.stderr
    completed = _run("auth", "login", "--port", "70000")
    assert completed.returncode == 2 and "70000 is not a TCP port" in completed.stderr
