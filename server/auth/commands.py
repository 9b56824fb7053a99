"""`xcourier auth login | status | logout`. Output is for people; tokens are never printed."""

from __future__ import annotations

import argparse
import sys
import time
import webbrowser
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio

from ..config_file import ConfigError, load_config, section
from ..settings import SettingsError, check_api_base_url, port_number
from . import app_token, oauth
from .store import EXIT_STORE_UNAVAILABLE, StoreError, StoreUnavailableError, TokenStore, open_store, preflight
from .tokenset import TokenSet

ENV_CLIENT_ID = "XCOURIER_CLIENT_ID"
ENV_CLIENT_SECRET = "XCOURIER_CLIENT_SECRET"


def add_parser(commands: Any) -> None:
    auth = commands.add_parser("auth", help="log in to X, show or remove logins, store the app's Bearer Token")
    actions = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    app_token.add_parser(actions)

    login_parser = actions.add_parser(
        "login",
        help="log in with OAuth 2.0 (authorization code + PKCE) and store the tokens",
        description=(
            "Opens X's authorize page; X sends the browser back to http://127.0.0.1:PORT/callback, which must be "
            "registered as a callback URL in the X app. The client id comes from --client-id, "
            f"{ENV_CLIENT_ID} or the config file's [auth] table; a confidential client's secret from "
            f"--client-secret-stdin, {ENV_CLIENT_SECRET} or the config file (never put it on the command line: "
            "every user of the machine can read a command line)."
        ),
    )
    login_parser.add_argument("--client-id", help="the X app's OAuth 2.0 client id")
    secret = login_parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--client-secret-stdin",
        action="store_true",
        help="read a confidential client's secret from standard input (a prompt on a terminal)",
    )
    # Kept so existing scripts work, and warned about: see _client_secret.
    secret.add_argument("--client-secret", help=argparse.SUPPRESS)
    login_parser.add_argument(
        "--scopes",
        nargs="+",
        metavar="SCOPE",
        help=f"scopes to ask for (default: {' '.join(oauth.DEFAULT_SCOPES)})",
    )
    login_parser.add_argument(
        "--port",
        type=port_number,
        default=8765,
        help="loopback callback port (default 8765); http://127.0.0.1:PORT/callback must be registered in the X app",
    )
    login_parser.add_argument("--no-browser", action="store_true", help="print the authorize URL instead")
    login_parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the browser")
    target = login_parser.add_mutually_exclusive_group()
    target.add_argument(
        "--sandbox",
        action="store_true",
        help="try the flow against an in-process sandbox (nothing is stored: the sandbox ends with the command)",
    )
    target.add_argument("--api-base-url", metavar="URL", help="X API base URL (default https://api.x.com)")
    login_parser.add_argument("--authorize-url", metavar="URL", help="override the authorize page URL")
    login_parser.add_argument("--store", metavar="PATH", help="token store (default: XCOURIER_STORE or user data dir)")

    status = actions.add_parser("status", help="show stored logins: account, scopes, expiry (never tokens)")
    status.add_argument("--store", metavar="PATH")

    logout = actions.add_parser("logout", help="revoke the login at X and delete it locally")
    logout.add_argument("--account", metavar="NAME", help="username or user id (default: the only/last login)")
    logout.add_argument("--store", metavar="PATH")


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if args.auth_command == "app":
        return app_token.run(args, environ)
    # The login machinery loads only when an auth command runs, not when the parser is built for `serve`.
    from .login import LoginError

    handlers: dict[str, Callable[[argparse.Namespace, dict[str, str]], Any]] = {
        "login": _login,
        "status": _status,
        "logout": _logout,
    }
    try:
        return anyio.run(handlers[args.auth_command], args, environ)
    except StoreUnavailableError as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return EXIT_STORE_UNAVAILABLE
    except (LoginError, StoreError, SettingsError, ConfigError) as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("xcourier: login cancelled; nothing was stored.", file=sys.stderr)
        return 130


