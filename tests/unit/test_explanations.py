"""The one message per failure that the agent reads: what happened on X, what to do, in clean sentences."""

from __future__ import annotations

import re
import time

import pytest

from xcourier.server.results import explain
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
    MissingScopeError,
    NotFoundError,
    NotSentError,
    OutcomeUnknownError,
    RateLimit,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UsageCappedError,
    UserNotFoundError,
    Window,
    XError,
)

SAID = "X's own sentence, ending in a full stop."
DAY_RESET = time.time() + 20 * 3600


def day_spent() -> RateLimit:
    quarter = Window("15-minute", 50, 12, time.time() + 600)
    day = Window("24-hour per-user", 1000, 0, DAY_RESET)
    return RateLimit(limit=50, remaining=12, reset_at=quarter.reset_at, windows=(quarter, day))


EVERY_FAMILY: list[XError] = [
    InvalidInputError("x", status=400, detail=SAID),
    InvalidInputError("createPost needs `text`, `media`, or both; both were empty."),
    RateLimitedError("x", status=429, detail=SAID, rate_limit=day_spent()),
    RateLimitedError("x", status=429, detail=SAID),
    CreditsDepletedError("x", status=402, detail=SAID),
    UsageCappedError("x", status=429, detail=SAID),
    AppOnlyTokenError("x", status=403, detail=SAID),
    UnauthorizedError("x", status=401, detail=SAID),
    MissingScopeError("x", scopes=("like.write",)),
    ForbiddenError("x", status=403, detail=SAID, reason=DUPLICATE_CONTENT),
    ForbiddenError("x", status=403, detail=SAID, reason=LIKES_NEED_ENTERPRISE),
    ForbiddenError("x", status=403, detail=SAID, reason=CLIENT_NOT_ENROLLED),
    ForbiddenError("@bob does not accept direct messages. X said: " + SAID, detail=SAID, reason=DM_NOT_ALLOWED),
    ForbiddenError("x", status=403, detail=SAID),
    NotFoundError("x", status=404, detail="Could not find tweet with id: [1]."),
    UserNotFoundError("There is no X user @bob. Check the spelling.", status=404, detail=SAID),
    ServerError("x", status=503, detail=SAID),
    NotSentError("x", base_url="https://api.x.com", reason="the connection was refused", detail="ConnectError"),
    AnswerUnreadableError("X accepted POST /2/tweets (HTTP 201), but xcourier could not read its answer: data."),
    OutcomeUnknownError("The post was sent but X's answer was lost. Check the account."),
    TransportError("x", endpoint="POST /2/tweets", detail="ReadTimeout"),
]


@pytest.mark.parametrize("exc", EVERY_FAMILY, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(("writes", "sent"), [(True, True), (True, False), (False, True)])
def test_no_message_ends_a_sentence_twice(exc: XError, writes: bool, sent: bool):
    text = explain(exc, writes=writes, on_sandbox=False, sent=sent)

    assert not re.search(r"(?<!\.)\.\.(?!\.)", text), text  # "..." (an ellipsis) is not a doubled full stop
    assert text.rstrip().endswith((".", "`.", ")")), text


def test_a_spent_24_hour_window_gives_its_reset_not_the_15_minute_one():
    text = explain(RateLimitedError("x", status=429, rate_limit=day_spent()), writes=True, on_sandbox=False)

    assert "24-hour per-user rate limit" in text and "(1000 calls per 24 hours)" in text
    assert "in about 20 h" in text


def test_an_unknown_user_keeps_what_x_said():
    exc = UserNotFoundError("There is no X user @bob.", status=404, detail="Could not find user with username: [bob].")

    assert explain(exc, writes=True, on_sandbox=False) == (
        "There is no X user @bob. X said: Could not find user with username: [bob]."
    )


def test_an_unreadable_answer_to_the_write_says_it_is_done_and_not_to_repeat_it():
    exc = AnswerUnreadableError("X accepted POST /2/tweets (HTTP 201), but xcourier could not read its answer: x.")

    done = explain(exc, writes=True, on_sandbox=False, sent=True)
    before = explain(exc, writes=True, on_sandbox=False, sent=False)

    assert "it is done on the account" in done and "Don't repeat this call" in done
    assert "the action itself was not sent" in before and "Calling again is safe" in before


def test_not_sent_names_the_address_and_what_to_check():
    exc = NotSentError("x", base_url="https://api.x.example:8443", reason="the host name could not be resolved (DNS)")

    text = explain(exc, writes=True, on_sandbox=False)

    assert text.startswith("X could not be reached at https://api.x.example:8443 (the host name could not be resolved")
    assert "Nothing was sent to X" in text and "--api-base-url" in text and "network" in text


def test_credits_depleted_says_to_add_credits_and_not_to_wait():
    text = explain(CreditsDepletedError("x", status=402), writes=True, on_sandbox=False)

    assert "Add credits in the X developer console" in text and "auto-recharge" in text
    assert "wait" not in text
