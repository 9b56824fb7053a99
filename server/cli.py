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
from typing import Any

from . import __version__
from .config_file import ConfigError, load_config, section
from .sandbox.plans import DEFAULT_PLAN, PLANS
from .settings import (
    ENV_ACCESS_TOKEN,
    ENV_API_BASE_URL,
    ENV_APP_BEARER_TOKEN,
    ENV_LOG_LEVEL,
    ENV_MEDIA_ALLOW_HOSTS,
    ENV_MEDIA_ROOTS,
    ENV_POLL_INTERVAL,
    ENV_WATCH,
    ENV_X_CLIENT_ID,
    ENV_X_CLIENT_SECRET,
    Settings,
    SettingsError,
    check_api_base_url,
    check_media_roots,
    check_public_url,
    is_loopback_host,
    media_roots_from_env,
    port_number,
)

logger = logging.getLogger("xcourier")


def _positive(value: float, flag: str) -> float:
    if not value > 0:
        raise SettingsError(f"{flag} {value}: must be a number of seconds above 0.")
    return value


def _poll_interval(flag: float | None, environ: dict[str, str]) -> float:
    # 0 must be refused, not read as "unset": `or` would quietly turn it into the 60 s default.
    if flag is not None:
        return _positive(flag, "--poll-interval")
    raw = environ.get(ENV_POLL_INTERVAL, "").strip()
    if not raw:
        return 60.0
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{ENV_POLL_INTERVAL}={raw!r}: not a number of seconds.") from None
    return _positive(value, ENV_POLL_INTERVAL)


