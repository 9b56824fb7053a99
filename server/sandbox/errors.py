"""X's error bodies (RFC 7807 problems), as plain data; the HTTP layer renders them.

Shapes follow X's OpenAPI spec 2.167 (components/schemas/*Problem: typed problems under
https://api.x.com/2/problems/) and docs.x.com "Response codes and errors"
(xdevplatform/docs x-api/fundamentals/response-codes-and-errors.mdx), which also lists the
generic `about:blank` problem and the `client-forbidden` and `usage-capped` types the spec's
Problem schema leaves out. Wording quoted from X's responses cites where it was seen.
"""

from __future__ import annotations

from typing import Any

PROBLEMS = "https://api.x.com/2/problems/"
INVALID_REQUEST_TYPE = PROBLEMS + "invalid-request"
NOT_FOUND_TYPE = PROBLEMS + "resource-not-found"
CLIENT_FORBIDDEN_TYPE = PROBLEMS + "client-forbidden"
USAGE_CAPPED_TYPE = PROBLEMS + "usage-capped"
CREDITS_DEPLETED_TYPE = PROBLEMS + "credits-depleted"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class XProblem(Exception):
    """An X error response: HTTP status plus the JSON body X would send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('detail') or body.get('title')}")
        self.status = status
        self.body = body


def generic(status: int, detail: str | None = None) -> XProblem:
    # docs.x.com lists `about:blank` as X's "generic error (see HTTP status code)".
    title = _TITLES.get(status, "Error")
    return XProblem(status, {"title": title, "detail": detail or title, "type": "about:blank", "status": status})


def unauthorized() -> XProblem:
    return generic(401, "Unauthorized")


def forbidden(detail: str) -> XProblem:
    return generic(403, detail)


def too_many_requests() -> XProblem:
    return generic(429, "Too Many Requests")


def invalid_request(message: str, parameters: dict[str, list[str]] | None = None) -> XProblem:
    # X omits `status` in invalid-request problems; the HTTP status is 400.
    return XProblem(
        400,
        {
            "errors": [{"parameters": parameters or {}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID_REQUEST_TYPE,
        },
    )


def not_found_entry(resource_type: str, parameter: str, value: str) -> dict[str, Any]:
    """The partial-error entry X puts in `errors[]` (also the body of a 404)."""
    return {
        "value": value,
        "detail": f"Could not find {resource_type} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": NOT_FOUND_TYPE,
    }


def not_found(resource_type: str, parameter: str, value: str) -> XProblem:
    return XProblem(404, {**not_found_entry(resource_type, parameter, value), "status": 404})


def client_forbidden(detail: str, required_enrollment: str) -> XProblem:
    """X's refusal of an endpoint the app's plan does not include. The fields (`reason`
    client-not-enrolled, `required_enrollment`, `registration_url`) are those of X's long-standing
    client-forbidden answer to apps without the access level an endpoint needs."""
    return XProblem(
        403,
        {
            "title": "Client Forbidden",
            "detail": detail,
            "type": CLIENT_FORBIDDEN_TYPE,
            "reason": "client-not-enrolled",
            "required_enrollment": required_enrollment,
            "registration_url": "https://console.x.com",
            "status": 403,
        },
    )


def usage_capped() -> XProblem:
    """429 with X's usage-cap body, as X clients quote it ({"title":"UsageCapExceeded",
    "period":"Monthly","scope":"Product","detail":"Usage cap exceeded: Monthly product cap",...}),
    under 2.167's api.x.com problem host."""
    return XProblem(
        429,
        {
            "title": "UsageCapExceeded",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": USAGE_CAPPED_TYPE,
            "period": "Monthly",
            "scope": "Product",
            "status": 429,
        },
    )


def credits_depleted() -> XProblem:
    """402 as X answers a pay-per-use app with no credits left: {"detail":"credits depleted",
    "status":402,"title":"Payment Required","type":"https://api.x.com/2/problems/credits-depleted"}
    (the body X clients quote since 2026; docs.x.com's pricing page only says "out of credits")."""
    return XProblem(
        402, {"title": "Payment Required", "detail": "credits depleted", "type": CREDITS_DEPLETED_TYPE, "status": 402}
    )
