"""X's error bodies (RFC 7807 problems), as plain data; the HTTP layer renders them.

Shapes follow X's OpenAPI spec (components/schemas/*Problem) and responses seen from X
(e.g. resource-not-found bodies quoted in HunterLarco/twitter-v2#33 and plhery/node-twitter-api-v2#338).
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST_TYPE = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
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
