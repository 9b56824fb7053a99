from __future__ import annotations

import subprocess
import sys
import threading
import warnings

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from xcourier.server.sandbox import Sandbox, SandboxServer, runner


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


def test_an_idle_server_loads_what_the_first_post_needs() -> None:
    code = (
        "import sys\n"
        "from xcourier.server.sandbox import SandboxServer\n"
        "with SandboxServer() as s:\n"
        "    assert s.warmed_up.wait(60)\n"
        "    assert 'twitter_text' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_server_that_cannot_build_its_app_refuses_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(sandbox: Sandbox) -> None:
        raise RuntimeError("no app")

    failures: list[BaseException | None] = []
    monkeypatch.setattr(runner, "_build_server", broken)
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    server = SandboxServer().start()
    try:
        # Refused or reset: a queued connection must not wait for a server that will never come.
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(f"{server.base_url}/_sandbox/calls", timeout=30)
    finally:
        server.stop()
    assert [str(failure) for failure in failures] == ["no app"]


def test_plain_ascii_posts_are_checked_and_priced_without_loading_twitter_text() -> None:
    code = (
        "import sys\n"
        "from xcourier.server.sandbox import Sandbox\n"
        "sandbox = Sandbox()\n"
        "bob = sandbox.user_by_username('bob')\n"
        "sandbox.create_post(bob, 'hello from the sandbox, without a dot', None)\n"
        "assert 'twitter_text' not in sys.modules\n"
        "sandbox.create_post(bob, 'and now a link: example.com', None)\n"
        "assert 'twitter_text' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(st.text(st.characters(max_codepoint=127, exclude_characters="."), max_size=280))
@example("http://localhost:8080/path #1 @bob $ABC \r\n*0#")
def test_twitter_text_counts_ascii_without_a_dot_as_the_shortcut_says(text: str) -> None:
    # The sandbox accepts such text (up to 280 characters) without asking twitter-text: it must find no
    # URL in it and count it at most one per character.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import twitter_text

    assert twitter_text.extract_urls(text) == []
    assert twitter_text.parse_tweet(text).weightedLength <= len(text)
