"""What the tools need while the server runs: one X client (one connection pool), caches, media rules."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from xcourier.tools.client import StaticTokenProvider, TokenProvider, XClient, http_client
from xcourier.tools.media import MediaLoader
from xcourier.tools.users import UserDirectory

from .audit import DEFAULT_PRICES, AuditLog, Guards, Meter
from .auth.memory_store import MemoryTokenStore
from .auth.store import StoreError, TokenStore, open_store
from .auth.tokens import TokenManager
from .inventory import ToolSpec, select_tools
from .settings import APP_TOKEN_RECORD, ENV_ACCESS_TOKEN, Settings, SettingsError
from .watcher import Watcher

if TYPE_CHECKING:
    from xcourier.tools.activity import Backoff, Sleep

    from .fleet import Fleet
    from .hosted.tenants import Tenants
    from .push import PushSource
    from .sandbox import Sandbox, SandboxServer

logger = logging.getLogger("xcourier")

# Mint a new sandbox token this long before the current one expires.
_SANDBOX_TOKEN_MARGIN = 60.0


class SandboxTokenProvider:
    """Tokens for the in-process sandbox's demo user, minted again before they expire."""

    def __init__(self, sandbox: Sandbox, username: str = "xcourier_demo") -> None:
        self._sandbox = sandbox
        self._username = username
        self._token, self._expires_at = sandbox.mint_token(username)
        self._lock = anyio.Lock()

    async def access_token(self) -> str:
        async with self._lock:
            if self._expires_at - self._sandbox.now() < _SANDBOX_TOKEN_MARGIN:
                self._token, self._expires_at = self._sandbox.mint_token(self._username)
            return self._token

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        async with self._lock:
            if self._token == rejected:
                self._token, self._expires_at = self._sandbox.mint_token(self._username)
            return self._token


@dataclass(frozen=True)
class Policy:
    """How cautious to be with writes: --confirm and --dry-run."""

    confirm: str = "none"
    dry_run: bool = False

    def needs_confirmation(self, spec: ToolSpec) -> bool:
        if self.confirm == "writes":
            return spec.writes
        return self.confirm == "destructive" and bool(spec.annotations.destructive_hint)


@dataclass
class Account:
    """Whose X account a call acts on: its client (connection pool, rate limits), login, audit and limits."""

    name: str
    client: XClient
    users: UserDirectory
    tokens: TokenProvider
    audit: AuditLog
    guards: Guards
    user_id: str = ""  # hosted: the X user id (a username can pass to someone else)
    meter: Meter | None = None  # prices what the account's client reads from X (the client's meter hook)


class NoCallerError(RuntimeError):
    """Hosted mode reached X without an authenticated caller: refused rather than guessing an account."""


# Hosted mode: the account of the MCP request being handled (set per request by server.hosted.callers).
acting: ContextVar[Account | None] = ContextVar("xcourier_acting_account", default=None)


def acting_account() -> Account:
    account = acting.get()
    if account is None:
        raise NoCallerError("no authenticated caller for this request")
    return account


@dataclass(frozen=True)
class PushOptions:
    """How the X Activity API stream waits and gives up; tests pass their own (no real waits)."""

    sleep: Sleep | None = None
    backoff: Backoff | None = None
    stall_timeout: float | None = None


