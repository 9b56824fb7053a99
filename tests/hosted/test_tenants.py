"""Per-user accounts: built from the user's own login, never another's, and closed when idle past the limit."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.fernet import Fernet

from xcourier.server.auth import oauth
from xcourier.server.auth.memory_store import MemoryTokenStore
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.tokens import LoginRequiredError
from xcourier.server.hosted.tenants import Tenants

from ..auth.test_store import token_set

pytestmark = pytest.mark.anyio

ALICE = token_set("1700000000000000002", "alice")
CAROL = token_set("1700000000000000004", "carol")


async def tenants_with(*logins, max_accounts: int = 10) -> Tenants:
    store = MemoryTokenStore()
    for login in logins:
        await store.save(login)
    app = oauth.OAuthApp(client_id="client", api_base_url="http://127.0.0.1:9")
    return Tenants(store, app, max_writes_per_hour=None, daily_budget=None, max_accounts=max_accounts)


async def test_each_user_gets_an_account_on_their_own_login():
    tenants = await tenants_with(ALICE, CAROL)
    alice, carol = await tenants.account(ALICE.user_id), await tenants.account(CAROL.user_id)
    assert (alice.name, alice.tokens.account.user_id) == ("alice", ALICE.user_id)
    assert (carol.name, carol.tokens.account.user_id) == ("carol", CAROL.user_id)
    assert alice.client is not carol.client and await tenants.account(ALICE.user_id) is alice
    await tenants.aclose()


async def test_a_username_made_of_digits_never_stands_in_for_a_user_id():
    # load() matches usernames too: a user whose username is another's id must not get their account.
    impostor = replace(token_set("1700000000000000009", "alice2"), username=ALICE.user_id[:15])
    tenants = await tenants_with(impostor)
    with pytest.raises(LoginRequiredError, match="Sign in again"):
        await tenants.account(ALICE.user_id[:15])
    await tenants.aclose()


async def test_idle_accounts_past_the_limit_are_closed_but_never_one_in_use():
    tenants = await tenants_with(ALICE, CAROL, max_accounts=1)
    async with tenants.using(ALICE.user_id) as alice:
        carol = await tenants.account(CAROL.user_id)  # over the limit, but alice is busy and carol just asked
        assert await tenants.account(ALICE.user_id) is alice  # still busy: kept; idle carol is closed
    assert await tenants.account(CAROL.user_id) is not carol  # rebuilt from the store; idle alice is closed
    assert await tenants.account(ALICE.user_id) is not alice
    await tenants.aclose()


async def test_with_a_key_hosted_stores_refuse_a_login_that_was_not_sealed(tmp_path):
    # Someone who can write to the store but lacks the key must not plant a login for a user.
    path = tmp_path / "store.db"
    await SQLiteTokenStore(path).save(ALICE)  # written in the clear
    key = Fernet.generate_key().decode()
    assert await SQLiteTokenStore(path, key=key, sealed_only=True).load_user(ALICE.user_id) is None
    assert await SQLiteTokenStore(path, key=key).load_user(ALICE.user_id) == ALICE  # local stores stay readable