def build_parser(*, serve_only: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with `serve_only`, `xcourier serve` alone (what main uses for `serve`: the
    other commands' parsers import their machinery, ~10 ms of a stdio server's start-up for nothing)."""
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
        type=port_number,
        default=0,
        metavar="P",
        help="with --sandbox: serve the sandbox on 127.0.0.1:P so its admin API can be reached (default: free port)",
    )
    serve.add_argument(
        "--sandbox-plan",
        choices=PLANS,
        metavar="PLAN",
        help=f"with --sandbox: the X plan the sandbox plays, one of {', '.join(PLANS)} (default {DEFAULT_PLAN}, "
        "what a new X developer gets; self-serve plans refuse likes, enterprise allows them)",
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
    serve.add_argument(
        "--watch",
        choices=("auto", "poll"),
        help="newPost: auto (default) lets X push new posts where it can (X Activity API, with the app's Bearer "
        f"Token from {ENV_APP_BEARER_TOKEN} or `xcourier auth app`); poll never asks X to push (env {ENV_WATCH})",
    )
    switches = serve.add_argument_group(
        "safety switches",
        "Each can also be set in the environment (XCOURIER_TOOLSETS, XCOURIER_READ_ONLY=1, XCOURIER_TOOLS, "
        "XCOURIER_EXCLUDE_TOOLS, XCOURIER_CONFIRM, XCOURIER_DRY_RUN=1, XCOURIER_MAX_WRITES_PER_HOUR, "
        "XCOURIER_DAILY_BUDGET) or in the config file's [serve] table (toolsets, read_only, tools, exclude_tools, "
        "confirm, dry_run, max_writes_per_hour, daily_budget; prices in [pricing]). Flags win over the "
        "environment, which wins over the file.",
    )
    switches.add_argument(
        "--read-only", action="store_true", default=None, help="expose only read tools and the newPost resource"
    )
    switches.add_argument(
        "--toolsets",
        metavar="SET,...",
        help="expose these toolsets: posting, engagement, messages, reading, watching, default (the tools "
        "exposed without this flag), all",
    )
    switches.add_argument("--tools", metavar="NAME,...", help="expose only these tools")
    switches.add_argument("--exclude-tools", metavar="NAME,...", help="never expose these tools")
    switches.add_argument(
        "--confirm",
        choices=("none", "destructive", "writes"),
        help="ask the user (MCP elicitation) before deletePost (destructive) or before every write; default none",
    )
    switches.add_argument(
        "--dry-run", action="store_true", default=None, help="validate writes and show what would be sent; send nothing"
    )
    switches.add_argument("--max-writes-per-hour", type=int, metavar="N", help="refuse writes past N per hour")
    switches.add_argument(
        "--daily-budget", type=float, metavar="USD", help="refuse calls that would pass this spend in 24 h"
    )
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="http: address to bind (default 127.0.0.1; other addresses need --auth x or --insecure-no-auth)",
    )
    serve.add_argument("--port", type=port_number, default=8000, help="http: port (default 8000; 0 picks a free one)")
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
    serve.add_argument(
        "--media-allow-host",
        action="append",
        default=None,
        metavar="HOST",
        help="fetch remote media from HOST even if it resolves to a private address (repeatable; none by default)",
    )
    serve.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default INFO")
    serve.add_argument(
        "--account", metavar="NAME", help="which stored login to act as: username or user id (default: the last)"
    )
    serve.add_argument(
        "--store", metavar="PATH", help="token store file (default: XCOURIER_STORE, else the user data directory)"
    )

    hosted = serve.add_argument_group(
        "hosted mode",
        "Many users on one HTTP endpoint: each signs in with X through OAuth and acts only as themselves. "
        f"The X app's credentials come from {ENV_X_CLIENT_ID} and {ENV_X_CLIENT_SECRET}; the store must be "
        "encrypted (XCOURIER_STORE_KEY) and, for more than one instance, on Redis.",
    )
    hosted.add_argument(
        "--auth",
        choices=("none", "x"),
        default="none",
        help="x: require MCP authorization; xcourier's own OAuth server signs users in with X (http only)",
    )
    hosted.add_argument(
        "--public-url", metavar="URL", help="the origin clients reach this server at (default: the bound address)"
    )
    hosted.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a non-loopback --host without --auth, for a trusted network only: anyone reaching it acts "
        "as the server's account",
    )
    hosted.add_argument(
        "--lease-ttl",
        type=float,
        default=15.0,
        metavar="S",
        help="with several instances: a dead poller's users are taken over after S seconds (default 15)",
    )
    hosted.add_argument(
        "--client-metadata-allow-host",
        action="append",
        default=None,
        metavar="HOST",
        help="fetch Client ID Metadata Documents from HOST even if it resolves to a private address",
    )
    if serve_only:
        return parser

    sandbox = commands.add_parser(
        "sandbox",
        help="run the X API sandbox alone",
        description="Run the X API sandbox on loopback and print one JSON line with its URL and a token.",
    )
    sandbox.add_argument("--port", type=port_number, default=0, help="port on 127.0.0.1 (default: any free port)")
    sandbox.add_argument(
        "--plan",
        choices=PLANS,
        default=DEFAULT_PLAN,
        metavar="PLAN",
        help=f"the X plan to play: {', '.join(PLANS)} (default {DEFAULT_PLAN}, what a new X developer gets)",
    )

    audit = commands.add_parser(
        "audit",
        help="show what was done on the account: every write and refusal, with running totals",
        description="The audit trail kept in the store: time, account, tool, X ids, outcome and estimated cost.",
    )
    audit.add_argument(
        "--since", default="24h", metavar="DURATION", help="how far back, e.g. 30m, 2h, 7d (default 24h)"
    )
    audit.add_argument("--store", metavar="PATH", help="token store (default: XCOURIER_STORE or user data dir)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")

    from .auth.commands import add_parser as add_auth_parser

    add_auth_parser(commands)

    commands.add_parser(
        "demo",
        help="start `xcourier serve --sandbox`, call every tool through an MCP client, show the transcript",
    )
    _add_connect_and_doctor(commands)
    return parser


def _add_connect_and_doctor(commands: Any) -> None:
    from .connect import CLIENTS

    connect = commands.add_parser(
        "connect",
        help="add xcourier to an MCP client's configuration (VS Code, Cursor, Claude Desktop, Claude Code)",
        description="Write this xcourier, by absolute path, into the client's MCP configuration: other servers in "
        "the file are kept, and the previous file is saved as FILE.bak. VS Code and Claude Code: the "
        "current folder's .vscode/mcp.json and .mcp.json; Cursor: ~/.cursor/mcp.json; Claude Desktop: its "
        "claude_desktop_config.json.",
    )
    connect.add_argument("client", choices=CLIENTS, help="which client to configure")
    connect.add_argument("--sandbox", action="store_true", help="serve the built-in X API sandbox (no account)")
    connect.add_argument("--read-only", action="store_true", help="expose only read tools and the newPost resource")
    connect.add_argument("--print", action="store_true", dest="print_only", help="print the entry; write nothing")
    connect.add_argument("--name", help="server name in the client (default: xcourier, or xcourier-sandbox)")
    connect.add_argument("--file", type=Path, metavar="PATH", help="write this file instead of the client's default")

    doctor = commands.add_parser(
        "doctor",
        help="check the install, the store, the login, X's reachability and the clock; say what to fix",
        description="Exit code 0 only when no check fails. Refreshing the login is a real rotation, saved to "
        "the store the way the server does it (--no-refresh to skip it). Tokens are never printed.",
    )
    doctor.add_argument("--store", metavar="PATH", help="token store (default: XCOURIER_STORE or user data dir)")
    doctor.add_argument("--account", metavar="NAME", help="which stored login (default: the last)")
    doctor.add_argument("--api-base-url", metavar="URL", help=f"X API base URL to check (env {ENV_API_BASE_URL})")
    doctor.add_argument("--no-refresh", action="store_true", help="don't try a refresh of the login")


def settings_from_args(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    media_roots = tuple(args.media_root) if args.media_root else media_roots_from_env(environ)
    api_base_url = args.api_base_url or environ.get(ENV_API_BASE_URL) or Settings.api_base_url
    _check_exposure(args, environ)
    config = section(load_config(environ), "serve")
    pricing = section(load_config(environ), "pricing")
    switch = _Switches(args, environ, config)
    return Settings(
        read_only=switch.flag("read_only", "XCOURIER_READ_ONLY"),
        toolsets=_toolsets(switch.names("toolsets", "XCOURIER_TOOLSETS")),
        tools=switch.names("tools", "XCOURIER_TOOLS"),
        exclude_tools=switch.names("exclude_tools", "XCOURIER_EXCLUDE_TOOLS") or (),
        confirm=switch.choice("confirm", "XCOURIER_CONFIRM", ("none", "destructive", "writes"), "none"),
        dry_run=switch.flag("dry_run", "XCOURIER_DRY_RUN"),
        max_writes_per_hour=switch.number("max_writes_per_hour", "XCOURIER_MAX_WRITES_PER_HOUR", int),
        daily_budget=switch.number("daily_budget", "XCOURIER_DAILY_BUDGET", float),
        prices=_prices(pricing),
        transport=args.transport,
        host=args.host,
        port=args.port,
        sandbox=args.sandbox,
        sandbox_port=args.sandbox_port,
        sandbox_plan=_sandbox_plan(args),
        api_base_url=check_api_base_url(api_base_url),
        media_roots=check_media_roots(media_roots),
        media_allowed_hosts=tuple(args.media_allow_host or ())
        or tuple(h.strip() for h in environ.get(ENV_MEDIA_ALLOW_HOSTS, "").split(",") if h.strip()),
        log_level=args.log_level or environ.get(ENV_LOG_LEVEL, "INFO").upper(),
        access_token=environ.get(ENV_ACCESS_TOKEN) or None,
        poll_interval=_poll_interval(args.poll_interval, environ),
        watch_search=not args.no_search,
        watch=switch.choice("watch", ENV_WATCH, ("auto", "poll"), "auto"),
        app_bearer_token=environ.get(ENV_APP_BEARER_TOKEN) or config.get("app_bearer_token") or None,
        sandbox_chatter=_positive(args.sandbox_chatter, "--sandbox-chatter") if args.sandbox_chatter else 0.0,
        store=args.store,
        account=args.account,
        auth=args.auth,
        public_url=check_public_url(args.public_url) if args.public_url else None,
        insecure_no_auth=args.insecure_no_auth,
        x_client_id=environ.get(ENV_X_CLIENT_ID) or None,
        x_client_secret=environ.get(ENV_X_CLIENT_SECRET) or None,
        lease_ttl=_positive(args.lease_ttl, "--lease-ttl"),
        client_metadata_allowed_hosts=tuple(args.client_metadata_allow_host or ()),
    )


def _toolsets(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    from .inventory import check_toolsets  # the inventory imports the MCP SDK: only when asked

    try:
        return check_toolsets(names)
    except ValueError as exc:
        raise SettingsError(f"--toolsets: {exc}.") from None


def _sandbox_plan(args: argparse.Namespace) -> str:
    if args.sandbox_plan is not None and not args.sandbox:
        raise SettingsError("--sandbox-plan: only with --sandbox (a real X account's plan is set in the X console).")
    return args.sandbox_plan or DEFAULT_PLAN


def _check_exposure(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """Who can reach the server decides what it must ask of them."""
    if args.auth == "x":
        if args.transport != "http":
            raise SettingsError("--auth x: MCP authorization needs --transport http (stdio has no users to sign in).")
        if args.sandbox or environ.get(ENV_ACCESS_TOKEN):
            raise SettingsError(
                f"--auth x: every user signs in with X, so --sandbox and {ENV_ACCESS_TOKEN} don't apply; point "
                "--api-base-url at a sandbox started with `xcourier sandbox` to try hosted mode offline."
            )
        if not environ.get(ENV_X_CLIENT_ID):
            raise SettingsError(
                f"--auth x: set {ENV_X_CLIENT_ID} (and {ENV_X_CLIENT_SECRET} for a confidential app) to your X "
                "app's OAuth 2.0 client; its callback URL must be <public-url>/x/callback."
            )
        if not environ.get("XCOURIER_STORE_KEY"):
            raise SettingsError(
                "--auth x: X logins of many users are kept in the store, so it must be encrypted: set "
                "XCOURIER_STORE_KEY to a key of 32 url-safe base64 bytes, as Fernet.generate_key() makes one (the "
                "store derives its AES-256-GCM keys from it; see README, hosted mode)."
            )
        if not is_loopback_host(args.host) and not (args.public_url or "").startswith("https://"):
            raise SettingsError(
                f"--host {args.host}: give --public-url, the https origin users reach this server at (tokens "
                "and sign-in codes must not cross a network in the clear)."
            )
        return
    if args.transport == "http" and not is_loopback_host(args.host):
        if not args.insecure_no_auth:
            raise SettingsError(
                f"--host {args.host}: anyone reaching this address could act on the server's X account. Use "
                "--auth x (each user signs in with X), or --insecure-no-auth on a network you trust."
            )
        logger.warning(
            "serving on %s without authentication (--insecure-no-auth): anyone who reaches it acts as the "
            "server's X account",
            args.host,
        )


class _Switches:
    """A switch's value: its flag, else its environment variable, else the config file, else off."""

    def __init__(self, args: argparse.Namespace, environ: dict[str, str], config: dict[str, Any]) -> None:
        self._args, self._environ, self._config = args, environ, config

    def _raw(self, name: str, env: str) -> Any:
        value = getattr(self._args, name)
        if value is not None:
            return value
        if env in self._environ:
            return self._environ[env]
        return self._config.get(name)

    def flag(self, name: str, env: str) -> bool:
        value = self._raw(name, env)
        if isinstance(value, str):
            if value.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                raise SettingsError(f"{env}={value!r}: use 1 or 0.")
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)

    def names(self, name: str, env: str) -> tuple[str, ...] | None:
        value = self._raw(name, env)
        if value is None:
            return None
        items = value if isinstance(value, list) else str(value).split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())

    def choice(self, name: str, env: str, choices: tuple[str, ...], default: str) -> Any:
        value = self._raw(name, env) or default
        if value not in choices:
            raise SettingsError(f"{name.replace('_', '-')} {value!r}: choose one of {', '.join(choices)}.")
        return value

    def number(self, name: str, env: str, kind: type[int] | type[float]) -> Any:
        value = self._raw(name, env)
        if value is None:
            return None
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise SettingsError(f"--{name.replace('_', '-')} {value!r}: not a number.") from None
        if number <= 0:
            raise SettingsError(f"--{name.replace('_', '-')} {value!r}: must be above 0.")
        return number


