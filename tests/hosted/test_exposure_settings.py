"""Who can reach the server decides what `serve` demands: checked before anything starts."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet

from xcourier.server.cli import build_parser, settings_from_args
from xcourier.server.settings import SettingsError

HOSTED_ENV = {"XCOURIER_X_CLIENT_ID": "client-id", "XCOURIER_STORE_KEY": Fernet.generate_key().decode()}


def settings(*argv: str, env: dict[str, str] | None = None):
    args = build_parser().parse_args(["serve", *argv])
    return settings_from_args(args, dict(HOSTED_ENV if env is None else env))


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (("--auth", "x"), None, "needs --transport http"),
        (("--transport", "http", "--auth", "x"), {"XCOURIER_STORE_KEY": "k"}, "XCOURIER_X_CLIENT_ID"),
        (("--transport", "http", "--auth", "x"), {"XCOURIER_X_CLIENT_ID": "c"}, "XCOURIER_STORE_KEY"),
        (("--transport", "http", "--auth", "x", "--sandbox"), None, "xcourier sandbox"),
        (("--transport", "http", "--auth", "x", "--host", "0.0.0.0"), None, "--public-url"),
        (("--transport", "http", "--host", "0.0.0.0"), {}, "--insecure-no-auth"),
        (("--transport", "http", "--auth", "x", "--public-url", "http://xcourier.example.com"), None, "https"),
        (("--transport", "http", "--auth", "x", "--public-url", "https://x.example.com/mcp"), None, "origin only"),
    ],
)
def test_unsafe_or_incomplete_exposure_is_refused_with_what_to_do(argv, env, says):
    with pytest.raises(SettingsError, match=r".*") as refused:
        settings(*argv, env=env)
    assert says in str(refused.value)


def test_hosted_mode_on_a_public_address_with_its_public_url():
    hosted = settings(
        "--transport", "http", "--auth", "x", "--host", "0.0.0.0", "--public-url", "https://x.example.com/"
    )
    assert (hosted.auth, hosted.public_url, hosted.x_client_id) == ("x", "https://x.example.com", "client-id")


def test_insecure_no_auth_binds_anywhere_but_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="xcourier"):
        open_server = settings("--transport", "http", "--host", "0.0.0.0", "--insecure-no-auth", env={})
    assert open_server.host == "0.0.0.0" and open_server.auth == "none"
    assert any("without authentication" in record.getMessage() for record in caplog.records)


def test_a_public_url_written_with_its_default_port_matches_what_clients_send():
    hosted = settings("--transport", "http", "--auth", "x", "--public-url", "https://x.example.com:443")
    assert hosted.public_url == "https://x.example.com"
    kept = settings("--transport", "http", "--auth", "x", "--public-url", "https://X.Example.com:8443")
    assert kept.public_url == "https://x.example.com:8443"  # as browsers write an Origin
    with pytest.raises(SettingsError, match="origin"):
        settings("--transport", "http", "--auth", "x", "--public-url", "https://trusted.example@evil.example")


def test_a_public_bind_needs_an_https_public_url():
    with pytest.raises(SettingsError, match="https origin"):
        settings("--transport", "http", "--auth", "x", "--host", "0.0.0.0", "--public-url", "http://localhost:8000")
