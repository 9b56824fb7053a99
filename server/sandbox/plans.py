"""X's API plans and the rules that differ between them, in one place.

Sources (xdevplatform/docs, the docs.x.com pages as of 2026-08):
- changelog.mdx, 2026-02-06: pay-per-use (credits) launched, the plan a new developer gets;
  Basic and Pro remain for existing subscribers. "Self-serve" = pay-per-use, Basic, Pro.
- changelog.mdx, 2026-02-23 and x-api/posts/manage-tweets/integrate.mdx ("Post creation
  restrictions (self-serve)"): a reply via POST /2/tweets only when the replied-to post's author
  summoned the account (@mentioned it, or quoted one of its posts); at most 1 cashtag per post.
  Enterprise is not affected.
- changelog.mdx, 2026-04-16 (effective 2026-04-20): "Following, Likes, and Quote-Posts via the API
  have been removed from all self-serve tiers."
- x-api/getting-started/pricing.mdx: pay-per-use prices, billed per request (writes) or per
  resource returned (reads), the same resource billed once per UTC day; 3 million post reads per
  monthly billing cycle. The pricing page says nothing of media uploads: the sandbox bills none.
- x-api/posts/search/integrate/build-a-query.mdx: recent-search queries up to 512 characters on
  self-serve plans, 4,096 on Enterprise.

Where X's exact answer is not documented, the function building it says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import errors

PAY_PER_USE = "pay-per-use"
BASIC = "basic"
PRO = "pro"
ENTERPRISE = "enterprise"
PLANS: tuple[str, ...] = (PAY_PER_USE, BASIC, PRO, ENTERPRISE)
DEFAULT_PLAN = PAY_PER_USE
SELF_SERVE: frozenset[str] = frozenset({PAY_PER_USE, BASIC, PRO})

# pricing.mdx: "Pay-per-usage plans are capped at 3 million Post reads per monthly billing cycle".
PAY_PER_USE_MONTHLY_POST_READS = 3_000_000


@dataclass(frozen=True)
class Plan:
    name: str

    @property
    def self_serve(self) -> bool:
        return self.name in SELF_SERVE

    @property
    def pays_with_credits(self) -> bool:
        return self.name == PAY_PER_USE

    @property
    def max_query_length(self) -> int:
        return 512 if self.self_serve else 4096

    @property
    def monthly_post_read_cap(self) -> int | None:
        return PAY_PER_USE_MONTHLY_POST_READS if self.pays_with_credits else None


def parse_plan(value: str) -> Plan:
    name = value.strip().lower()
    if name not in PLANS:
        raise ValueError(f"unknown plan {value!r}: choose one of {', '.join(PLANS)}")
    return Plan(name)


# ---- likes and quote posts ----------------------------------------------------------------------


def check_like(plan: Plan) -> None:
    if plan.self_serve:
        # X's wording for this refusal is not documented: the status and the client-forbidden
        # shape are inferred from X's answer to endpoints outside an app's access level.
        raise errors.client_forbidden(
            f"Likes via the X API are not available on self-serve plans ({plan.name}): they were removed "
            "from pay-per-use, Basic and Pro on 2026-04-20. Liking needs an Enterprise plan.",
            "Enterprise",
        )


def check_quote(plan: Plan) -> None:
    if plan.self_serve:
        # Inferred like the like refusal above: X documents the removal, not the answer.
        raise errors.client_forbidden(
            f"Quote posts via the X API are not available on self-serve plans ({plan.name}) since 2026-04-20. "
            "Quoting needs an Enterprise plan.",
            "Enterprise",
        )


# ---- replies and cashtags -----------------------------------------------------------------------

# X's answer to an unsummoned reply, as developers quote it since 2026-02-23 (403, about:blank).
REPLY_NOT_SUMMONED = (
    "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged "
    "by the author of the post you are replying to."
)
# X's long-standing answer to a reply to a deleted or invisible post.
REPLY_TARGET_GONE = "You attempted to reply to a Tweet that is deleted or not visible to you."


def check_reply(plan: Plan, replier_id: str, target_author_id: str, summoned: bool) -> None:
    """`summoned`: the target's author @mentioned the replier in it, or it quotes a post of theirs."""
    if not plan.self_serve or replier_id == target_author_id:
        # Replying to one's own post (a thread) is not a summons question; X's docs don't say
        # so explicitly, the sandbox infers it.
        return
    if not summoned:
        raise errors.forbidden(REPLY_NOT_SUMMONED)


# twitter-text's cashtag rule: `$` and 1-6 letters, optionally `.` or `_` and 1-2 letters, at the
# start or after whitespace, ending at whitespace, punctuation or the end (twitter-text
# conformance, extract.yml "cashtags").
_CASHTAG = re.compile(r"(?:^|(?<=\s))[$\uff04]([a-z]{1,6}(?:[._][a-z]{1,2})?)(?=$|\s|[^\w$\uff04])", re.IGNORECASE)


def cashtags(text: str) -> list[str]:
    return [match.group(1) for match in _CASHTAG.finditer(text)]


def check_cashtags(plan: Plan, text: str) -> None:
    if plan.self_serve and len(cashtags(text)) > 1:
        # "Requests that include more than 1 cashtag will be rejected" (manage-tweets/integrate.mdx);
        # the 403 and this wording are as developers quote X's answer, not documented by X.
        raise errors.forbidden("Posts are limited to a maximum of one cashtag.")


# ---- search -------------------------------------------------------------------------------------


def check_query_length(plan: Plan, query: str) -> None:
    limit = plan.max_query_length
    if len(query) > limit:
        # The limit is documented; the message is inferred.
        raise errors.invalid_request(
            f"The `query` query parameter value must be at most {limit} characters on the {plan.name} plan "
            f"(got {len(query)}).",
            {"query": [query[:50]]},
        )


# ---- pay-per-use prices (micro-dollars, pricing.mdx) ---------------------------------------------

POST_CREATE = 15_000
POST_CREATE_WITH_URL = 200_000
POST_CREATE_SUMMONED = 10_000
DM_CREATE = 15_000
USER_INTERACTION_CREATE = 15_000  # like, repost
CONTENT_MANAGE = 5_000  # deleting one's own post: "Content: Manage" (inferred mapping)
POST_READ = 5_000
OWNED_READ = 1_000  # changelog 2026-04-16: GET /2/users/{id}/tweets etc. on your own data
USER_READ = 10_000
