from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from xcourier.server.sandbox import Sandbox, SandboxServer


def test_server_is_usable_as_soon_as_start_returns() -> None:
    with SandboxServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.base_url}/_sandbox/calls").json() == {"calls": {}}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/_sandbox/calls", timeout=1)


def test_server_refuses_non_loopback_hosts() -> None:
    for host in ("0.0.0.0", "192.168.1.10", "example.com"):
        with pytest.raises(ValueError):
            SandboxServer(host=host)


def test_server_shares_the_given_sandbox() -> None:
    sandbox = Sandbox()
    with SandboxServer(sandbox) as server:
        token, _ = sandbox.mint_token("carol")
        me = httpx.get(f"{server.base_url}/2/users/me", headers={"authorization": f"Bearer {token}"})
        assert me.json()["data"]["username"] == "carol"


def test_importing_the_package_is_cheap() -> None:
    code = (
        "import sys, xcourier.server.sandbox as s; "
        "assert 'uvicorn' not in sys.modules and 'twitter_text' not in sys.modules and 'starlette' not in sys.modules; "
        "s.Sandbox; assert 'uvicorn' not in sys.modules and 'twitter_text' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_server_logs_nothing_on_stdout() -> None:
    code = (
        "import httpx\n"
        "from xcourier.server.sandbox import SandboxServer\n"
        "with SandboxServer() as s:\n"
        "    httpx.post(s.base_url + '/_sandbox/faults', json={'endpoint': 'GET /2/users/me', 'kind': 'drop'})\n"
        "    t, _ = s.sandbox.mint_token()\n"
        "    try:\n"
        "        httpx.get(s.base_url + '/2/users/me', headers={'authorization': 'Bearer ' + t})\n"
        "    except httpx.TransportError:\n"
        "        pass\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == ""
    assert "without completing response" in result.stderr
