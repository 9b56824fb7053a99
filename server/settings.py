"""How `xcourier serve` is configured: flags first, then environment variables, then defaults."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xcourier.tools.client import DEFAULT_BASE_URL

Transport = Literal["stdio", "http"]

ENV_ACCESS_TOKEN = "XCOURIER_ACCESS_TOKEN"
ENV_API_BASE_URL = "XCOURIER_API_BASE_URL"
ENV_MEDIA_ROOTS = "XCOURIER_MEDIA_ROOTS"
ENV_MEDIA_ALLOW_HOSTS = "XCOURIER_MEDIA_ALLOW_HOSTS"
ENV_LOG_LEVEL = "XCOURIER_LOG_LEVEL"
ENV_POLL_INTERVAL = "XCOURIER_POLL_INTERVAL"
ENV_X_CLIENT_ID = "XCOURIER_X_CLIENT_ID"
ENV_X_CLIENT_SECRET = "XCOURIER_X_CLIENT_SECRET"
ENV_APP_BEARER_TOKEN = "XCOURIER_APP_BEARER_TOKEN"
ENV_WATCH = "XCOURIER_WATCH"
# Where `xcourier auth app` keeps the X app's Bearer Token in the store: one per X API base URL.
APP_TOKEN_RECORD = "app-bearer"


@dataclass(frozen=True)
class Settings:
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    sandbox: bool = False
    sandbox_port: int = 0
    sandbox_plan: str = "pay-per-use"  # the X plan the sandbox plays (xcourier.server.sandbox.plans.PLANS)
    api_base_url: str = DEFAULT_BASE_URL
    media_roots: tuple[Path, ...] = ()
    # Hosts remote media may come from even though they resolve to private addresses (e.g. an intranet CDN).
    media_allowed_hosts: tuple[str, ...] = ()
    log_level: str = "INFO"
    poll_interval: float = 60.0  # the newPost watcher's minimum interval between polls of a user
    watch_search: bool = True  # fold watched users into recent-search queries
    # newPost: "auto" lets X push new posts (X Activity API) where it can, with the app's Bearer Token;
    # "poll" never asks X to push.
    watch: Literal["auto", "poll"] = "auto"
    sandbox_chatter: float = 0.0  # with sandbox: bob posts every N seconds (0: off)
    # Safety switches, read by the tool inventory and the call pipeline.
    read_only: bool = False
    # Toolsets to expose (inventory.TOOLSETS, `default`, `all`); None: the default selection.
    toolsets: tuple[str, ...] | None = None
    tools: tuple[str, ...] | None = None  # allow list; None: every tool of the chosen toolsets
    exclude_tools: tuple[str, ...] = ()
    confirm: Literal["none", "destructive", "writes"] = "none"
    dry_run: bool = False
    max_writes_per_hour: int | None = None
    daily_budget: float | None = None  # USD
    prices: tuple[tuple[str, float], ...] = ()  # overrides of audit.DEFAULT_PRICES
    store: str | None = None  # None: XCOURIER_STORE, else SQLite in the user data directory
    account: str | None = None  # None: the only, or last, login in the store
    # Hosted mode (--auth x): xcourier is an OAuth authorization server bridging to X; each caller acts as themselves.
    auth: Literal["none", "x"] = "none"
    public_url: str | None = None  # where MCP clients and browsers reach this server (behind a load balancer: its URL)
    insecure_no_auth: bool = False
    x_client_id: str | None = None
    lease_ttl: float = 15.0  # hosted: a watched user's poller lease; another instance takes over after this
    client_metadata_allowed_hosts: tuple[str, ...] = ()  # CIMD documents may come from these private hosts
    x_client_secret: str | None = field(default=None, repr=False)
    # Kept out of repr so a logged Settings never shows the token.
    access_token: str | None = field(default=None, repr=False)
    # The X app's Bearer Token (app-only), for the X Activity API; else the one `xcourier auth app` stored.
    app_bearer_token: str | None = field(default=None, repr=False)


class SettingsError(ValueError):
    """A configuration value is unusable; the message says which and what to do."""


def media_roots_from_env(environ: dict[str, str]) -> tuple[Path, ...]:
    raw = environ.get(ENV_MEDIA_ROOTS, "")
    return tuple(Path(part) for part in raw.split(os.pathsep) if part)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_media_roots(roots: tuple[Path, ...]) -> tuple[Path, ...]:
    for root in roots:
        if not root.expanduser().is_dir():
            raise SettingsError(f"--media-root {root}: not a directory. Pass an existing folder.")
    return tuple(root.expanduser().resolve() for root in roots)


def port_number(value: str) -> int:
    """An argparse type for every --port flag (serve, sandbox, auth login)."""
    try:
        port = int(value)
    except ValueError:
        # Without this, argparse names the function: "invalid port_number value".
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return port


def check_api_base_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"--api-base-url {url!r}: expected an http(s) URL such as {DEFAULT_BASE_URL}.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(
            f"--api-base-url {url!r}: plain http is only allowed to a loopback address; "
            "tokens must not cross the network unencrypted. Use https."
        )
    return url.rstrip("/")


def check_public_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise SettingsError(f"--public-url {url!r}: expected an origin such as https://xcourier.example.com.")
    if parts.path not in ("", "/"):
        raise SettingsError(f"--public-url {url!r}: give the origin only; MCP is served at /mcp under it.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(
            f"--public-url {url!r}: OAuth needs https for a non-loopback address (tokens and codes travel in it)."
        )
    default_port = {"https": 443, "http": 80}[parts.scheme]
    # Clients send Host without a default port; an origin written with one would never match it.
    netloc = parts.netloc.removesuffix(f":{default_port}") if parts.port == default_port else parts.netloc
    # Browsers send Origin in lower case; the comparison with it is exact.
    return f"{parts.scheme}://{netloc.lower()}"
