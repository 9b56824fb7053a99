"""`xcourier doctor`: one screen saying whether xcourier can act on X here, and what to do if not.

Checks, in the order a failure would block the next: the install, the store, X (or the configured
base URL) being reachable, the clock against X's, and the login (scopes, expiry, a real refresh).
Nothing is created: a store that doesn't exist yet is reported, not made. Tokens are never printed.
"""

from __future__ import annotations

import email.utils
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from . import __version__
from .settings import (
    APP_TOKEN_RECORD,
    ENV_ACCESS_TOKEN,
    ENV_API_BASE_URL,
    ENV_APP_BEARER_TOKEN,
    SettingsError,
    check_api_base_url,
)

Status = Literal["ok", "warn", "fail", "skip"]

# Above this, token expiry and X's rate-limit reset times (epoch seconds in x-rate-limit-reset) are
# misjudged by enough to refresh late or poll before a window reopens.
MAX_CLOCK_SKEW = 60.0
TIMEOUT = 10.0  # per network step; a doctor that hangs is worse than one that says "unreachable"
LOGIN_HINT = "run `xcourier auth login` (or try offline without a login: `xcourier demo`, `xcourier serve --sandbox`)"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    summary: str
    fix: str = ""


@dataclass
class Options:
    store: str | None = None
    account: str | None = None
    api_base_url: str | None = None
    refresh: bool = True


def needed_scopes() -> frozenset[str]:
    """Every scope a tool of the default selection needs (opt-in toolsets ask for theirs when chosen), and
    offline.access so the login can refresh itself."""
    from .inventory import select_tools

    tools = select_tools()
    return frozenset(scope for spec in tools for scope in (*spec.scopes, *spec.media_scopes)) | {"offline.access"}


def check_install(environ: Mapping[str, str]) -> Check:
    from .connect import launcher

    ours = launcher()
    found = shutil.which("xcourier", path=environ.get("PATH"))
    where = f"xcourier {__version__} at {ours[0]} (Python {platform.python_version()})"
    if found is None:
        return Check(
            "install",
            "warn",
            f"{where}; `xcourier` is not on PATH",
            "clients that run `xcourier` by name won't find it: `xcourier connect CLIENT` writes the absolute "
            "path, or install with `pipx install .` / `uv tool install .` so it lands on PATH",
        )
    if len(ours) == 1 and os.path.realpath(found) != os.path.realpath(ours[0]):
        return Check(
            "install",
            "warn",
            f"{where}; but `xcourier` on PATH is {found}",
            "clients that run `xcourier` by name start that other install: use `xcourier connect CLIENT` "
            "(absolute path) or remove the older install",
        )
    return Check("install", "ok", f"{where}; on PATH")