def _prices(pricing: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    from .audit import DEFAULT_PRICES

    unknown = sorted(set(pricing) - set(DEFAULT_PRICES))
    if unknown:
        raise SettingsError(f"[pricing] {', '.join(unknown)}: unknown; the keys are {', '.join(DEFAULT_PRICES)}.")
    prices: list[tuple[str, float]] = []
    for key, value in pricing.items():
        # TOML's true would pass float() as 1.0 USD.
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SettingsError(
                f"[pricing] {key} = {value!r}: expected a price in USD, 0 or more (e.g. {key} = {DEFAULT_PRICES[key]})."
            )
        prices.append((key, float(value)))
    return tuple(prices)


class _LogFormatter(logging.Formatter):
    """Below DEBUG, an expected failure logged with its exception (the store can't be reached, a connection
    dropped) is one line: a retrying loop then logs one line per attempt, not a traceback each time."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        expected = None if self._tracebacks or not record.exc_info else _expected_failure(record.exc_info[1])
        if expected is not None:
            # A copy: other handlers (a test's collector) still get the record as logged.
            record = logging.makeLogRecord(record.__dict__)
            record.msg, record.args = f"{record.getMessage()} ({_one_line(expected)})", None
            record.exc_info = record.exc_text = None
        return super().format(record)


def _expected_failure(exc: BaseException | None) -> BaseException | None:
    """`exc`, or the first failure inside its groups, if it is one a user fixes outside xcourier (not a bug)."""
    from .auth.store import StoreUnavailableError

    expected: tuple[type[BaseException], ...] = (StoreUnavailableError, ConnectionError)
    if "redis.exceptions" in sys.modules:
        redis_errors = sys.modules["redis.exceptions"]
        expected += (redis_errors.ConnectionError, redis_errors.TimeoutError)
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_expected_failure(inner) for inner in exc.exceptions]
        return leaves[0] if leaves and all(leaves) else None
    return exc if isinstance(exc, expected) else None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def configure_logging(level: str) -> None:
    # stderr only: on stdio, stdout is the MCP channel.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter(tracebacks=level == "DEBUG"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Third-party loggers (httpx, httpx2, mcp, uvicorn...) stay at WARNING unless DEBUG is asked for:
    # their INFO lines are per-request chatter on the user's terminal.
    root.setLevel(level if level == "DEBUG" else max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("xcourier").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(serve_only=argv[:1] == ["serve"]).parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "sandbox":
        return _sandbox(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "auth":
        configure_logging("WARNING")
        from .auth.commands import run

        return run(args, _environ())
    if args.command == "connect":
        from .connect import run_connect

        return run_connect(
            args.client,
            sandbox=args.sandbox,
            read_only=args.read_only,
            print_only=args.print_only,
            name=args.name,
            file=args.file,
        )
    if args.command == "doctor":
        configure_logging("ERROR")
        from .doctor import Options, run_doctor

        options = Options(store=args.store, account=args.account, api_base_url=args.api_base_url)
        options.refresh = not args.no_refresh
        return run_doctor(options, _environ())
    from .demo import run_demo

    return run_demo()


def _environ() -> dict[str, str]:
    """The environment, with the X app's credentials under both names: `auth login` documents
    XCOURIER_CLIENT_ID, hosted mode XCOURIER_X_CLIENT_ID; either works for both."""
    env = dict(os.environ)
    for short, long in (("XCOURIER_CLIENT_ID", ENV_X_CLIENT_ID), ("XCOURIER_CLIENT_SECRET", ENV_X_CLIENT_SECRET)):
        if env.get(short) and not env.get(long):
            env[long] = env[short]
        elif env.get(long) and not env.get(short):
            env[short] = env[long]
    return env


def _address_in_use(exc: BaseException) -> OSError | None:
    """The "address already in use" error inside `exc`, however deep in exception groups and causes."""
    import errno

    if isinstance(exc, OSError) and (exc.errno == errno.EADDRINUSE or "address already in use" in str(exc).lower()):
        return exc
    inner: list[BaseException] = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else []
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    for candidate in inner:
        found = _address_in_use(candidate)
        if found is not None:
            return found
    return None


def _store_unavailable(exc: BaseException) -> BaseException | None:
    """The StoreUnavailableError behind `exc` (in groups, causes, or the error a SettingsError replaced)."""
    from .auth.store import StoreUnavailableError

    if isinstance(exc, StoreUnavailableError):
        return exc
    inner: list[BaseException] = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else []
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    return next((found for e in inner if (found := _store_unavailable(e)) is not None), None)


def _port_in_use_message(ports: list[tuple[str, int]]) -> str:
    named = " or ".join(f"{flag} {port}" for flag, port in ports) or "the port"
    return (
        f"xcourier: {named}: address already in use (another xcourier or program is listening there). Stop it, "
        "pick another port, or pass 0 for any free one."
    )


def _warm_tls_context() -> threading.Thread:
    """Build the process's TLS context (tools.client.tls_context) in a thread while the main thread imports mcp.

    Loading certifi's CA bundle takes ~20 ms, and OpenSSL parses it without holding the GIL, so on a
    second core it costs the spawn-to-tools/list wait nothing. Joined before the server starts, so the
    runtime's clients find it built and no second one is made.
    """
    from xcourier.tools.client import tls_context

    thread = threading.Thread(target=tls_context, name="xcourier-tls-warm-up", daemon=True)
    thread.start()
    return thread


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, _environ())
    except (SettingsError, ConfigError) as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    warm_up = _warm_tls_context()
    import anyio

    from .serve import serve

    warm_up.join()

    if settings.transport == "stdio" and sys.stdin.isatty():
        print(
            "xcourier: waiting for an MCP client on stdin (Ctrl-C to stop). To try it, run `xcourier demo`; to add "
            "it to a client, `xcourier connect vscode|cursor|claude-desktop|claude-code`.",
            file=sys.stderr,
            flush=True,
        )
    from .auth.store import EXIT_STORE_UNAVAILABLE

    try:
        anyio.run(serve, settings)
    except SettingsError as exc:
        unavailable = _store_unavailable(exc)
        if unavailable is not None:
            logger.debug("the store can't be reached", exc_info=unavailable)  # with --log-level DEBUG
        print(f"xcourier: {exc}", file=sys.stderr)
        return EXIT_STORE_UNAVAILABLE if unavailable is not None else 2
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        unavailable = _store_unavailable(exc)
        if unavailable is not None:
            logger.debug("the store can't be reached", exc_info=exc)  # the traceback, with --log-level DEBUG
            print(f"xcourier: {unavailable}", file=sys.stderr)
            return EXIT_STORE_UNAVAILABLE
        if _address_in_use(exc) is None:
            raise
        logger.debug("bind failed", exc_info=exc)  # the traceback, with --log-level DEBUG
        ports = [("--port", settings.port)] if settings.transport == "http" and settings.port else []
        if settings.sandbox and settings.sandbox_port:
            ports.append(("--sandbox-port", settings.sandbox_port))
        print(_port_in_use_message(ports), file=sys.stderr)
        return 3
    return 0


def _audit(args: argparse.Namespace) -> int:
    import anyio

    from .audit import AuditLog, Guards, parse_duration, render
    from .auth.store import EXIT_STORE_UNAVAILABLE, StoreError, StoreUnavailableError, open_store

    try:
        since = parse_duration(args.since)
        store = open_store(args.store)
        log = AuditLog(store, account="")
        entries = anyio.run(log.since, since)
        config = section(load_config(dict(os.environ)), "serve")
        guards = Guards(
            log, max_writes_per_hour=config.get("max_writes_per_hour"), daily_budget=config.get("daily_budget")
        )
        totals = anyio.run(guards.totals)
    except (ValueError, StoreError, ConfigError) as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return EXIT_STORE_UNAVAILABLE if isinstance(exc, StoreUnavailableError) else 2
    if args.json:
        for entry in entries:
            print(json.dumps({"at": entry.at, **entry.record()}, ensure_ascii=False))
        print(json.dumps({"totals": totals}))
    else:
        print(f"audit trail in {store.location}, last {args.since}:")
        print(render(entries, totals) if entries else "nothing recorded\n" + render([], totals))
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    from .sandbox import SandboxServer

    try:
        server = SandboxServer(port=args.port, plan=args.plan).start()
    except OSError as exc:
        if _address_in_use(exc) is None:
            raise
        print(_port_in_use_message([("--port", args.port)]), file=sys.stderr)
        return 3
    from .sandbox import CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, PUBLIC_CLIENT_ID

    token, _ = server.sandbox.mint_token("xcourier_demo")
    line = {
        "base_url": server.base_url,
        "plan": args.plan,
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
