"""The `xcourier` command: serve, sandbox, demo.

Imports stay inside the commands: a stdio server is spawned per client session, so
start-up time is the user's wait.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .settings import (
    ENV_ACCESS_TOKEN,
    ENV_API_BASE_URL,
    ENV_LOG_LEVEL,
    ENV_MEDIA_ROOTS,
    ENV_POLL_INTERVAL,
    Settings,
    SettingsError,
    check_api_base_url,
    check_media_roots,
    is_loopback_host,
    media_roots_from_env,
)

logger = logging.getLogger("xcourier")


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0-65535)")
    return port


def _positive(value: float, flag: str) -> float:
    if not value > 0:
        raise SettingsError(f"{flag} {value}: must be a number of seconds above 0.")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xcourier",
        description="An MCP server that acts on X: post, delete, like, repost, send DMs.",
    )
    parser.add_argument("--version", action="version", version=f"xcourier {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the MCP server (stdio by default)",
        description="Run the MCP server. Logs go to stderr; on stdio, stdout carries only MCP messages.",
        epilog=(
            f"Environment: {ENV_ACCESS_TOKEN} (an OAuth 2.0 user access token, used as is), "
            f"{ENV_API_BASE_URL}, {ENV_MEDIA_ROOTS} (folders separated by '{os.pathsep}'), {ENV_LOG_LEVEL}."
        ),
    )
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="act on the built-in X API sandbox (offline, no account needed) instead of X",
    )
    serve.add_argument(
        "--sandbox-port",
        type=_port,
        default=0,
        metavar="P",
        help="with --sandbox: serve the sandbox on 127.0.0.1:P so its admin API can be reached (default: free port)",
    )
    serve.add_argument(
        "--sandbox-chatter",
        type=float,
        default=0.0,
        metavar="N",
        help="with --sandbox: the account bob posts every N seconds, to see newPost updates arrive (default off)",
    )
    serve.add_argument(
        "--poll-interval",
        type=float,
        metavar="S",
        help=f"newPost: never poll a user more often than every S seconds (default 60; env {ENV_POLL_INTERVAL})",
    )
    serve.add_argument(
        "--no-search",
        action="store_true",
        help="newPost: poll each user's timeline instead of folding users into recent-search queries",
    )
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    serve.add_argument("--host", default="127.0.0.1", help="http: address to bind (loopback only; default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="http: port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--api-base-url", metavar="URL", help=f"X API base URL (default https://api.x.com; env {ENV_API_BASE_URL})"
    )
    serve.add_argument(
        "--media-root",
        action="append",
        type=Path,
        default=None,
        metavar="DIR",
        help="allow attaching local image files from DIR (repeatable; none by default)",
    )
    serve.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default INFO")
    serve.add_argument(
        "--account", metavar="NAME", help="which stored login to act as: username or user id (default: the last)"
    )
    serve.add_argument(
        "--store", metavar="PATH", help="token store file (default: XCOURIER_STORE, else the user data directory)"
    )

    sandbox = commands.add_parser(
        "sandbox",
        help="run the X API sandbox alone",
        description="Run the X API sandbox on loopback and print one JSON line with its URL and a token.",
    )
    sandbox.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: any free port)")

    from .auth.commands import add_parser as add_auth_parser

    add_auth_parser(commands)

    commands.add_parser(
        "demo",
        help="start `xcourier serve --sandbox`, call every tool through an MCP client, show the transcript",
    )
    return parser


def settings_from_args(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    media_roots = tuple(args.media_root) if args.media_root else media_roots_from_env(environ)
    api_base_url = args.api_base_url or environ.get(ENV_API_BASE_URL) or Settings.api_base_url
    if args.transport == "http" and not is_loopback_host(args.host):
        raise SettingsError(
            f"--host {args.host}: xcourier serves HTTP on loopback only, since it has no client "
            "authentication yet and anyone reaching the port could act on the account. Use 127.0.0.1 "
            "and put a reverse proxy with authentication in front if you need remote access."
        )
    return Settings(
        transport=args.transport,
        host=args.host,
        port=args.port,
        sandbox=args.sandbox,
        sandbox_port=args.sandbox_port,
        api_base_url=check_api_base_url(api_base_url),
        media_roots=check_media_roots(media_roots),
        log_level=args.log_level or environ.get(ENV_LOG_LEVEL, "INFO").upper(),
        access_token=environ.get(ENV_ACCESS_TOKEN) or None,
        poll_interval=_positive(args.poll_interval or float(environ.get(ENV_POLL_INTERVAL) or 60.0), "--poll-interval"),
        watch_search=not args.no_search,
        sandbox_chatter=_positive(args.sandbox_chatter, "--sandbox-chatter") if args.sandbox_chatter else 0.0,
        store=args.store,
        account=args.account,
    )


def configure_logging(level: str) -> None:
    # stderr only: on stdio, stdout is the MCP channel.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "sandbox":
        return _sandbox(args)
    if args.command == "auth":
        configure_logging("WARNING")
        from .auth.commands import run

        return run(args, dict(os.environ))
    from .demo import run_demo

    return run_demo()


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, dict(os.environ))
    except SettingsError as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    import anyio

    from .serve import serve

    try:
        anyio.run(serve, settings)
    except SettingsError as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    from .sandbox import SandboxServer

    server = SandboxServer(port=args.port).start()
    from .sandbox import CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, PUBLIC_CLIENT_ID

    token, _ = server.sandbox.mint_token("xcourier_demo")
    line = {
        "base_url": server.base_url,
        "access_token": token,
        "username": "xcourier_demo",
        "client_id": PUBLIC_CLIENT_ID,
        "confidential_client_id": CONFIDENTIAL_CLIENT_ID,
        "confidential_client_secret": CONFIDENTIAL_CLIENT_SECRET,
    }
    print(json.dumps(line), flush=True)
    try:
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