def _describe(tokens: TokenSet, now: float) -> str:
    left = tokens.expires_at - now
    when = datetime.fromtimestamp(tokens.expires_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    expiry = f"expires {when} (in {int(left // 60)} min)" if left > 0 else f"expired {when}"
    refresh = "refreshes automatically" if tokens.refresh_token else "no refresh token (no offline.access)"
    return (
        f"@{tokens.username} (user id {tokens.user_id})\n"
        f"  scopes:  {' '.join(sorted(tokens.scopes))}\n"
        f"  access:  {expiry}; {refresh}\n"
        f"  api:     {tokens.api_base_url} (client {tokens.client_id})"
    )


async def _login(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from .login import LoginError, login

    auth_config = section(load_config(environ), "auth")
    scopes = tuple(args.scopes or auth_config.get("scopes") or oauth.DEFAULT_SCOPES)
    scopes = tuple(scope for item in scopes for scope in item.replace(",", " ").split())

    def show(url: str) -> None:
        if args.no_browser or not webbrowser.open(url):
            print(f"Open this URL in a browser to log in to X:\n\n  {url}\n", file=sys.stderr, flush=True)
        else:
            print(f"Opened X's login page in your browser. If it did not appear, open:\n  {url}", file=sys.stderr)
        print(f"Waiting up to {args.timeout:.0f} s for X to send the browser back...", file=sys.stderr, flush=True)

    if args.sandbox:
        return await _sandbox_login(args, scopes, show)

    client_id = args.client_id or environ.get(ENV_CLIENT_ID) or auth_config.get("client_id")
    if not client_id:
        raise LoginError(
            f"No client id. Pass --client-id, set {ENV_CLIENT_ID}, or add client_id to the config file's [auth] "
            "table. The README's 'Setting up the X app' says where to find it."
        )
    secret = _client_secret(args, environ, auth_config)
    api_base_url = check_api_base_url(args.api_base_url or oauth.X_API_BASE_URL)
    app = oauth.OAuthApp(
        client_id=client_id, client_secret=secret, api_base_url=api_base_url, authorize_url=args.authorize_url or ""
    )
    store = open_store(args.store, environ=environ)
    await preflight(store)  # before the browser: a sign-in must not end in "can't save it"
    tokens = await login(app, scopes, store, port=args.port, timeout=args.timeout, show_url=show)
    print(f"Logged in as {_describe(tokens, time.time())}\n  stored:  {store.location}")
    return 0


def _client_secret(args: argparse.Namespace, environ: dict[str, str], auth_config: dict[str, Any]) -> str | None:
    """A confidential client's secret, from where no other user of the machine can read it."""
    from .login import LoginError

    if args.client_secret:
        # /proc/PID/cmdline (ps, top) is readable by every local user for as long as the login waits.
        print(
            "xcourier: warning: --client-secret puts the secret in the process list, where any user of this "
            f"machine can read it; use --client-secret-stdin, {ENV_CLIENT_SECRET} or the config file's [auth] "
            "client_secret instead.",
            file=sys.stderr,
            flush=True,
        )
        return str(args.client_secret)
    if args.client_secret_stdin:
        if sys.stdin.isatty():
            import getpass

            typed = getpass.getpass("X client secret (not shown): ")
        else:
            typed = sys.stdin.readline()
        typed = typed.strip()
        if not typed:
            raise LoginError("--client-secret-stdin: standard input gave no secret (an empty line).")
        return typed
    return environ.get(ENV_CLIENT_SECRET) or auth_config.get("client_secret") or None


async def _sandbox_login(args: argparse.Namespace, scopes: tuple[str, ...], show: Callable[[str], None]) -> int:
    from ..sandbox import PUBLIC_CLIENT_ID, SandboxServer
    from .login import login
    from .memory_store import MemoryTokenStore

    with SandboxServer() as sandbox:
        app = oauth.OAuthApp(client_id=PUBLIC_CLIENT_ID, api_base_url=sandbox.base_url)
        tokens = await login(app, scopes, MemoryTokenStore(), port=args.port, timeout=args.timeout, show_url=show)
        print(f"Logged in to the xcourier sandbox as {_describe(tokens, time.time())}")
    print(
        "Nothing was stored: this sandbox ended with the command. To keep a sandbox login, run "
        "`xcourier sandbox --port 8787` and `xcourier auth login --api-base-url http://127.0.0.1:8787 "
        f"--client-id {PUBLIC_CLIENT_ID}`."
    )
    return 0


async def _status(args: argparse.Namespace, environ: dict[str, str]) -> int:
    store = open_store(args.store, environ=environ)
    accounts = await store.list_accounts()
    print(f"store: {store.location}")
    if not accounts:
        print("No logins. Run `xcourier auth login`.")
        return 0
    now = time.time()
    for index, tokens in enumerate(accounts):
        default = "  [default]" if index == 0 else ""
        print(_describe(tokens, now) + default)
    return 0


async def _logout(args: argparse.Namespace, environ: dict[str, str]) -> int:
    store: TokenStore = open_store(args.store, environ=environ)
    tokens = await store.load(args.account)
    if tokens is None:
        print(f"No login{' for ' + args.account if args.account else ''} in {store.location}.")
        return 1
    app = oauth.OAuthApp(
        client_id=tokens.client_id, client_secret=tokens.client_secret, api_base_url=tokens.api_base_url
    )
    revoked = True
    # Revoking the refresh token ends the whole grant; the access token too, in case X keeps it.
    for token, hint in ((tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")):
        if not token:
            continue
        try:
            await oauth.revoke(app, token, hint)
        except (oauth.GrantRejected, oauth.OAuthUnavailable) as exc:
            revoked = False
            print(f"xcourier: X did not confirm revoking the {hint.replace('_', ' ')} ({exc}).", file=sys.stderr)
    await store.delete(tokens.user_id)
    print(f"Logged out @{tokens.username}: {'revoked at X and ' if revoked else ''}deleted from {store.location}.")
    if not revoked:
        print("Revoke the app's access by hand at https://x.com/settings/connected_apps if needed.", file=sys.stderr)
    return 0
