"""Every tool succeeds on the minimal and the maximal answer X's spec allows, for every endpoint it calls.

The answers are generated from X's OpenAPI document (tests/unit/spec.py): `minimal` holds only
what the response schema requires, recursively; `maximal` holds every documented property, plus
the older words the live API still uses (`edit_history_tweet_ids` beside 2.167's
`edit_history_post_ids`, `id` beside `rest_id`). A new spec changes these bodies by itself.

Spec 2.167 makes `data` itself optional in every answer (a 200 may carry `errors` instead), and
its User and Post schemas require nothing at all. An answer without the one thing a call is about
can't be used by anyone, so the minimal answers below also keep, per endpoint, the few optional
fields the client can't do without (`USABLE`, each with its reason); what happens on the bare
spec minimum is pinned separately (filled in where the call knows the value, else "unreadable").

The tools run through an in-memory MCP session (so their output schemas are checked too) with X
mocked by respx; the one endpoint no tool calls directly (recent search) is driven through its
tools/ function.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.settings import Settings
from xcourier.tools.client import RetryPolicy, StaticTokenProvider, XClient
from xcourier.tools.engagement import like_post, repost_post
from xcourier.tools.errors import AnswerUnreadableError
from xcourier.tools.media import MediaLoader
from xcourier.tools.messages import send_direct_message
from xcourier.tools.posts import create_post
from xcourier.tools.timeline import get_new_posts, search_posts
from xcourier.tools.users import UserDirectory

from .captured import BASE_URL, GIF, PNG, TOKEN, data_uri, json_body
from .spec import maximal_body, minimal_body, success_status, validate_query, validate_response_body

pytestmark = pytest.mark.anyio

ME = ("GET", "/2/users/me")
BY_USERNAME = ("GET", "/2/users/by/username/{username}")
CREATE = ("POST", "/2/tweets")
DELETE = ("DELETE", "/2/tweets/{id}")
LIKE = ("POST", "/2/users/{id}/likes")
REPOST = ("POST", "/2/users/{id}/retweets")
DM = ("POST", "/2/dm_conversations/with/{participant_id}/messages")
TIMELINE = ("GET", "/2/users/{id}/tweets")
SEARCH = ("GET", "/2/tweets/search/recent")
UPLOAD = ("POST", "/2/media/upload")
STATUS = ("GET", "/2/media/upload")
INITIALIZE = ("POST", "/2/media/upload/initialize")
APPEND = ("POST", "/2/media/upload/{id}/append")
FINALIZE = ("POST", "/2/media/upload/{id}/finalize")

# The optional fields without which an answer says nothing the call can use, and why.
USABLE: dict[tuple[str, str], set[str]] = {
    ME: {"data", "data.id", "data.username"},  # every action needs the id; a login stores the handle
    BY_USERNAME: {"data", "data.id"},  # the id to act on (the handle is the one asked for)
    CREATE: {"data"},  # then X's own required id and text
    DELETE: {"data"},
    LIKE: set(),  # nothing: a 2xx is the like (see test_bare_spec_minimum_*)
    REPOST: set(),
    DM: {"data"},
    TIMELINE: {"data", "data[]", "data[].id"},  # a post is its id; nothing else is required
    SEARCH: {"data", "data[]", "data[].id"},
    UPLOAD: {"data"},
    INITIALIZE: {"data"},
    APPEND: set(),
    FINALIZE: {"data"},
    STATUS: {"data"},
}

# A maximal media answer documents processing_info, whose `state` is free text in the spec: a
# finished upload says "succeeded" (X's media docs), else the client would poll forever.
DONE = {"data.processing_info.state": "succeeded"}
OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {UPLOAD: DONE, FINALIZE: DONE, STATUS: DONE}


def answer(endpoint: tuple[str, str], variant: str) -> dict[str, Any]:
    """X's answer to `endpoint`, generated from the spec, and checked against it."""
    method, path = endpoint
    overrides = OVERRIDES.get(endpoint, {})
    if variant == "minimal":
        body = minimal_body(method, path, USABLE[endpoint], overrides)
    else:
        body = maximal_body(method, path, overrides)
    validate_response_body(method, path, body)
    return body if variant == "minimal" else with_older_words(body)


