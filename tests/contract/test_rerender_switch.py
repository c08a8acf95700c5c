"""``ImageRepository.switch_renditions``: a re-render's one conditional write, the same
cases on the fake and on DynamoDB (moto)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import ConditionFailed
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord, ProcessingOutcome, Rendition
from tests.contract.backends import Backend
from tests.contract.test_image_repository import ID, T0, T1, T2, pending

V3 = 3
RENDERED = ProcessingOutcome(
    status=ImageStatus.COMPLETED,
    width=4000,
    height=3000,
    placeholder="data:new",
    renditions=[
        Rendition(width=640, height=480, format="webp", key=f"images/alice/{ID}/v3/640.webp", bytes=9000),
    ],
    rendition_version=V3,
    thumbhash="th",
    dominant_color="#102030",
    perceptual_hash="0123456789abcdef",
)


def completed(**fields: Any) -> ImageRecord:
    values: dict[str, Any] = {
        "status": ImageStatus.COMPLETED,
        "width": 800,
        "height": 600,
        "updated_at": T1,
        "duplicate_of": "01J00000000000000000000009",
    }
    return pending(**(values | fields))


def test_switch_sets_only_the_rendition_fields(backend: Backend) -> None:
    backend.seed(completed(rendition_version=2, version=4, title="Renamed meanwhile"))

    record = backend.images.switch_renditions(ID, RENDERED)

    assert record == completed(
        rendition_version=V3,
        version=4,
        title="Renamed meanwhile",
        width=4000,
        height=3000,
        placeholder="data:new",
        renditions=RENDERED.renditions,
        thumbhash="th",
        dominant_color="#102030",
        perceptual_hash="0123456789abcdef",
    )
    assert record.updated_at == T1  # a re-render is not an edit
    assert backend.images.get(ID) == record


def test_switch_applies_to_an_imported_image_without_a_spec_version(backend: Backend) -> None:
    backend.seed(completed(legacy_image_key="legacy/a.jpg", legacy_thumbnail_key="legacy/a_t.jpg"))

    record = backend.images.switch_renditions(ID, RENDERED)

    assert record.rendition_version == V3
    assert record.renditions == RENDERED.renditions


@pytest.mark.parametrize(
    "record",
    [
        completed(rendition_version=V3),  # already there: running twice changes nothing
        completed(rendition_version=V3 + 1),  # a newer spec never goes back
        completed(deleted_at=T2),
        pending(),
        completed(status=ImageStatus.FAILED, width=None, height=None),
    ],
    ids=["same-spec", "newer-spec", "deleted", "pending", "failed"],
)
def test_switch_is_refused_and_changes_nothing(backend: Backend, record: ImageRecord) -> None:
    backend.seed(record)

    with pytest.raises(ConditionFailed):
        backend.images.switch_renditions(ID, RENDERED)

    assert backend.images.get(ID) == record


def test_switch_of_an_unknown_image_is_refused(backend: Backend) -> None:
    with pytest.raises(ConditionFailed):
        backend.images.switch_renditions(ID, RENDERED)
    assert backend.image_records() == {}


def test_a_patch_after_the_switch_keeps_the_new_renditions(backend: Backend) -> None:
    backend.seed(completed(rendition_version=2))
    backend.images.switch_renditions(ID, RENDERED)

    backend.queries.update_metadata(ID, "alice", {"title": "Later"}, 1, T0)

    current = backend.images.get(ID)
    assert current is not None
    assert (current.title, current.rendition_version, current.renditions) == ("Later", V3, RENDERED.renditions)


def test_a_rerender_error_marks_a_completed_image_and_nothing_else(backend: Backend) -> None:
    backend.seed(completed(legacy_image_key="images/legacy/a.jpg"))

    record = backend.images.mark_rerender_error(ID, "corrupt_image", T2)

    assert record == completed(
        legacy_image_key="images/legacy/a.jpg", rerender_error="corrupt_image", rerender_error_at=T2
    )
    assert backend.images.get(ID) == record


@pytest.mark.parametrize("record", [completed(deleted_at=T2), pending()], ids=["deleted", "pending"])
def test_a_rerender_error_is_not_marked_on_a_deleted_or_unfinished_image(backend: Backend, record: ImageRecord) -> None:
    backend.seed(record)

    with pytest.raises(ConditionFailed):
        backend.images.mark_rerender_error(ID, "corrupt_image", T2)

    assert backend.images.get(ID) == record


def test_a_successful_switch_clears_the_rerender_error(backend: Backend) -> None:
    backend.seed(completed(rerender_error="original_missing", rerender_error_at=T2))

    record = backend.images.switch_renditions(ID, RENDERED)

    assert (record.rerender_error, record.rerender_error_at) == (None, None)
    assert backend.images.get(ID) == record


def test_an_object_of_the_image_bucket_is_read_and_a_missing_one_is_none(backend: Backend) -> None:
    backend.store.write_image("images/legacy/a.jpg", b"legacy bytes", "image/jpeg")

    assert backend.store.read_image("images/legacy/a.jpg") == b"legacy bytes"
    assert backend.store.read_image("images/legacy/gone.jpg") is None
