"""Recent-search queries: the part of X's query language the sandbox understands.

X's grammar (xdevplatform/docs x-api/posts/search/integrate/build-a-query.mdx): terms separated by
spaces are ANDed, `OR` between terms, `-` negates, parentheses group, "double quotes" make an
exact phrase. Operators modelled here: keywords (case-insensitive, whole words), "phrases",
`#hashtag`, `@mention`, `from:`, `to:`, `is:reply`, `is:quote`, `is:retweet`, `has:media`,
`has:links`. X evaluates AND before OR ("AND logic is applied first, then OR"); so does this.
Anything else is refused with a 400 that names it: a test that sends an operator the sandbox
doesn't model should fail loudly, not match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import errors

# Whatever the sandbox needs to know about a post to match it (the state's Post, duck-typed so this
# module stays free of state's imports).
Matcher = Callable[[Any, Callable[[str], str]], bool]

_TOKEN = re.compile(r'\s*(-?"[^"]*"|\(|\)|[^\s()]+)')
_WORD = re.compile(r"[\w#@$]+", re.UNICODE)
_OPERATORS = ("from:", "to:", "is:", "has:")
_USERNAME = re.compile(r"[a-z0-9_]{1,15}")
_OPERATOR = re.compile(r"[a-z_]+:")  # lang:en, url:..., place:...; a link (https://...) is a keyword


@dataclass(frozen=True)
class _Query:
    text: str

    def fail(self, why: str) -> errors.XProblem:
        return errors.invalid_request(
            f"There were errors processing your request: {why} in [{self.text}]", {"query": [self.text[:50]]}
        )


def parse(query: str) -> Matcher:
    """A predicate (post, username_of) -> bool for `query`; a 400 for what the sandbox can't read."""
    q = _Query(query)
    tokens = [t for t in _TOKEN.findall(query) if t]
    matcher, rest = _or(tokens, q)
    if rest:
        raise q.fail(f"unexpected '{rest[0]}'")
    return matcher


def _or(tokens: list[str], q: _Query) -> tuple[Matcher, list[str]]:
    branches = []
    left, tokens = _and(tokens, q)
    branches.append(left)
    while tokens and tokens[0] == "OR":
        right, tokens = _and(tokens[1:], q)
        branches.append(right)
    if len(branches) == 1:
        return left, tokens
    return (lambda post, name_of: any(b(post, name_of) for b in branches)), tokens


def _and(tokens: list[str], q: _Query) -> tuple[Matcher, list[str]]:
    parts: list[Matcher] = []
    while tokens and tokens[0] not in ("OR", ")"):
        token, tokens = tokens[0], tokens[1:]
        negated = token.startswith("-") and len(token) > 1
        if negated:
            token = token[1:]
        if token == "(":
            inner, tokens = _or(tokens, q)
            if not tokens or tokens[0] != ")":
                raise q.fail("unbalanced parentheses")
            tokens = tokens[1:]
        else:
            inner = _term(token, q)
        parts.append(_negate(inner) if negated else inner)
    if not parts:
        raise q.fail("an empty clause")
    return (lambda post, name_of: all(p(post, name_of) for p in parts)), tokens


def _negate(matcher: Matcher) -> Matcher:
    return lambda post, name_of: not matcher(post, name_of)


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _term(token: str, q: _Query) -> Matcher:
    lowered = token.lower()
    if token.startswith('"'):
        phrase = token.strip('"').lower()
        return lambda post, _: phrase in post.submitted_text.lower()
    if lowered.startswith(("from:", "to:")):
        operator, _, name = lowered.partition(":")
        if not _USERNAME.fullmatch(name):
            raise q.fail(f"'{token}' needs a username (1-15 letters, digits or underscores)")
        if operator == "from":
            return lambda post, name_of: name_of(post.author_id).lower() == name
        return lambda post, name_of: (
            post.in_reply_to is not None and name_of(post.in_reply_to.author_id).lower() == name
        )
    if lowered == "is:reply":
        return lambda post, _: post.in_reply_to is not None
    if lowered == "is:quote":
        return lambda post, _: post.quoted is not None
    if lowered == "is:retweet":
        # The sandbox keeps reposts as (user, post) pairs, never as posts: no post is a repost.
        return lambda post, _: False
    if lowered == "has:media":
        return lambda post, _: bool(post.media_keys)
    if lowered == "has:links":
        return lambda post, _: "http://" in post.submitted_text or "https://" in post.submitted_text
    if lowered.startswith(_OPERATORS) or (_OPERATOR.match(lowered) and "://" not in lowered):
        raise q.fail(f"the sandbox does not model the operator '{token}'")
    word = lowered
    return lambda post, _: word in _words(post.submitted_text)
