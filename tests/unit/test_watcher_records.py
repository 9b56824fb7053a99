"""A watched user's newest posts are kept as compact records, and read back exactly as X sent them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


def test_a_usual_x_post_is_kept_as_11_bytes_and_its_utf8_text_in_one_bytes_blob() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    posts = [x_post(SAMPLE_ID_INT + i * 2**22) for i in range(RECENT + 5)]
    watched.remember(posts)
    # X's usual post (its id a plain number, created_at the id's own second, no edits) costs its id's
    # 8 bytes, 3 bytes of flags and size, and its UTF-8 text: no model, no per-post or per-string object.
    assert type(watched.packed) is bytes
    assert len(watched.packed) == sum(11 + len(post.text.encode()) for post in posts[-RECENT:])
    assert [p.id for p in watched.recent] == [post.id for post in posts[-RECENT:]]
    assert not hasattr(watched, "__dict__")  # slotted: no per-user attribute dictionary either


def test_cjk_text_is_kept_in_2_bytes_a_character_not_utf8s_3() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    text = "\u732b\u304c\u597d\u304d" * 35  # 140 CJK characters
    watched.remember([x_post(SAMPLE_ID_INT, text=text)])
    assert len(watched.packed) == 11 + 2 * len(text)
    assert watched.recent[0].text == text


def test_a_local_watched_user_has_no_hosted_maps_until_one_is_written() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.uris["session"] = "x://users/u/posts"
    assert watched._callers is None and watched._grants is None
    assert (watched.callers, watched.grants) == ({}, {})  # reading makes no map either
    assert watched._callers is None and watched._grants is None
    watched.note_caller("session", "7")
    watched.note_grant("session", "grant")
    assert (watched.callers, watched.grants) == ({"session": "7"}, {"session": "grant"})
    local = Watched(username="v", user_id="43", cursor="1")
    local.uris["other"] = "x://users/v/posts"
    local.drop_subscriber("other")  # an unsubscription on a local server
    assert local.uris == {} and local._callers is None and local._grants is None


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
