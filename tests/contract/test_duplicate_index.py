"""``DuplicateIndex``: bucket items read earliest first within the owner's partition and
before a bound, bounded per bucket; back-references; the conditional re-point; the renditions
a completed record keeps. The same cases on the fake and on DynamoDB (moto)."""

from __future__ import annotations

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ProcessingOutcome, Rendition
from chalicelib.repositories.duplicates import CANDIDATES_PER_BUCKET
from chalicelib.repositories.keys import phash_sort
from tests.contract.backends import Backend
from tests.contract.test_image_queries import created_at
from tests.contract.test_image_repository import EPOCH, ID, OTHER, T0, T1, T2, pending

BUCKETS = ("0:1a2", "1:0ff")


def test_candidates_are_the_owners_earliest_before_the_bound_in_any_shared_bucket(backend: Backend) -> None:
    index = backend.duplicates
    index.add("alice", "01JB", "00000000000000bb", BUCKETS[:1], T1)
    index.add("alice", "01JA", "00000000000000aa", BUCKETS, T0)
    index.add("alice", "01JC", "00000000000000cc", BUCKETS[1:], T2)
    index.add("bob", "01JD", "00000000000000dd", BUCKETS, T0)
    index.add("alice", "01JE", "00000000000000ee", ("2:000",), T0)

    found = index.candidates("alice", BUCKETS, phash_sort(T2, "01JZ"))

    assert [(c.image_id, c.perceptual_hash) for c in found] == [
        ("01JA", "00000000000000aa"),  # in both buckets, read once
        ("01JB", "00000000000000bb"),
        ("01JC", "00000000000000cc"),
    ]
    # Only those completed before the bound.
    assert [c.image_id for c in index.candidates("alice", BUCKETS, phash_sort(T1, "01JB"))] == ["01JA"]

    index.remove("alice", "01JA", BUCKETS, T0)
    index.remove("alice", "01JA", BUCKETS, T0)  # again: nothing left, no error
    assert [c.image_id for c in index.candidates("alice", BUCKETS, phash_sort(T2, "01JZ"))] == ["01JB", "01JC"]


def test_a_bucket_gives_at_most_its_limit_earliest_first(backend: Backend) -> None:
    for n in range(CANDIDATES_PER_BUCKET + 5):
        backend.duplicates.add("alice", f"01J{n:04d}", f"{n:016x}", BUCKETS[:1], created_at(n))

    found = backend.duplicates.candidates("alice", BUCKETS[:1], phash_sort(created_at(999), "01JZ"))

    assert [c.image_id for c in found] == [f"01J{n:04d}" for n in range(CANDIDATES_PER_BUCKET)]


def test_back_references_and_the_conditional_repoint(backend: Backend) -> None:
    backend.images.create(pending(ID), None, EPOCH)
    backend.images.start_processing(ID, T1, T2)
    outcome = ProcessingOutcome(status=ImageStatus.COMPLETED, width=10, height=10, duplicate_of=OTHER)
    backend.images.finish_processing(ID, outcome, "event", T1)
    index = backend.duplicates
    index.add_back_reference(OTHER, ID)
    index.add_back_reference(OTHER, ID)

    assert index.back_references(OTHER) == [ID]
    assert index.repoint(ID, "01JSOMEONEELSE", None) is False  # no longer names that one
    assert index.repoint(ID, OTHER, "01JNEXT") is True
    assert backend.image_records()[ID].duplicate_of == "01JNEXT"
    assert index.repoint(ID, "01JNEXT", None) is True
    assert backend.image_records()[ID].duplicate_of is None

    index.remove_back_reference(OTHER, ID)
    assert index.back_references(OTHER) == []
    assert index.repoint("01JNOSUCHIMAGE", OTHER, None) is False


def test_a_completed_record_keeps_its_renditions_and_placeholders(backend: Backend) -> None:
    backend.images.create(pending(ID), None, EPOCH)
    backend.images.start_processing(ID, T1, T2)
    renditions = [
        Rendition(width=320, height=180, format="webp", key="images/alice/x/v2/320.webp", bytes=9120),
        Rendition(width=640, height=360, format="webp", key="images/alice/x/v2/640.webp", bytes=30111),
        Rendition(width=320, height=180, format="avif", key="images/alice/x/v2/320.avif", bytes=7000),
    ]
    outcome = ProcessingOutcome(
        status=ImageStatus.COMPLETED,
        width=640,
        height=360,
        renditions=renditions,
        rendition_version=2,
        thumbhash="HBkSHYSIeHiPiHh8eJd4eTN0EEQG",
        dominant_color="#4a6b8c",
        perceptual_hash="0123456789abcdef",
    )

    written = backend.images.finish_processing(ID, outcome, "event", T1)

    stored = backend.image_records()[ID]
    assert written == stored
    assert stored.renditions == renditions
    assert (stored.rendition_version, stored.thumbhash, stored.dominant_color, stored.perceptual_hash) == (
        2,
        "HBkSHYSIeHiPiHh8eJd4eTN0EEQG",
        "#4a6b8c",
        "0123456789abcdef",
    )
    assert stored.duplicate_of is None