async def diagnose(
    options: Options, environ: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> list[Check]:
    checks = [check_install(environ)]
    store, store_check = await _open_store(options, environ)
    checks.append(store_check)
    try:
        tokens = await _load_login(store, options, environ, checks)
        base_url = _base_url(options, environ, tokens)
        if base_url is None:
            checks.append(Check("X", "fail", "the API base URL is not usable", _bad_base_url(options, environ)))
            return checks
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            date = await _check_reachable(http, base_url, checks)
            checks.append(_check_clock(date, clock))
            if tokens is not None:
                await _check_login(http, store, tokens, options, clock, checks)
            elif environ.get(ENV_ACCESS_TOKEN):
                await _check_env_token(http, base_url, environ[ENV_ACCESS_TOKEN], checks)
            await _check_app_token(http, store, base_url, environ, checks)
    finally:
        if store is not None:
            await store.aclose()
    return checks


async def _open_store(options: Options, environ: Mapping[str, str]) -> tuple[Any, Check]:
    from .auth.store import ENV_STORE, StoreError, StoreUnavailableError, default_store_path, open_store

    target = options.store or environ.get(ENV_STORE) or str(default_store_path())
    is_redis = target.startswith(("redis://", "rediss://", "unix://"))
    if is_redis:
        try:
            import redis  # noqa: F401
        except ModuleNotFoundError:
            return None, Check(
                "store",
                "fail",
                "the store is on Redis but the redis package is not installed",
                "install it: `pip install 'xcourier[redis]'` (or `pipx inject xcourier redis`)",
            )
    else:
        path = Path(target.removeprefix("sqlite://")).expanduser()
        if not path.exists():
            return None, Check(
                "store",
                "warn",
                f"no store yet at {path} (nothing was created)",
                "`xcourier auth login` creates it; or point --store / XCOURIER_STORE at an existing one",
            )
    try:
        store = open_store(target, environ=dict(environ))
        with anyio.fail_after(TIMEOUT):
            accounts = await store.list_accounts()
    except StoreUnavailableError as exc:
        reason = _one_line(exc.__cause__ or exc)  # the driver's own words, without the advice repeated
        return None, Check("store", "fail", f"{_redact(target)} can't be reached: {reason}", _store_fix(is_redis))
    except (StoreError, SettingsError) as exc:
        return None, Check("store", "fail", str(exc), "fix --store / XCOURIER_STORE / XCOURIER_STORE_KEY")
    except TimeoutError:
        return None, Check(
            "store", "fail", f"{_redact(target)} did not answer within {TIMEOUT:.0f} s", _store_fix(is_redis)
        )
    except Exception as exc:  # the store's driver raises its own families (sqlite3, redis, OSError)
        return None, Check("store", "fail", f"{_redact(target)}: {_one_line(exc)}", _store_fix(is_redis))
    summary = f"{store.location}: {len(accounts)} login{'s' if len(accounts) != 1 else ''}"
    if not is_redis:
        mode = Path(target.removeprefix("sqlite://")).expanduser().stat().st_mode & 0o777
        if mode & 0o077:
            return store, Check(
                "store", "warn", f"{summary}; readable by others (mode {mode:o})", f"chmod 600 {store.location}"
            )
    return store, Check("store", "ok", summary + (", on Redis" if is_redis else ""))


def _store_fix(is_redis: bool) -> str:
    if is_redis:
        return "start Redis or correct the URL in --store / XCOURIER_STORE"
    return "check the file's permissions, or point --store / XCOURIER_STORE at another path"


async def _load_login(store: Any, options: Options, environ: Mapping[str, str], checks: list[Check]) -> Any:
    if environ.get(ENV_ACCESS_TOKEN):
        return None  # checked against X once we know X is reachable
    if store is None:
        checks.append(Check("login", "fail", "no login yet", LOGIN_HINT))
        return None
    tokens = await store.load(options.account)
    if tokens is None:
        which = f" for {options.account}" if options.account else ""
        checks.append(Check("login", "fail", f"no login{which} in {store.location}", LOGIN_HINT))
    return tokens


def _base_url(options: Options, environ: Mapping[str, str], tokens: Any) -> str | None:
    from xcourier.tools.client import DEFAULT_BASE_URL

    raw = options.api_base_url or (tokens.api_base_url if tokens else None) or environ.get(ENV_API_BASE_URL)
    try:
        return check_api_base_url(raw or DEFAULT_BASE_URL)
    except SettingsError:
        return None


def _bad_base_url(options: Options, environ: Mapping[str, str]) -> str:
    return f"give an https URL (or http to a loopback sandbox) in --api-base-url or {ENV_API_BASE_URL}"


async def _check_reachable(http: httpx.AsyncClient, base_url: str, checks: list[Check]) -> str | None:
    try:
        # Unauthenticated on purpose: any answer (X says 401) proves the network path and TLS work.
        response = await http.get(base_url + "/2/users/me")
    except httpx.HTTPError as exc:
        checks.append(
            Check(
                "X",
                "fail",
                f"cannot reach {base_url} ({_one_line(exc) or type(exc).__name__})",
                "check the network, proxy (HTTPS_PROXY) and firewall; for a sandbox, start `xcourier sandbox` "
                "and use the base_url it prints",
            )
        )
        return None
    checks.append(Check("X", "ok", f"{base_url} answers (HTTP {response.status_code})"))
    return response.headers.get("date")


def _check_clock(date: str | None, clock: Callable[[], float]) -> Check:
    if date is None:
        return Check("clock", "skip", "not compared: no Date header from X")
    try:
        theirs = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "skip", f"X's Date header is unreadable ({date!r})")
    skew = clock() - theirs
    ahead = "ahead of" if skew > 0 else "behind"
    # The Date header has whole seconds and the request takes time: a second or two is noise.
    if abs(skew) > MAX_CLOCK_SKEW:
        return Check(
            "clock",
            "fail",
            f"this machine's clock is {abs(skew):.0f} s {ahead} X's",
            "turn on network time (timedatectl set-ntp true, or your OS's date settings): token expiry and rate-"
            "limit reset times are computed from it",
        )
    return Check("clock", "ok", f"within {max(abs(skew), 1):.0f} s of X's")


