"""The seeded world every sandbox starts from (and returns to on reset)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedUser:
    id: str
    username: str
    name: str
    accepts_dms: bool


DEMO_USERNAME = "xcourier_demo"

USERS: tuple[SeedUser, ...] = (
    SeedUser("1700000000000000001", DEMO_USERNAME, "xcourier demo", True),
    SeedUser("1700000000000000002", "alice", "Alice", True),
    SeedUser("1700000000000000003", "bob", "Bob", True),
    SeedUser("1700000000000000004", "carol", "Carol", False),
)

# (username, text, hours before the hour the sandbox was seeded)
POSTS: tuple[tuple[str, str, int], ...] = (
    ("alice", "Good morning from Alice! First post in the sandbox.", 30),
    ("bob", "Bob here: testing the X API sandbox.", 28),
    ("alice", "Alice's second post: coffee first, code later.", 20),
    ("bob", "Bob's second post: the build is green.", 12),
    ("alice", "Alice's third post: shipping today.", 6),
    ("bob", "Bob's third post: off to lunch.", 2),
)
