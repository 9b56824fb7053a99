"""Clear messages for arguments of the wrong type.

The SDK validates tool arguments against the input schema before our handlers run, and on
a mismatch returns pydantic's text (type codes, input values, a documentation link). This
middleware rewrites that result into one line per argument an agent can act on.
"""

from __future__ import annotations

import re
from typing import Any

_HEADER = re.compile(r"^Error executing tool (?P<tool>\S+): \d+ validation errors? for \S+")
_FIELD_ERROR = re.compile(
    r"^(?P<field>\S[^\n]*)\n\s+(?P<message>[^\[\n]+?)\s*(?:\[type=(?P<kind>[^,\]]+)[^\n]*)?$", re.M
)


def _explain(field: str, message: str, kind: str | None) -> str:
    if kind == "missing":
        return f"`{field}` is required"
    if kind == "extra_forbidden":
        return f"`{field}` is not a parameter of this tool"
    return f"`{field}`: {message.rstrip('.')}"


def rewrite(text: str) -> str | None:
    header = _HEADER.match(text)
    if header is None:
        return None
    problems = [
        _explain(m["field"].strip(), m["message"], m["kind"]) for m in _FIELD_ERROR.finditer(text[header.end() :])
    ]
    listed = "; ".join(problems) if problems else "they don't match the input schema"
    return f"{header['tool']} got invalid arguments: {listed}. Check the tool's input schema and call again."


async def clearer_argument_errors(ctx: Any, call_next: Any) -> Any:
    result = await call_next(ctx)
    if ctx.method != "tools/call" or not isinstance(result, dict) or not result.get("isError"):
        return result
    content = result.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        clearer = rewrite(str(content[0].get("text", "")))
        if clearer is not None:
            return {**result, "content": [{"type": "text", "text": clearer}, *content[1:]]}
    return result