@dataclass
class Runtime:
    media: MediaLoader
    watcher: Watcher
    tools: tuple[ToolSpec, ...]
    home: Account | None  # the one account of a local server; None when hosted (one per caller)
    policy: Policy = Policy()
    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    sandbox: SandboxServer | None = None
    store: TokenStore | None = None
    tenants: Tenants | None = None  # hosted mode: the signed-in users' accounts
    push: PushSource | None = None  # X pushes new posts (X Activity API); None: every watched user is polled
    api_on_sandbox: bool = False  # the X API is an `xcourier sandbox` (set by serve.is_xcourier_sandbox)

    @property
    def hosted(self) -> bool:
        return self.tenants is not None

    @property
    def on_sandbox(self) -> bool:
        return self.sandbox is not None or self.api_on_sandbox

    @property
    def caller(self) -> Account:
        if self.home is not None and acting.get() is None:
            return self.home  # a local server: its one account
        return acting_account()

    @property
    def client(self) -> XClient:
        return self.caller.client

    @property
    def users(self) -> UserDirectory:
        return self.caller.users

    @property
    def tokens(self) -> TokenProvider:
        return self.caller.tokens

    @property
    def audit(self) -> AuditLog:
        return self.caller.audit

    @property
    def guards(self) -> Guards:
        return self.caller.guards

    @property
    def account(self) -> str:
        return self.caller.name

    def granted_scopes(self) -> frozenset[str] | None:
        """The login's scopes, or None when they are unknown (a bare access token, the sandbox)."""
        tokens = self.tokens
        return tokens.scopes if isinstance(tokens, TokenManager) else None

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        sandbox_server: SandboxServer | None = None,
        run_watcher: bool = True,
        clock: Callable[[], float] = time.time,
        run_push: bool | None = None,
        push_options: PushOptions | None = None,
    ) -> AsyncIterator[Runtime]:
        """Start what the settings ask for (the sandbox, the watcher loop, the push stream), and stop it
        all on exit.

        A running `sandbox_server` may be passed in (tests share one); it is then left running.
        Tests pass run_watcher=False and a clock, and drive polls themselves; push runs with the
        watcher unless `run_push` says otherwise.
        """
        owns_sandbox = sandbox_server is None
        tokens: TokenProvider
        store: TokenStore
        owner_id: str | None = None  # learnt from GET /2/users/me when not known here
        if settings.sandbox:
            if sandbox_server is None:
                from .sandbox import SandboxServer

                sandbox_server = SandboxServer(port=settings.sandbox_port, plan=settings.sandbox_plan).start()
            base_url = sandbox_server.base_url
            tokens = SandboxTokenProvider(sandbox_server.sandbox)
            # Sandbox posts die with the sandbox, so its watcher cursors (and audit) must not be kept.
            store = MemoryTokenStore()
            account = "xcourier_demo"
            logger.info("xcourier sandbox (an offline X emulator) at %s", base_url)
        elif settings.access_token:
            sandbox_server = None
            base_url = settings.api_base_url
            tokens = StaticTokenProvider(settings.access_token)
            store = open_configured_store(settings)
            account = "token"  # a bare access token doesn't say whose it is
            logger.info("acting on X at %s with the token from %s (never refreshed)", base_url, ENV_ACCESS_TOKEN)
        else:
            sandbox_server = None
            manager = await _stored_login(settings)
            tokens, store, base_url = manager, manager.store, manager.account.api_base_url
            account = manager.account.username
            # A login made with `xcourier auth login` uses the user's own X app: their reads of
            # their own data are X's Owned Reads.
            owner_id = manager.account.user_id or None
            logger.info("acting on X at %s as @%s", base_url, manager.account.username)
        prices = {**DEFAULT_PRICES, **dict(settings.prices)}
        audit = AuditLog(store, account, clock=clock)
        guards = Guards(
            audit, max_writes_per_hour=settings.max_writes_per_hour, daily_budget=settings.daily_budget, store=store
        )
        meter = Meter(audit, prices, owner_id=owner_id)
        client = XClient(tokens, base_url=base_url, meter=meter)
        users = UserDirectory(client)
        watcher = Watcher(
            client,
            users,
            store,
            cursor_scope=base_url,
            min_interval=settings.poll_interval,
            use_search=settings.watch_search,
            clock=clock,
            budget=guards,  # the watcher's reads are the account's: one budget for both
        )
        push = None
        if run_push if run_push is not None else run_watcher:
            push = await push_source(
                settings, base_url, store, watcher, meter, guards, sandbox_server, clock, push_options or PushOptions()
            )
        tools = tools_for(settings)
        home = Account(name=account, client=client, users=users, tokens=tokens, audit=audit, guards=guards, meter=meter)
        runtime = cls(
            media=MediaLoader(settings.media_roots, allowed_hosts=settings.media_allowed_hosts),
            watcher=watcher,
            tools=tools,
            home=home,
            policy=Policy(confirm=settings.confirm, dry_run=settings.dry_run),
            prices=prices,
            sandbox=sandbox_server,
            push=push,
        )
        try:
            async with anyio.create_task_group() as background:
                if run_watcher:
                    background.start_soon(watcher.run)
                if push is not None:
                    background.start_soon(push.run)
                    background.start_soon(push.maintain)
                if sandbox_server is not None and settings.sandbox_chatter:
                    background.start_soon(_chatter, sandbox_server.sandbox, settings.sandbox_chatter)
                yield runtime
                background.cancel_scope.cancel()
        finally:
            if push is not None:
                with anyio.CancelScope(shield=True):
                    await push.aclose()
                await push.close_transport()
            await client.aclose()
            await store.aclose()
            if sandbox_server is not None and owns_sandbox:
                sandbox_server.stop()