async def _check_login(
    http: httpx.AsyncClient,
    store: Any,
    tokens: Any,
    options: Options,
    clock: Callable[[], float],
    checks: list[Check],
) -> None:
    from .auth.tokens import LoginRequiredError, TokenManager

    now = clock()
    left = tokens.expires_at - now
    expiry = f"access token expires in {int(left // 60)} min" if left > 0 else "access token has expired"
    checks.append(Check("login", "ok", f"@{tokens.username} (user id {tokens.user_id}) at {tokens.api_base_url}"))
    missing = needed_scopes() - tokens.scopes
    if missing:
        checks.append(
            Check(
                "scopes",
                "warn",
                f"not granted: {' '.join(sorted(missing))} (the tools needing them are refused before X is asked)",
                f"log in again asking for them: xcourier auth login --scopes {' '.join(sorted(needed_scopes()))}",
            )
        )
    else:
        checks.append(Check("scopes", "ok", "every tool's scopes, and offline.access"))
    token = tokens.access_token
    if not tokens.refresh_token:
        status: Status = "fail" if left <= 0 else "warn"
        checks.append(
            Check(
                "refresh",
                status,
                f"{expiry}; no refresh token (offline.access was not granted), so it can't renew itself",
                "log in again with offline.access among the scopes: `xcourier auth login`",
            )
        )
        if left <= 0:
            return
    elif not options.refresh:
        checks.append(Check("refresh", "skip", f"{expiry}; not tried (--no-refresh)"))
    else:
        # A real rotation, through the token manager the server uses: under the store's lock and saved
        # before use, so a server running on the same store is never left with a spent refresh token.
        manager = TokenManager(store, tokens, refresh_skew=math.inf, clock=clock)
        try:
            with anyio.fail_after(TIMEOUT * 2):
                token = await manager.access_token()
        except LoginRequiredError as exc:
            checks.append(Check("refresh", "fail", _one_line(exc), "run `xcourier auth login` to log in again"))
            return
        except TimeoutError:
            checks.append(Check("refresh", "fail", "X's token endpoint did not answer", "try again shortly"))
            return
        except Exception as exc:  # ServerError and transport failures: X is the problem, not the login
            checks.append(Check("refresh", "fail", _one_line(exc), "try again shortly; the login is kept"))
            return
        checks.append(Check("refresh", "ok", f"refresh works (the new tokens are saved in {store.location})"))
    await _check_token_with_x(http, tokens.api_base_url, token, "login", checks)


async def _check_env_token(http: httpx.AsyncClient, base_url: str, token: str, checks: list[Check]) -> None:
    checks.append(Check("login", "ok", f"{ENV_ACCESS_TOKEN} is set: used as is, never refreshed (store ignored)"))
    await _check_token_with_x(http, base_url, token, ENV_ACCESS_TOKEN, checks)


