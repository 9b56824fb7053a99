"""Whatever X sends, a watched user's kept posts read back exactly as sent: generated inputs, fixed seeds.

The compact records (server/watcher.py, `_pack`) store X's usual values as nothing and rebuild them when
read, so these tests aim at the edges of "usual": ids that are not the plain spelling of a 64-bit number,
created_at one second off or in another spelling, texts with lone surrogates, astral characters and
runs too long for a 2-byte size, edit histories of any shape.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from xcourier.server.watcher import RECENT, RecentPost, Watched
from xcourier.tools.timeline import Post, posted_at

SEEDS = range(400)
U64 = 2**64

CHARACTERS = [
    *'abcxyz09 #@:/.\n\t"\\',
    "\x00",
    "\x7f",
    "\xe9",  # é
    "\xff",
    "\u0100",
    "\u732b",  # CJK
    "\uac00",  # Hangul
    "\ufeff",  # a byte-order mark, which must not be taken for one
    "\uffff",
    "\U0001f600",  # emoji: astral, a surrogate pair in UTF-16
    "\U0010ffff",
    "\ud800",  # lone high surrogate (JSON's "\ud800" gives one)
    "\udfff",  # lone low surrogate
    "\ud83d\ude00",  # a high and a low surrogate side by side, as two code points (not the emoji)
]


def x_time(post_id: str) -> str | None:
    """created_at as X spells it for this id, worked out here independently of the code under test."""
    try:
        return datetime.fromtimestamp(int(posted_at(post_id)), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    except (OverflowError, OSError, ValueError):  # ids far past 64 bits are beyond any calendar
        return None


def random_id(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return "0" * rng.randint(1, 3) + str(rng.randrange(U64))  # leading zeros
    if kind == 1:
        return str(rng.choice([0, 1, U64 - 1, U64, U64 + 1, 2**63, 2**63 - 1]))
    if kind == 2:
        return str(rng.randrange(U64, 10**30))  # past 64 bits
    return str(rng.randrange(1, 2**63))  # a snowflake


def random_text(rng: random.Random, longest: int = 300) -> str:
    if rng.random() < 0.1:
        return ""
    ascii_only = rng.random() < 0.3
    pool = CHARACTERS[:20] if ascii_only else CHARACTERS
    return "".join(rng.choice(pool) for _ in range(rng.randint(1, longest)))


def random_created(rng: random.Random, post_id: str) -> str | None:
    own = x_time(post_id)
    kind = rng.randrange(6)
    if kind == 0:
        return None
    if kind == 1 and own is not None:
        return own.replace(".000Z", "Z")  # another ISO 8601 spelling of the same second
    if kind == 2 and own is not None:
        # X's spelling, another second
        return datetime.fromtimestamp(int(posted_at(post_id)) + rng.choice([-1, 1, 3600]), tz=UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
    if kind == 3:
        return random_text(rng, 40)
    return own


def random_edits(rng: random.Random, post_id: str) -> list[str]:
    kind = rng.randrange(5)
    if kind == 0:
        return []
    if kind == 1:
        return [random_id(rng) for _ in range(rng.randint(1, 5))] + [post_id]
    if kind == 2:
        return [random_text(rng, 20) for _ in range(rng.randint(1, 3))]
    return [post_id]


def random_post(rng: random.Random, post_id: str | None = None) -> Post:
    post_id = random_id(rng) if post_id is None else post_id
    return Post.model_validate(
        {
            "id": post_id,
            "text": random_text(rng),
            "created_at": random_created(rng, post_id),
            "edit_history_tweet_ids": random_edits(rng, post_id),
        }
    )


def as_sent(post: Post) -> RecentPost:
    return RecentPost(post.id, post.text, list(post.edit_history_tweet_ids), post.created_at)


def exactly(posts: list[RecentPost]) -> list[tuple[object, ...]]:
    """Posts with every string's type shown too: "==" alone would let a str subclass through."""
    return [
        (p.id, type(p.id), p.text, type(p.text), p.edit_history_tweet_ids, p.created_at, type(p.created_at))
        for p in posts
    ]


@pytest.mark.parametrize("seed", SEEDS)
def test_any_post_reads_back_exactly_as_sent(seed: int) -> None:
    rng = random.Random(seed)
    posts = [random_post(rng) for _ in range(rng.randint(1, RECENT))]
    unique = {p.id: p for p in posts}
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.remember(posts)
    expected = sorted(unique.values(), key=lambda p: int(p.id))
    assert exactly(watched.recent) == exactly([as_sent(p) for p in expected])


def test_runs_too_long_for_a_two_byte_size_read_back_exactly() -> None:
    post_id = str(2**63 + 5)
    long_ascii = "a" * 70_000
    surrogate_and_cjk = "\ud800" + "\u732b" * 30_000  # no UTF-16 for it: 90,003 bytes of UTF-8
    post = Post.model_validate(
        {
            "id": post_id,
            "text": long_ascii,
            "created_at": "t" * 70_000,
            "edit_history_tweet_ids": [*map(str, range(70_000)), post_id],
        }
    )
    other = Post.model_validate({"id": "0" + post_id, "text": surrogate_and_cjk, "edit_history_tweet_ids": []})
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.remember([post, other])
    assert exactly(watched.recent) == exactly([as_sent(post), as_sent(other)])


@pytest.mark.parametrize("seed", range(100))
def test_remembering_and_forgetting_keep_the_newest_posts_in_id_order_as_a_plain_list_would(seed: int) -> None:
    rng = random.Random(seed)
    # Few distinct ids, some spelt two ways (leading zeros), so duplicates and forgotten ids come back.
    numbers = [rng.randrange(1, 2**63) for _ in range(RECENT + 10)]
    pool = [str(n) for n in numbers] + ["0" + str(n) for n in numbers[:5]]
    watched = Watched(username="u", user_id="42", cursor="1")
    model: dict[str, RecentPost] = {}
    for _ in range(30):
        if model and rng.random() < 0.3:
            post_id = rng.choice([*model, *rng.sample(pool, 2)])
            assert watched.forget(post_id) == (post_id in model)
            model.pop(post_id, None)
            continue
        batch = [random_post(rng, rng.choice(pool)) for _ in range(rng.randint(0, 2 * RECENT))]
        # A post already kept stays as it was; of one id sent twice in a batch, the later copy is kept.
        fresh = {p.id: as_sent(p) for p in batch if p.id not in model}
        model.update(sorted(fresh.items(), key=lambda item: int(item[0]))[-RECENT:])
        model = dict(sorted(model.items(), key=lambda item: int(item[0]))[-RECENT:])
        watched.remember(batch)
        assert exactly(watched.recent) == exactly(list(model.values()))
