"""The Runtime of a hosted server: shared watcher and media rules, one Account per caller."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio

from xcourier.tools.client import XClient
from xcourier.tools.media import MediaLoader
from xcourier.tools.users import UserDirectory

from ..audit import DEFAULT_PRICES, AuditLog, Guards, Meter
from ..auth import oauth
from ..auth.store import ENV_STORE, ENV_STORE_KEY
from ..fleet import Fleet, RedisFeed, UpdateFeed
from ..runtime import Policy, PushOptions, Runtime, acting_account, open_configured_store, push_source, tools_for
from ..settings import Settings
from ..watcher import Watcher
from .callers import Grant, Grants
from .poller import SubscriberTokens
from .tenants import Tenants

logger = logging.getLogger("xcourier.hosted")

# The audit trail of the shared watcher's polls: no signed-in user's, since one poll serves every
# subscriber of a user. Its spend has a --daily-budget of its own.
WATCHER_ACCOUNT = "newPost watcher"
WATCHER_ACCOUNT_ID = "xcourier:watcher"


@asynccontextmanager
async def open_hosted(
    settings: Settings, *, clock: Callable[[], float] = time.time, push_options: PushOptions | None = None
) -> AsyncIterator[Runtime]:
    store = open_configured_store(settings)
    subscriber_tokens = SubscriberTokens()
    grants = Grants(store)
    prices = {**DEFAULT_PRICES, **dict(settings.prices)}
    watcher_audit = AuditLog(store, WATCHER_ACCOUNT, account_id=WATCHER_ACCOUNT_ID, clock=clock)
    # No owner: a poll runs on some subscriber's login, and hosted users don't own the operator's
    # X app, so none of its reads are Owned Reads.
    # Shared meters: every instance of the fleet bills the operator's one X app (once per resource a day).
    poller = XClient(subscriber_tokens, base_url=settings.api_base_url, meter=Meter(watcher_audit, prices, shared=True))
    # Pushed posts are billed to the operator's X app, like the polls: the watcher's audit and budget.
    instance = uuid.uuid4().hex
    feed: UpdateFeed | None = None
    target = settings.store or os.environ.get(ENV_STORE) or ""
    if target.startswith(("redis://", "rediss://", "unix://")):
        feed = RedisFeed(target, instance=instance, key=os.environ.get(ENV_STORE_KEY))
    fleet = Fleet(store, lease_ttl=settings.lease_ttl, feed=feed, instance=instance)
    watcher_meter = Meter(watcher_audit, prices, shared=True)
    watcher_guards = Guards(watcher_audit, max_writes_per_hour=None, daily_budget=settings.daily_budget)
    watcher = Watcher(
        poller,
        UserDirectory(poller),
        store,
        cursor_scope=settings.api_base_url,
        min_interval=settings.poll_interval,
        # Never folded into searches: one search runs on one subscriber's login, which may not see
        # every user in the batch (protected accounts), and their posts would be skipped.
        use_search=False,
        clock=clock,
        reader=acting_account,  # subscriptions are made in requests: the caller's
        subscriber_tokens=subscriber_tokens,
        fleet=fleet,
        budget=watcher_guards,
        permission=grants,  # a revoked grant's subscriptions end, and its login leaves the polls
    )

    async def end_subscriptions(grant: Grant) -> None:
        await watcher.end_grant(grant)

    grants.on_end.append(end_subscriptions)
    # One X Activity API stream for the whole fleet, under a lease (server/push.py).
    push = await push_source(
        settings,
        settings.api_base_url,
        store,
        watcher,
        watcher_meter,
        watcher_guards,
        None,
        clock,
        push_options or PushOptions(),
        fleet=fleet,
    )
    x_app = oauth.OAuthApp(
        client_id=settings.x_client_id or "", client_secret=settings.x_client_secret, api_base_url=settings.api_base_url
    )
    tenants = Tenants(
        store,
        x_app,
        max_writes_per_hour=settings.max_writes_per_hour,
        daily_budget=settings.daily_budget,
        grants=grants,
        clock=clock,
    )
    runtime = Runtime(
        media=MediaLoader(settings.media_roots, allowed_hosts=settings.media_allowed_hosts),
        watcher=watcher,
        tools=tools_for(settings),
        home=None,
        policy=Policy(confirm=settings.confirm, dry_run=settings.dry_run),
        prices=prices,
        store=store,
        tenants=tenants,
        push=push,
    )
    logger.info(
        "hosted mode: users sign in with X at %s; store %s%s",
        settings.api_base_url,
        store.location,
        ", news shared over Redis" if feed is not None else " (one instance: no Redis feed)",
    )
    try:
        async with anyio.create_task_group() as background:
            background.start_soon(watcher.run)
            background.start_soon(watcher.keep_leases)
            if feed is not None:
                await background.start(partial(feed.run, watcher.receive, on_catch_up=watcher.catch_up_requested))
            if push is not None:
                background.start_soon(push.run)
                background.start_soon(watcher.keep_caught_up)
            yield runtime
            background.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if push is not None:
                await push.aclose()
                await push.close_transport()
            await watcher.release_leases()
            await tenants.aclose()
            await poller.aclose()
            if feed is not None:
                await feed.aclose()
            await store.aclose()