async def push_source(
    settings: Settings,
    base_url: str,
    store: TokenStore,
    watcher: Watcher,
    meter: Meter,
    guards: Guards,
    sandbox_server: SandboxServer | None,
    clock: Callable[[], float],
    options: PushOptions,
    fleet: Fleet | None = None,
) -> PushSource | None:
    """X pushes new posts when --watch auto (the default) and the X app's Bearer Token is known
    (hosted: one stream for the `fleet`)."""
    if settings.watch == "poll":
        return None
    if sandbox_server is not None:
        token: str | None = sandbox_server.sandbox.activity.mint_app_token()
    else:
        token = settings.app_bearer_token or await _stored_app_token(store, base_url)
    if not token:
        logger.info(
            "newPost: polling (no X app Bearer Token; set XCOURIER_APP_BEARER_TOKEN or run `xcourier auth app` "
            "to have X push new posts)"
        )
        return None
    import httpx

    from xcourier.tools.activity import STREAM, ActivityClient

    from .push import PushSource

    app_tokens = StaticTokenProvider(token)
    # The app's own calls are billed to the same X app: one meter, one budget.
    app = XClient(app_tokens, base_url=base_url, meter=meter)
    push = PushSource(
        ActivityClient(app),
        watcher,
        # The stream holds its connection for ever: a pool of its own, so it never starves the calls.
        http=lambda: http_client(limits=httpx.Limits(max_connections=2)),
        stream_url=base_url + STREAM,
        tokens=app_tokens,
        store=store,
        meter=meter,
        budget=guards,
        clock=clock,
        sleep=options.sleep,
        backoff=options.backoff,
        stall_timeout=options.stall_timeout,
        fleet=fleet,
    )
    push.transports = (app,)
    logger.info("newPost: X pushes new posts (X Activity API); users it won't push are polled")
    return push


async def _stored_app_token(store: TokenStore, base_url: str) -> str | None:
    try:
        record = await store.get_record(APP_TOKEN_RECORD, base_url)
    except StoreError as exc:
        logger.warning("newPost: could not read the stored X app Bearer Token (%s); polling", exc)
        return None
    token = record.get("token") if record else None
    return token if isinstance(token, str) and token else None


def tools_for(settings: Settings) -> tuple[ToolSpec, ...]:
    try:
        return select_tools(
            read_only=settings.read_only,
            allow=settings.tools,
            deny=settings.exclude_tools,
            toolsets=settings.toolsets,
        )
    except ValueError as exc:
        raise SettingsError(f"--toolsets/--tools/--exclude-tools: {exc}") from None


def open_configured_store(settings: Settings) -> TokenStore:
    try:
        return open_store(settings.store, sealed_only=settings.auth == "x")
    except StoreError as exc:
        raise SettingsError(str(exc)) from None


async def _chatter(sandbox: Sandbox, every: float) -> None:
    """`--sandbox-chatter N`: bob posts every N seconds, so a subscriber sees updates arrive."""
    bob = sandbox.user_by_username("bob")
    assert bob is not None
    count = 0
    while True:
        await anyio.sleep(every)
        count += 1
        sandbox.create_post(bob, f"bob's chatter #{count} at {time.strftime('%H:%M:%S')}", None)


async def _stored_login(settings: Settings) -> TokenManager:
    try:
        store = open_store(settings.store)
        tokens = await store.load(settings.account)
        if tokens is None and settings.account is not None:
            known = ", ".join(f"@{t.username}" for t in await store.list_accounts()) or "none"
            raise SettingsError(
                f"--account {settings.account}: no such login in {store.location} (logged in: {known}). "
                "Run `xcourier auth login` to add it."
            )
    except StoreError as exc:
        raise SettingsError(str(exc)) from None
    if tokens is None:
        raise SettingsError(
            "No X login. Log in once with `xcourier auth login` (see README: setting up the X app), or set "
            "XCOURIER_ACCESS_TOKEN to an OAuth 2.0 user access token, or try xcourier without an account: "
            "`xcourier serve --sandbox`."
        )
    return TokenManager(store, tokens)
