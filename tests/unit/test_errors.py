"""X's error shapes become the XError family that says what the caller can do.

Every kind is pinned on read endpoints (GET /2/users/me, GET /2/users/by/username) and write endpoints
(POST /2/tweets, DELETE /2/tweets/{id}, likes, DMs, media upload). Throughout, the bearer token never
shows up in an error's text, attributes or traceback, nor in any log record.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from xcourier.tools.client import RetryPolicy, StaticTokenProvider, XClient
from xcourier.tools.engagement import like_post
from xcourier.tools.errors import (
    CLIENT_NOT_ENROLLED,
    DM_NOT_ALLOWED,
    DUPLICATE_CONTENT,
    LIKES_NEED_ENTERPRISE,
    AnswerUnreadableError,
    AppOnlyTokenError,
    CreditsDepletedError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    NotSentError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UsageCappedError,
    UserNotFoundError,
    XError,
)
from xcourier.tools.media import MediaLoader
from xcourier.tools.messages import send_direct_message
from xcourier.tools.posts import create_post, delete_post
from xcourier.tools.users import UserDirectory

from .captured import TOKEN, image_entry

pytestmark = pytest.mark.anyio

ME_ID = "2244994945"
BOB_ID = "1551200000000000001"


@dataclass(frozen=True)
class Endpoint:
    key: str  # the client's endpoint key, as in client.rate_limits and XError.endpoint
    method: str
    path: str  # the concrete path the failing request goes to
    call: Callable[[XClient], Awaitable[Any]]
    before: dict[str, dict[str, Any]] = field(default_factory=dict)  # "GET /path" -> JSON of calls that succeed first

    def mock(self, x: respx.MockRouter) -> respx.Route:
        for route, body in self.before.items():
            method, path = route.split(" ", 1)
            x.route(method=method, path=path).respond(200, json=body)
        return x.route(method=self.method, path=self.path)


GET_ME = Endpoint("GET /2/users/me", "GET", "/2/users/me", lambda c: UserDirectory(c).me())
GET_USER = Endpoint(
    "GET /2/users/by/username/{username}",
    "GET",
    "/2/users/by/username/Bob_99",
    lambda c: UserDirectory(c).by_username("Bob_99"),
)
CREATE = Endpoint("POST /2/tweets", "POST", "/2/tweets", lambda c: create_post(c, MediaLoader(), text="hello"))
DELETE = Endpoint(
    "DELETE /2/tweets/{id}", "DELETE", "/2/tweets/1445880548472328192", lambda c: delete_post(c, "1445880548472328192")
)
LIKE = Endpoint(
    "POST /2/users/{id}/likes",
    "POST",
    f"/2/users/{ME_ID}/likes",
    lambda c: like_post(c, UserDirectory(c), "1445880548472328192"),
    before={"GET /2/users/me": {"data": {"id": ME_ID, "username": "me", "name": "Me"}}},
)
DM = Endpoint(
    "POST /2/dm_conversations/with/{participant_id}/messages",
    "POST",
    f"/2/dm_conversations/with/{BOB_ID}/messages",
    lambda c: send_direct_message(c, UserDirectory(c), MediaLoader(), "Bob_99", "hi"),
    before={"GET /2/users/by/username/Bob_99": {"data": {"id": BOB_ID, "username": "Bob_99", "name": "Bob"}}},
)
UPLOAD = Endpoint(
    "POST /2/media/upload", "POST", "/2/media/upload", lambda c: create_post(c, MediaLoader(), media=[image_entry()])
)

READS = [pytest.param(GET_ME, id="GET-users-me"), pytest.param(GET_USER, id="GET-user-by-username")]
WRITES = [
    pytest.param(CREATE, id="POST-tweets"),
    pytest.param(DELETE, id="DELETE-tweet"),
    pytest.param(LIKE, id="POST-likes"),
    pytest.param(DM, id="POST-dm"),
    pytest.param(UPLOAD, id="POST-media-upload"),
]
EVERY_ENDPOINT = READS + WRITES

RATE_HEADERS = {"x-rate-limit-limit": "75", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "1767225600"}

INVALID_REQUEST = {
    "errors": [{"parameters": {"id": ["abc"]}, "message": "The `id` query parameter value [abc] is not valid"}],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
CLIENT_FORBIDDEN = {
    "client_id": "123",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a "
    "Twitter developer App that is attached to a Project. You can create a project via the developer portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
NOT_FOUND = {
    "title": "Not Found Error",
    "type": "https://api.twitter.com/2/problems/resource-not-found",
    "status": 404,
    "detail": "Could not find the requested resource.",
}
USER_NOT_FOUND_200 = {
    "errors": [
        {
            "value": "Bob_99",
            "detail": "Could not find user with username: [Bob_99].",
            "title": "Not Found Error",
            "resource_type": "user",
            "parameter": "username",
            "resource_id": "Bob_99",
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }
    ]
}
TOO_MANY = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
LEGACY_RATE_LIMIT = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
CREDITS_DEPLETED = {
    "title": "CreditsDepleted",
    "detail": "Your enrolled account does not have any credits to fulfill this request.",
    "type": "https://api.x.com/2/problems/credits-depleted",
}
# The shape X's refusal of a like on a self-serve plan is expected to take (inferred: X does not document it).
LIKE_REFUSED_INFERRED = {
    "title": "Client Forbidden",
    "detail": "Likes are not available on your plan.",
    "type": "https://api.x.com/2/problems/client-forbidden",
    "reason": "client-not-enrolled",
    "required_enrollment": "Enterprise",
    "status": 403,
}
# X's API Playground (xdevplatform/playground, internal/playground/auth.go) answers an app-only token so.
UNSUPPORTED_AUTHENTICATION = {
    "title": "Unsupported Authentication",
    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint. Supported "
    "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
    "type": "https://api.twitter.com/2/problems/unsupported-authentication",
    "status": 403,
}
USAGE_CAPPED = {
    "title": "UsageCapExceeded",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": "https://api.twitter.com/2/problems/usage-capped",
    "period": "Monthly",
    "scope": "Product",
}


def assert_no_secret(exc: BaseException) -> None:
    assert TOKEN not in str(exc)
    assert TOKEN not in repr(exc)
    assert TOKEN not in repr(vars(exc))
    assert TOKEN not in "".join(traceback.format_exception(exc))


@pytest.fixture(autouse=True)
def token_stays_out_of_logs(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = [formatter.format(record) for record in caplog.get_records("setup") + caplog.get_records("call")]
    assert any(line.startswith("xcourier.x ") for line in logged)  # the client did log: the check is not vacuous
    assert not [line for line in logged if TOKEN in line]


async def failure(endpoint: Endpoint, client: XClient, expected: type[XError]) -> Any:
    with pytest.raises(expected) as info:
        await endpoint.call(client)
    assert_no_secret(info.value)
    return info.value


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_problem_400_is_invalid_input(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(400, json=INVALID_REQUEST)

    exc = await failure(endpoint, client, InvalidInputError)

    assert exc.status == 400
    assert exc.endpoint == endpoint.key
    assert exc.problem_type == "https://api.twitter.com/2/problems/invalid-request"
    assert exc.title == "Invalid Request"
    assert "[abc] is not valid" in str(exc)


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_401_is_unauthorized(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(401, json=UNAUTHORIZED)

    exc = await failure(endpoint, client, UnauthorizedError)

    assert (exc.status, exc.endpoint) == (401, endpoint.key)


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_403_duplicate_content_is_forbidden_with_duplicate_reason(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(403, json=DUPLICATE)

    exc = await failure(endpoint, client, ForbiddenError)

    assert (exc.status, exc.reason) == (403, DUPLICATE_CONTENT)
    assert "duplicate content" in str(exc)


@pytest.mark.parametrize("endpoint", [e for e in EVERY_ENDPOINT if e.values[0] is not LIKE])
async def test_403_client_not_enrolled_is_forbidden_with_enrollment_reason(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(403, json=CLIENT_FORBIDDEN)

    exc = await failure(endpoint, client, ForbiddenError)

    assert (exc.status, exc.reason) == (403, CLIENT_NOT_ENROLLED)
    assert exc.problem_type == "https://api.twitter.com/2/problems/client-forbidden"
    assert "attached to a Project" in str(exc)


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            {
                "detail": "You cannot send messages to this user.",
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
            },
            id="problem-json",
        ),
        pytest.param({"errors": [{"code": 349, "message": "You cannot send messages to this user."}]}, id="legacy-349"),
        pytest.param(
            {"errors": [{"code": 150, "message": "You cannot send messages to users who are not following you."}]},
            id="legacy-150",
        ),
    ],
)
async def test_dm_refusal_is_forbidden_and_names_the_recipient(x, client: XClient, refusal: dict[str, Any]):
    DM.mock(x).respond(403, json=refusal)

    exc = await failure(DM, client, ForbiddenError)

    assert (exc.status, exc.reason) == (403, DM_NOT_ALLOWED)
    assert "@Bob_99 does not accept direct messages" in str(exc)
    assert exc.endpoint == DM.key


async def test_dm_refusal_keeps_what_x_said(x, client: XClient):
    refusal = {"detail": "You cannot send messages to this user.", "type": "about:blank", "title": "Forbidden"}
    DM.mock(x).respond(403, json=refusal, headers=RATE_HEADERS)

    exc = await failure(DM, client, ForbiddenError)

    assert exc.detail == "You cannot send messages to this user."
    assert exc.title == "Forbidden"
    assert exc.rate_limit is not None and exc.rate_limit.reset_at == 1767225600.0


async def test_403_on_a_post_is_not_mistaken_for_a_dm_refusal(x, client: XClient):
    body = {"detail": "You are not permitted to perform this action.", "type": "about:blank", "title": "Forbidden"}
    CREATE.mock(x).respond(403, json=body)

    exc = await failure(CREATE, client, ForbiddenError)

    assert exc.reason is None
    assert "You are not permitted to perform this action." in str(exc)


@pytest.mark.parametrize("endpoint", [pytest.param(GET_ME, id="GET-users-me"), *WRITES])
async def test_404_is_not_found(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(404, json=NOT_FOUND)

    exc = await failure(endpoint, client, NotFoundError)

    assert (exc.status, exc.endpoint) == (404, endpoint.key)
    assert exc.problem_type == "https://api.twitter.com/2/problems/resource-not-found"


@pytest.mark.parametrize(
    ("status", "body"),
    [pytest.param(200, USER_NOT_FOUND_200, id="200-with-errors-only"), pytest.param(404, NOT_FOUND, id="404")],
)
async def test_unknown_username_is_user_not_found_naming_the_user(x, client: XClient, status: int, body: dict):
    GET_USER.mock(x).respond(status, json=body)

    exc = await failure(GET_USER, client, UserNotFoundError)

    assert "@Bob_99" in str(exc)
    assert exc.problem_type == "https://api.twitter.com/2/problems/resource-not-found"
    assert exc.endpoint == GET_USER.key


async def test_dm_to_an_unknown_username_is_user_not_found_and_sends_nothing(x, client: XClient):
    x.get("/2/users/by/username/Bob_99").respond(200, json=USER_NOT_FOUND_200)

    exc = await failure(DM, client, UserNotFoundError)

    assert "@Bob_99" in str(exc)
    assert [call.request.url.path for call in x.calls] == ["/2/users/by/username/Bob_99"]


async def test_unknown_username_keeps_what_x_said(x, client: XClient):
    GET_USER.mock(x).respond(200, json=USER_NOT_FOUND_200)

    exc = await failure(GET_USER, client, UserNotFoundError)

    assert exc.detail == "Could not find user with username: [Bob_99]."
    assert exc.title == "Not Found Error"


async def test_partial_errors_next_to_data_are_not_a_failure(x, client: XClient):
    body = {
        "data": {"id": ME_ID, "username": "me", "name": "Me"},
        "errors": [
            {"title": "Authorization Error", "type": "https://api.twitter.com/2/problems/not-authorized-for-resource"}
        ],
    }
    GET_ME.mock(x).respond(200, json=body)

    me = await GET_ME.call(client)

    assert me.id == ME_ID


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_429_is_rate_limited_until_the_reset_header(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(429, json=TOO_MANY, headers=RATE_HEADERS)

    exc = await failure(endpoint, client, RateLimitedError)

    assert exc.status == 429
    assert exc.reset_at == 1767225600.0
    assert (exc.rate_limit.limit, exc.rate_limit.remaining) == (75, 0)
    assert client.rate_limits[endpoint.key] == exc.rate_limit


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_legacy_code_88_is_rate_limited(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(429, json=LEGACY_RATE_LIMIT)

    exc = await failure(endpoint, client, RateLimitedError)

    assert "Rate limit exceeded" in str(exc)
    assert exc.reset_at is None


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(CREDITS_DEPLETED, id="credits-depleted"),
        pytest.param(
            {"title": "Payment Required", "detail": "Your account has no credits left.", "type": "about:blank"},
            id="plain-402",
        ),
    ],
)
async def test_402_is_credits_depleted(x, client: XClient, endpoint: Endpoint, body: dict):
    endpoint.mock(x).respond(402, json=body, headers=RATE_HEADERS)

    exc = await failure(endpoint, client, CreditsDepletedError)

    assert not isinstance(exc, RateLimitedError)
    assert exc.status == 402


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_429_usage_capped_is_a_usage_cap_not_a_rate_limit_nor_credits(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(429, json=USAGE_CAPPED, headers=RATE_HEADERS)

    exc = await failure(endpoint, client, UsageCappedError)

    assert not isinstance(exc, (RateLimitedError, CreditsDepletedError))
    assert exc.status == 429


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
async def test_an_app_only_token_is_named_as_such(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(403, json=UNSUPPORTED_AUTHENTICATION)

    exc = await failure(endpoint, client, AppOnlyTokenError)

    assert isinstance(exc, UnauthorizedError) and exc.status == 403
    assert "Application-Only" in (exc.detail or "")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(LIKE_REFUSED_INFERRED, id="inferred-client-not-enrolled"),
        pytest.param(CLIENT_FORBIDDEN, id="client-forbidden-of-old"),
        pytest.param({"title": "Forbidden", "detail": "Forbidden", "type": "about:blank", "status": 403}, id="bare"),
    ],
)
async def test_any_403_on_a_like_reads_as_likes_needing_enterprise(x, client: XClient, body: dict):
    LIKE.mock(x).respond(403, json=body)

    exc = await failure(LIKE, client, ForbiddenError)

    assert exc.reason == LIKES_NEED_ENTERPRISE
    assert exc.detail == _detail_of(body)  # X's words are kept


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(DUPLICATE, DUPLICATE_CONTENT, id="duplicate"),
        pytest.param(
            {"title": "Not Found Error", "detail": "Could not find tweet with tweet_id: [1].", "status": 403},
            None,
            id="not-found",
        ),
    ],
)
async def test_a_403_like_that_is_a_duplicate_or_not_found_is_not_blamed_on_the_plan(
    x, client: XClient, body: dict, reason: str | None
):
    LIKE.mock(x).respond(403, json=body)

    exc = await failure(LIKE, client, ForbiddenError)

    assert exc.reason == reason


def _detail_of(body: dict[str, Any]) -> str:
    return body["detail"]


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_server_error(x, client: XClient, endpoint: Endpoint, status: int):
    endpoint.mock(x).respond(status, text="<html>upstream trouble</html>")

    exc = await failure(endpoint, client, ServerError)

    assert (exc.status, exc.endpoint) == (status, endpoint.key)


# Failures before any byte of the request is written, and the reason xcourier gives for each.
NEVER_SENT = [
    pytest.param(httpx.ConnectError("[Errno 111] Connection refused"), "refused", id="refused"),
    pytest.param(httpx.ConnectError("[Errno -2] Name or service not known"), "DNS", id="dns"),
    pytest.param(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "TLS", id="tls"),
    pytest.param(httpx.ConnectTimeout("timed out"), "timed out", id="connect-timeout"),
    pytest.param(httpx.PoolTimeout("timed out"), "came free", id="pool-timeout"),
]
# Failures after the request was (at least partly) written: X may have acted on it.
MAYBE_SENT = [
    pytest.param(httpx.ReadTimeout("timed out"), id="read-timeout"),
    pytest.param(httpx.ReadError("reset"), id="read-error"),
    pytest.param(httpx.RemoteProtocolError("Server disconnected without sending a response."), id="disconnected"),
    pytest.param(httpx.WriteError("broken pipe"), id="write-error"),
    pytest.param(httpx.WriteTimeout("timed out"), id="write-timeout"),
]


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
@pytest.mark.parametrize(("failure_kind", "reason"), NEVER_SENT)
async def test_a_failure_before_sending_is_not_sent_naming_the_address_and_why(
    x, client: XClient, endpoint: Endpoint, failure_kind: httpx.HTTPError, reason: str
):
    endpoint.mock(x).mock(side_effect=failure_kind)

    exc = await failure(endpoint, client, NotSentError)

    assert not isinstance(exc, TransportError)  # code that treats TransportError as "maybe done" can't catch it
    assert exc.endpoint == endpoint.key
    assert exc.base_url == "https://api.x.com"
    assert reason in exc.reason
    assert exc.__cause__ is None


async def test_a_post_that_was_never_sent_is_not_looked_for(x, client: XClient):
    x.post("/2/tweets").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))

    await failure(CREATE, client, NotSentError)

    assert [call.request.url.path for call in x.calls] == ["/2/tweets"]  # no users/me, no timeline lookup


async def test_the_address_shown_never_carries_credentials(x):
    x.post("/2/tweets").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    base = "https://user:s3cret@api.x.com"
    async with XClient(StaticTokenProvider(TOKEN), base_url=base, retry=RetryPolicy(attempts=1)) as xclient:
        with pytest.raises(NotSentError) as info:
            await xclient.request("POST", "/2/tweets", json={"text": "hi"})

    assert info.value.base_url == "https://api.x.com"
    assert "s3cret" not in str(info.value) and "user" not in str(info.value)


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
@pytest.mark.parametrize("failure_kind", MAYBE_SENT)
async def test_a_failure_after_sending_is_a_transport_error(
    x, client: XClient, endpoint: Endpoint, failure_kind: httpx.HTTPError
):
    endpoint.mock(x).mock(side_effect=failure_kind)
    if endpoint.key == "POST /2/tweets":
        # A post whose answer is lost is looked for on the account before anything is said.
        x.get("/2/users/me").respond(200, json={"data": {"id": "42", "username": "me", "name": "Me"}})
        x.get("/2/users/42/tweets").respond(200, json={"meta": {"result_count": 0}})

    exc = await failure(endpoint, client, TransportError)

    assert exc.endpoint == endpoint.key
    assert type(failure_kind).__name__ in f"{exc} {exc.detail}"
    assert exc.__cause__ is None
    if endpoint.key.startswith("POST /2/tweets") or endpoint.key.startswith("POST /2/dm_"):
        assert isinstance(exc, OutcomeUnknownError) and "before" in str(exc)


@pytest.mark.parametrize("endpoint", EVERY_ENDPOINT)
@pytest.mark.parametrize(
    ("response", "what"),
    [
        pytest.param(httpx.Response(201, text="<html>hi</html>"), "not JSON", id="not-json"),
        pytest.param(httpx.Response(200, json=[{"id": "1"}]), "not an object", id="top-level-list"),
    ],
)
async def test_a_success_whose_body_is_not_a_json_object_is_answer_unreadable_with_the_status(
    x, client: XClient, endpoint: Endpoint, response: httpx.Response, what: str
):
    endpoint.mock(x).mock(return_value=response)

    exc = await failure(endpoint, client, AnswerUnreadableError)

    assert (exc.status, exc.endpoint) == (response.status_code, endpoint.key)
    assert what in (exc.detail or "")
    assert "accepted" in str(exc)
    assert "<html>" not in str(exc)  # what X sent is never repeated: it may hold anything


@pytest.mark.parametrize("endpoint", [pytest.param(CREATE, id="POST-tweets"), pytest.param(DM, id="POST-dm")])
@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(201, json={}), id="empty-object"),
        pytest.param(httpx.Response(201, json={"data": {"id": 5}}), id="wrong-field-type"),
        pytest.param(httpx.Response(201, json={"data": None}), id="null-data"),
        pytest.param(httpx.Response(201, json={"data": ["x"]}), id="list-data"),
        pytest.param(httpx.Response(201), id="no-body"),
    ],
)
async def test_a_success_in_a_shape_that_cant_be_read_is_answer_unreadable(
    x, client: XClient, endpoint: Endpoint, response: httpx.Response
):
    endpoint.mock(x).mock(return_value=response)

    exc = await failure(endpoint, client, AnswerUnreadableError)

    assert exc.endpoint == endpoint.key and "accepted" in str(exc)


@pytest.mark.parametrize("endpoint", [pytest.param(GET_ME, id="GET-users-me"), pytest.param(CREATE, id="POST-tweets")])
async def test_error_without_a_json_body_falls_back_to_the_http_reason(x, client: XClient, endpoint: Endpoint):
    endpoint.mock(x).respond(400, text="<html>Bad Request</html>")

    exc = await failure(endpoint, client, InvalidInputError)

    assert (exc.status, exc.detail, exc.problem_type) == (400, "Bad Request", None)
    assert str(exc) == f"X answered 400 on {endpoint.key}: Bad Request"