async def _check_token_with_x(
    http: httpx.AsyncClient, base_url: str, token: str, source: str, checks: list[Check]
) -> None:
    try:
        response = await http.get(base_url + "/2/users/me", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        checks.append(Check("token", "fail", f"asking X who this is failed ({_one_line(exc)})", "try again shortly"))
        return
    if response.status_code == 200:
        username = (response.json().get("data") or {}).get("username", "?")
        checks.append(Check("token", "ok", f"X accepts the access token: @{username}"))
    elif response.status_code == 401:
        fix = "run `xcourier auth login`" if source == "login" else f"replace {ENV_ACCESS_TOKEN}, or unset it"
        checks.append(Check("token", "fail", "X refused the access token (401)", fix))
    elif response.status_code == 429:
        checks.append(Check("token", "warn", "GET /2/users/me is rate-limited right now (429)", "try again later"))
    else:
        checks.append(Check("token", "fail", f"GET /2/users/me answered HTTP {response.status_code}", "see X's status"))


async def _check_app_token(
    http: httpx.AsyncClient, store: Any, base_url: str, environ: Mapping[str, str], checks: list[Check]
) -> None:
    """The X app's Bearer Token, which lets X push new posts (X Activity API) instead of being polled."""
    token, source = environ.get(ENV_APP_BEARER_TOKEN), ENV_APP_BEARER_TOKEN
    if not token and store is not None:
        try:
            record = await store.get_record(APP_TOKEN_RECORD, base_url)
        except Exception as exc:  # a store that can't be read is reported by the store check
            checks.append(Check("app token", "warn", f"the stored app token can't be read ({_one_line(exc)})"))
            return
        token, source = (record or {}).get("token"), "the store (`xcourier auth app`)"
    if not isinstance(token, str) or not token:
        checks.append(
            Check(
                "app token",
                "skip",
                f"none configured: newPost polls X (`xcourier auth app` or {ENV_APP_BEARER_TOKEN} turns on push)",
            )
        )
        return
    try:
        response = await http.get(f"{base_url}/2/activity/subscriptions", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        checks.append(Check("app token", "fail", f"asking X failed ({_one_line(exc)})", "try again shortly"))
        return
    if response.is_success:
        checks.append(Check("app token", "ok", f"X accepts the app token from {source}"))
    elif response.status_code in (401, 403):
        fix = f"make a new Bearer Token in the X developer console, then `xcourier auth app` ({ENV_APP_BEARER_TOKEN})"
        refused = f"X refused the app token from {source} ({response.status_code})"
        checks.append(Check("app token", "fail", refused, fix))
    else:
        checks.append(Check("app token", "warn", f"GET /2/activity/subscriptions answered HTTP {response.status_code}"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _redact(target: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if parts.password:
        return target.replace(f":{parts.password}@", ":***@")
    return target


_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def render(checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks)
    lines = ["xcourier doctor"]
    for check in checks:
        lines.append(f"  {_MARKS[check.status]}  {check.name:<{width}}  {check.summary}")
        if check.fix and check.status in ("warn", "fail"):
            lines.append(f"        {'':<{width}}  -> {check.fix}")
    failed = sum(check.status == "fail" for check in checks)
    warned = sum(check.status == "warn" for check in checks)
    if failed:
        lines.append(f"{failed} check{'s' if failed != 1 else ''} failed; fix them in order (see ->).")
    else:
        lines.append("All checks passed" + (f" ({warned} warning{'s' if warned != 1 else ''})." if warned else "."))
    return "\n".join(lines)


def run_doctor(options: Options, environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    checks = anyio.run(diagnose, options, env)
    print(render(checks))
    sys.stdout.flush()
    return 1 if any(check.status == "fail" for check in checks) else 0
