"""`xcourier auth app`: keep the X app's Bearer Token in the store, for the X Activity API (push).

The token is the app's own credential (the X console's "Bearer Token", OAuth 2.0 App-Only), not a
user's login: it is read from standard input (a hidden prompt on a terminal), never from the
command line, and never printed. It is kept under the API base URL it is for, sealed like a login
when the store has XCOURIER_STORE_KEY.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from ..settings import APP_TOKEN_RECORD, ENV_APP_BEARER_TOKEN, SettingsError, check_api_base_url
from .store import StoreError, open_store

# Records need a lifetime; an app's Bearer Token lasts until it is regenerated in the X console.
_KEEP_SECONDS = 10 * 365 * 24 * 3600.0


def add_parser(actions: Any) -> None:
    app = actions.add_parser(
        "app",
        help="store the X app's Bearer Token, so X pushes new posts (X Activity API)",
        description="Reads the X app's Bearer Token (X console: your app, Keys and tokens, Bearer Token) from "
        f"standard input and keeps it in the token store. {ENV_APP_BEARER_TOKEN} overrides it. The token is "
        "never printed.",
    )
    app.add_argument("--api-base-url", metavar="URL", default="https://api.x.com", help="default https://api.x.com")
    app.add_argument("--store", metavar="PATH", help="token store (default: XCOURIER_STORE or user data dir)")
    app.add_argument("--remove", action="store_true", help="forget the stored Bearer Token")


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    try:
        return anyio.run(_run, args, environ)
    except (StoreError, SettingsError) as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    base_url = check_api_base_url(args.api_base_url)
    store = open_store(args.store, environ=environ)
    try:
        if args.remove:
            await store.delete_record(APP_TOKEN_RECORD, base_url)
            print(f"Forgot the X app's Bearer Token for {base_url} in {store.location}.")
            return 0
        token = _read_token()
        if not token:
            print("xcourier: standard input gave no Bearer Token (an empty line); nothing stored.", file=sys.stderr)
            return 1
        await store.put_record(APP_TOKEN_RECORD, base_url, {"token": token}, _KEEP_SECONDS)
    finally:
        await store.aclose()
    print(f"Stored the X app's Bearer Token for {base_url} in {store.location}: newPost is pushed by X from now on.")
    return 0


def _read_token() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("X app Bearer Token (not shown): ").strip()
    return sys.stdin.readline().strip()
