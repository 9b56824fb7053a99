"""What the tools need while the server runs: one X client (one connection pool), caches, media rules."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from xcourier.tools.client import StaticTokenProvider, TokenProvider, XClient
from xcourier.tools.media import MediaLoader
from xcourier.tools.users import UserDirectory

from .audit import DEFAULT_PRICES, AuditLog, Guards
from .auth.memory_store import MemoryTokenStore
from .auth.store import StoreError, TokenStore, open_store
from .auth.tokens import TokenManager
from .inventory import ToolSpec, select_tools
from .settings import ENV_ACCESS_TOKEN, Settings, SettingsError
from .watcher import Watcher

if TYPE_CHECKING:
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
class Runtime:
    client: XClient
    users: UserDirectory
    media: MediaLoader
    tokens: TokenProvider
    watcher: Watcher
    audit: AuditLog
    guards: Guards
    tools: tuple[ToolSpec, ...]
    account: str
    policy: Policy = Policy()
    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    sandbox: SandboxServer | None = None

    @property
    def on_sandbox(self) -> bool:
        return self.sandbox is not None

    def granted_scopes(self) -> frozenset[str] | None:
        """The login's scopes, or None when they are unknown (a bare access token, the sandbox)."""
        return self.tokens.scopes if isinstance(self.tokens, TokenManager) else None

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        sandbox_server: SandboxServer | None = None,
        run_watcher: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> AsyncIterator[Runtime]:
        """Start what the settings ask for (the sandbox, the watcher loop), and stop it all on exit.

        A running `sandbox_server` may be passed in (tests share one); it is then left running.
        Tests pass run_watcher=False and a clock, and drive polls themselves.
        """
        owns_sandbox = sandbox_server is None
        tokens: TokenProvider
        store: TokenStore
        if settings.sandbox:
            if sandbox_server is None:
                from .sandbox import SandboxServer

                sandbox_server = SandboxServer(port=settings.sandbox_port).start()
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
            store = _open_store(settings)
            account = "token"  # a bare access token doesn't say whose it is
            logger.info("acting on X at %s with the token from %s (never refreshed)", base_url, ENV_ACCESS_TOKEN)
        else:
            sandbox_server = None
            manager = await _stored_login(settings)
            tokens, store, base_url = manager, manager.store, manager.account.api_base_url
            account = manager.account.username
            logger.info("acting on X at %s as @%s", base_url, manager.account.username)
        client = XClient(tokens, base_url=base_url)
        users = UserDirectory(client)
        watcher = Watcher(
            client,
            users,
            store,
            cursor_scope=base_url,
            min_interval=settings.poll_interval,
            use_search=settings.watch_search,
            clock=clock,
        )
        try:
            tools = select_tools(read_only=settings.read_only, allow=settings.tools, deny=settings.exclude_tools)
        except ValueError as exc:
            raise SettingsError(f"--tools/--exclude-tools: {exc}") from None
        audit = AuditLog(store, account, clock=clock)
        runtime = cls(
            client=client,
            users=users,
            media=MediaLoader(settings.media_roots, allowed_hosts=settings.media_allowed_hosts),
            tokens=tokens,
            watcher=watcher,
            audit=audit,
            guards=Guards(audit, max_writes_per_hour=settings.max_writes_per_hour, daily_budget=settings.daily_budget),
            tools=tools,
            account=account,
            policy=Policy(confirm=settings.confirm, dry_run=settings.dry_run),
            prices={**DEFAULT_PRICES, **dict(settings.prices)},
            sandbox=sandbox_server,
        )
        try:
            async with anyio.create_task_group() as background:
                if run_watcher:
                    background.start_soon(watcher.run)
                if sandbox_server is not None and settings.sandbox_chatter:
                    background.start_soon(_chatter, sandbox_server.sandbox, settings.sandbox_chatter)
                yield runtime
                background.cancel_scope.cancel()
        finally:
            await client.aclose()
            await store.aclose()
            if sandbox_server is not None and owns_sandbox:
                sandbox_server.stop()


def _open_store(settings: Settings) -> TokenStore:
    try:
        return open_store(settings.store)
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