def with_older_words(body: dict[str, Any]) -> dict[str, Any]:
    """The maximal answer in both vocabularies: 2.167's words and the ones the live API still sends."""
    out = copy.deepcopy(body)
    data = out.get("data")
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict) and "edit_history_post_ids" in item:
            item["edit_history_tweet_ids"] = item["edit_history_post_ids"]
        if isinstance(item, dict) and "rest_id" in item:
            item["id"] = item["rest_id"]
    return out


def edit_history(post: dict[str, Any]) -> list[str]:
    """What the result must say: X's edit history in either spelling, else the post alone."""
    return post.get("edit_history_post_ids") or post.get("edit_history_tweet_ids") or [post["id"]]


@dataclass
class X:
    """The mocked X of one test: answers by endpoint, in one variant."""

    router: respx.MockRouter
    variant: str

    def serve(self, endpoint: tuple[str, str], url_path: str, body: dict[str, Any] | None = None) -> respx.Route:
        method, path = endpoint
        body = answer(endpoint, self.variant) if body is None else body
        route = self.router.route(method=method, path=url_path)
        status = success_status(method, path)
        if "next_token" in body.get("meta", {}):
            # A maximal page says another follows: the same posts again, then the end.
            last = {**body, "meta": {k: v for k, v in body["meta"].items() if k != "next_token"}}
            return route.mock(side_effect=[httpx.Response(status, json=body), httpx.Response(status, json=last)])
        return route.respond(status, json=body)


VARIANTS = ["minimal", "maximal"]
ME_ID = "2244994945"
BOB_ID = "1551200000000000001"
POST_ID = "1228393702244134912"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=True, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture(params=VARIANTS)
def x(request: pytest.FixtureRequest, router: respx.MockRouter) -> X:
    return X(router, request.param)


@pytest.fixture
async def session(tmp_path: Path, router: respx.MockRouter) -> AsyncIterator[Client]:
    """An MCP client session with xcourier acting on (mocked) X with a bare access token."""
    settings = Settings(access_token=TOKEN, store=str(tmp_path / "store.db"), media_roots=(tmp_path,))
    async with Runtime.open(settings, run_watcher=False) as runtime:
        runtime.client.retry = RetryPolicy(attempts=1)
        async with Client(build_server(runtime), mode="legacy") as client:
            yield client


