"""The index keys a record is stored under (pure functions: no IO)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.repositories.images import album_partition

ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


def test_ids_containing_the_separator_do_not_share_an_album_partition() -> None:
    assert album_partition("a#b", "c") != album_partition("a", "b#c")
    assert album_partition("a", "b#c") == "ALBUM#1#a#b#c"


@given(ids, ids, ids, ids)
def test_two_albums_share_a_partition_only_when_owner_and_album_are_the_same(
    user: str, album: str, other_user: str, other_album: str
) -> None:
    same = (user, album) == (other_user, other_album)
    assert (album_partition(user, album) == album_partition(other_user, other_album)) is same
