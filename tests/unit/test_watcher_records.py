"""A watched user's newest posts are kept as compact records, and read back exactly as X sent them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from xcourier.server.watcher import RECENT, RecentPost, Watched
from xcourier.tools.timeline import Post, posted_at

# X's own sample (x-api/fundamentals/data-dictionary.mdx): the id's time is 19:26:16.771.
SAMPLE_ID = "1212092628029698048"
SAMPLE_ID_INT = int(SAMPLE_ID)
SAMPLE_CREATED = "2019-12-31T19:26:16.000Z"


def x_post(post_id: int, **fields: object) -> Post:
    """A post as X sends it: created_at is its id's own time in whole seconds."""
    created = datetime.fromtimestamp(int(posted_at(str(post_id))), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return Post.model_validate({"id": str(post_id), "text": f"post {post_id}", "created_at": created, **fields})


def atoms(value: object) -> list[object]:
    if isinstance(value, tuple):
        return [atom for item in value for atom in atoms(item)]
    return [value]


def test_the_newest_posts_are_kept_without_any_pydantic_model_or_per_post_object() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    posts = [x_post(SAMPLE_ID_INT + i * 2**22) for i in range(RECENT + 5)]
    watched.remember(posts)
    kept = atoms(watched.packed)
    assert not any(isinstance(atom, BaseModel) for atom in kept)
    # Only strings X sent (the very objects, not copies), and what stands for nothing (None, 0).
    assert {type(atom) for atom in kept} <= {str, int, type(None)}
    assert [atom for atom in kept if isinstance(atom, int)] == [0] * RECENT
    sent = {id(s) for post in posts for s in (post.id, post.text)}
    assert all(id(atom) in sent for atom in kept if isinstance(atom, str))
    assert not hasattr(watched, "__dict__")  # slotted: no per-user attribute dictionary either


def test_x_sample_post_reads_back_exactly() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    post = Post.model_validate({"id": SAMPLE_ID, "text": "We believe", "created_at": SAMPLE_CREATED})
    watched.remember([post])
    assert watched.recent == [RecentPost(SAMPLE_ID, "We believe", [SAMPLE_ID], SAMPLE_CREATED)]


@pytest.mark.parametrize(
    "created_at",
    [
        None,
        "2019-12-31T19:26:16Z",  # another ISO 8601 spelling
        "2019-12-31T19:26:16.771Z",  # milliseconds
        "2019-12-31T19:26:16.000+00:00",
        "2019-13-31T19:26:16.000Z",  # X's shape, not a time
        "2011-01-01T00:00:00.000Z",  # X's spelling, years from the id's time
        "not a time",
    ],
)
def test_any_created_at_reads_back_as_it_was_sent(created_at: str | None) -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.remember([Post.model_validate({"id": SAMPLE_ID, "text": "t", "created_at": created_at})])
    assert watched.recent[0].created_at == created_at


def test_an_edited_posts_history_and_an_empty_text_read_back_as_sent() -> None:
    edits = ["1212092628029698040", SAMPLE_ID]
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.remember([Post.model_validate({"id": SAMPLE_ID, "text": None, "edit_history_post_ids": edits})])
    assert watched.recent == [RecentPost(SAMPLE_ID, "", edits, None)]


def test_a_deleted_post_leaves_and_the_rest_stay_in_order() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.remember([x_post(i) for i in (SAMPLE_ID_INT, SAMPLE_ID_INT + 1, SAMPLE_ID_INT + 2)])
    assert watched.forget(str(SAMPLE_ID_INT + 1)) and not watched.forget(str(SAMPLE_ID_INT + 1))
    assert [p.id for p in watched.recent] == [str(SAMPLE_ID_INT), str(SAMPLE_ID_INT + 2)]
    assert [p.text for p in watched.recent] == [f"post {SAMPLE_ID_INT}", f"post {SAMPLE_ID_INT + 2}"]