async def call(session: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, text
    assert result.structured_content is not None
    return result.structured_content


# --- each tool, on each endpoint's minimal and maximal answer ------------------------------------


async def test_create_post(x: X, session: Client):
    created = x.serve(CREATE, "/2/tweets")
    sent = answer(CREATE, x.variant)["data"]

    result = await call(session, "createPost", {"text": "hello"})

    assert result == {"data": {"id": sent["id"], "text": sent["text"], "edit_history_tweet_ids": edit_history(sent)}}
    assert json_body(created.calls.last.request) == {"text": "hello"}


async def test_create_post_with_an_image_uses_the_media_id_x_answered(x: X, session: Client):
    upload = x.serve(UPLOAD, "/2/media/upload")
    created = x.serve(CREATE, "/2/tweets")
    media_id = answer(UPLOAD, x.variant)["data"]["id"]

    await call(session, "createPost", {"media": [{"url": data_uri(PNG)}]})

    assert upload.call_count == 1
    assert json_body(created.calls.last.request) == {"media": {"media_ids": [media_id]}}


async def test_create_post_with_a_gif_through_the_chunked_upload(x: X, session: Client):
    media_id = answer(INITIALIZE, x.variant)["data"]["id"]
    x.serve(INITIALIZE, "/2/media/upload/initialize")
    x.serve(APPEND, f"/2/media/upload/{media_id}/append")
    finalize = answer(FINALIZE, x.variant)
    if x.variant == "maximal":
        # Still processing after finalize, so the STATUS answer is read too.
        finalize["data"]["processing_info"] = {"state": "pending", "check_after_secs": 0}
        x.serve(STATUS, "/2/media/upload")
    x.serve(FINALIZE, f"/2/media/upload/{media_id}/finalize", finalize)
    created = x.serve(CREATE, "/2/tweets")

    await call(session, "createPost", {"media": [{"url": data_uri(GIF, "image/gif")}]})

    assert json_body(created.calls.last.request) == {"media": {"media_ids": [media_id]}}


async def test_delete_post(x: X, session: Client):
    x.serve(DELETE, f"/2/tweets/{POST_ID}")

    result = await call(session, "deletePost", {"id": POST_ID})

    assert result == {"data": {"deleted": answer(DELETE, x.variant)["data"]["deleted"]}}


async def test_like_post(x: X, session: Client):
    x.serve(ME, "/2/users/me", answer_for_me(x.variant))
    x.serve(LIKE, f"/2/users/{ME_ID}/likes")
    data = answer(LIKE, x.variant).get("data", {})

    result = await call(session, "likePost", {"tweet_id": POST_ID})

    assert result == {"data": {"liked": data.get("liked", True)}}


async def test_repost_post(x: X, session: Client):
    x.serve(ME, "/2/users/me", answer_for_me(x.variant))
    x.serve(REPOST, f"/2/users/{ME_ID}/retweets")
    data = answer(REPOST, x.variant).get("data", {})

    result = await call(session, "repostPost", {"tweet_id": POST_ID})

    assert result == {"data": {"id": data.get("rest_id", POST_ID), "retweeted": data.get("retweeted", True)}}


async def test_send_direct_message(x: X, session: Client):
    x.serve(BY_USERNAME, "/2/users/by/username/Bob_99", answer_for_bob(x.variant))
    x.serve(DM, f"/2/dm_conversations/with/{BOB_ID}/messages")
    sent = answer(DM, x.variant)["data"]

    result = await call(session, "sendDirectMessage", {"username": "Bob_99", "text": "hi"})

    assert result == {"data": {"dm_conversation_id": sent["dm_conversation_id"], "dm_event_id": sent["dm_event_id"]}}


@pytest.mark.parametrize("since_id", [None, "1000000000000000000"])
async def test_get_new_posts(x: X, session: Client, since_id: str | None):
    x.serve(BY_USERNAME, "/2/users/by/username/Bob_99", answer_for_bob(x.variant))
    timeline = x.serve(TIMELINE, f"/2/users/{BOB_ID}/tweets")
    page = answer(TIMELINE, x.variant)

    result = await call(session, "getNewPosts", {"username": "Bob_99"} | ({"since_id": since_id} if since_id else {}))

    posts = [expected_post(post, author=BOB_ID) for post in page["data"]]
    assert result == {"posts": posts, "next_since_id": posts[-1]["id"]}
    query = dict(timeline.calls.last.request.url.params)
    validate_query(*TIMELINE, query)
    assert query["post.fields"] == "created_at"


async def test_search_posts(x: X):
    search = x.serve(SEARCH, "/2/tweets/search/recent")
    page = answer(SEARCH, x.variant)
    async with XClient(StaticTokenProvider(TOKEN), base_url=BASE_URL, retry=RetryPolicy(attempts=1)) as client:
        posts = await search_posts(client, ["alice", "Bob_99"], "1000000000000000000")

    assert [post.model_dump() for post in posts] == [expected_post(post) for post in page["data"]]
    query = dict(search.calls.last.request.url.params)
    validate_query(*SEARCH, query)
    assert (query["post.fields"], query["expansions"]) == ("created_at", "author_id")


def expected_post(post: dict[str, Any], author: str | None = None) -> dict[str, Any]:
    return {
        "id": post["id"],
        "text": post.get("text", ""),
        "edit_history_tweet_ids": edit_history(post),
        "created_at": post.get("created_at"),
        "author_id": post.get("author_id", author),
    }


def answer_for_me(variant: str) -> dict[str, Any]:
    body = answer(ME, variant)
    body["data"]["id"] = ME_ID  # the likes and retweets paths carry it
    return body


def answer_for_bob(variant: str) -> dict[str, Any]:
    body = answer(BY_USERNAME, variant)
    body["data"]["id"] = BOB_ID
    return body


# --- the bare spec minimum: nothing at all ------------------------------------------------------


@pytest.fixture
async def client(router: respx.MockRouter) -> AsyncIterator[XClient]:
    async with XClient(StaticTokenProvider(TOKEN), base_url=BASE_URL, retry=RetryPolicy(attempts=1)) as xclient:
        yield xclient


async def test_bare_spec_minimum_of_a_like_or_repost_is_filled_from_the_call(router: respx.MockRouter, client):
    router.get("/2/users/me").respond(200, json={"data": {"id": ME_ID, "username": "me"}})
    router.post(f"/2/users/{ME_ID}/likes").respond(200, json=minimal_body(*LIKE))
    router.post(f"/2/users/{ME_ID}/retweets").respond(200, json=minimal_body(*REPOST))
    users = UserDirectory(client)

    liked = await like_post(client, users, POST_ID)
    reposted = await repost_post(client, users, POST_ID)

    assert liked.model_dump() == {"data": {"liked": True}}
    assert reposted.model_dump() == {"data": {"id": POST_ID, "retweeted": True}}


async def test_a_repost_answered_with_only_retweeted_is_the_reposted_post(router: respx.MockRouter, client):
    router.get("/2/users/me").respond(200, json={"data": {"id": ME_ID, "username": "me"}})
    router.post(f"/2/users/{ME_ID}/retweets").respond(200, json={"data": {"retweeted": True}})

    result = await repost_post(client, UserDirectory(client), POST_ID)

    assert result.model_dump() == {"data": {"id": POST_ID, "retweeted": True}}


@pytest.mark.parametrize(
    ("endpoint", "missing"),
    [(CREATE, "data is missing"), (DM, "data is missing"), (ME, "data.id"), (BY_USERNAME, "data.id")],
    ids=["create", "dm", "me", "by-username"],
)
async def test_bare_spec_minimum_without_the_answer_is_unreadable_not_a_failure(
    router: respx.MockRouter, client: XClient, endpoint: tuple[str, str], missing: str
):
    method, path = endpoint
    url_path = {ME: "/2/users/me", BY_USERNAME: "/2/users/by/username/Bob_99", CREATE: "/2/tweets"}
    url_path[DM] = f"/2/dm_conversations/with/{BOB_ID}/messages"
    router.route(method=method, path=url_path[endpoint]).respond(
        success_status(*endpoint), json=minimal_body(*endpoint)
    )

    with pytest.raises(AnswerUnreadableError) as raised:
        if endpoint == CREATE:
            await create_post(client, MediaLoader(), "hello")
        elif endpoint == DM:
            router.get("/2/users/by/username/Bob_99").respond(200, json={"data": {"id": BOB_ID}})
            await send_direct_message(client, UserDirectory(client), MediaLoader(), "Bob_99", "hi")
        elif endpoint == ME:
            await UserDirectory(client).me()
        else:
            await UserDirectory(client).by_username("Bob_99")

    assert f"{method} {path}" in str(raised.value)
    assert missing in str(raised.value)


async def test_a_page_without_data_is_an_empty_page(router: respx.MockRouter, client: XClient):
    router.get("/2/users/by/username/Bob_99").respond(200, json={"data": {"id": BOB_ID}})
    router.get(f"/2/users/{BOB_ID}/tweets").respond(200, json=minimal_body(*TIMELINE))

    result = await get_new_posts(client, UserDirectory(client), "Bob_99", None)

    assert (result.posts, result.next_since_id) == ([], None)


async def test_a_post_without_an_id_is_skipped_not_the_page(router: respx.MockRouter, client: XClient):
    unusable = minimal_body(*TIMELINE, keep={"data", "data[]"})["data"][0]  # a Post the spec allows: {}
    old = {"id": "20", "text": "just setting up my twttr"}  # before 2022-09-29: no edit history
    page = {"data": [old, unusable, {"id": "not-a-snowflake", "text": "?"}], "meta": {"result_count": 3}}
    router.get("/2/users/by/username/Bob_99").respond(200, json={"data": {"id": BOB_ID, "username": "Bob_99"}})
    router.get(f"/2/users/{BOB_ID}/tweets").respond(200, json=page)

    result = await get_new_posts(client, UserDirectory(client), "Bob_99", None)

    assert [post.model_dump() for post in result.posts] == [
        {
            "id": "20",
            "text": "just setting up my twttr",
            "edit_history_tweet_ids": ["20"],
            "created_at": None,
            "author_id": BOB_ID,
        }
    ]
    assert result.next_since_id == "20"


def test_the_generated_answers_are_what_the_spec_documents():
    # Guards the generator itself: if it stopped following the spec, every test above would lie.
    assert minimal_body(*CREATE, keep=USABLE[CREATE]) == {"data": {"id": "1600000000000000001", "text": "text-text"}}
    assert set(maximal_body(*REPOST)["data"]) == {"rest_id", "retweeted"}
    maximal_post = maximal_body(*TIMELINE)["data"][0]
    assert {"id", "text", "edit_history_post_ids", "author_id", "created_at", "entities"} <= set(maximal_post)
    assert "processing_info" in maximal_body(*FINALIZE)["data"]
    assert success_status(*CREATE) == 201 and success_status(*DM) == 201
