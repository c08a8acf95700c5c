"""The presenter's v1.1 fields: the ladder in order with URLs, srcset, and what a record
written before the ladder leaves out."""

from __future__ import annotations

from typing import Any

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import LADDER_BOXES, ImageRecord, Rendition, ladder_key
from chalicelib.services.presenter import Presenter
from processors.pipeline import LADDER
from tests.unit.fakes import CDN

ID = "01JD3ZK4Q8N6W2T1R5Y7B9C0DE"
T = "2026-03-14T09:00:00.000Z"


def record(**fields: Any) -> ImageRecord:
    values: dict[str, Any] = {
        "id": ID,
        "user_id": "a b",
        "status": ImageStatus.COMPLETED,
        "original_filename": "x.jpg",
        "content_type": "image/heic",
        "file_size": 10,
        "created_at": T,
        "updated_at": T,
        "width": 640,
        "height": 400,
    }
    return ImageRecord(**(values | fields))


def rung(width: int, image_format: str = "webp") -> Rendition:
    key = ladder_key("a b", ID, 2, width, image_format)
    return Rendition(width=width, height=width * 5 // 8, format=image_format, key=key, bytes=width * 10)


def dump(presenter: Presenter, image: ImageRecord) -> dict[str, Any]:
    return presenter.image(image).model_dump(mode="json", by_alias=True)


def test_the_ladder_is_webp_smallest_first_then_avif_and_srcset_is_the_webp_ladder() -> None:
    # Stored out of order on purpose: the presenter orders them.
    stored = [rung(640, "avif"), rung(640), rung(320, "avif"), rung(320)]
    out = dump(Presenter(CDN), record(renditions=stored, rendition_version=2, perceptual_hash="00" * 8))

    base = f"{CDN}/images/a%20b/{ID}/v2"
    assert [(r["width"], r["format"], r["url"]) for r in out["renditions"]] == [
        (320, "webp", f"{base}/320.webp"),
        (640, "webp", f"{base}/640.webp"),
        (320, "avif", f"{base}/320.avif"),
        (640, "avif", f"{base}/640.avif"),
    ]
    # Percent-encoded URLs: no space or comma splits a srcset candidate.
    assert out["srcset"] == f"{base}/320.webp 320w, {base}/640.webp 640w"
    assert out["imageUrl"] == f"{base}/640.webp"  # the largest WebP
    assert out["thumbnailUrl"] == f"{base}/thumbnail.webp"
    assert out["duplicateOf"] is None and out["renditionVersion"] == 2


def test_a_record_from_before_the_ladder_keeps_its_urls_and_omits_the_new_fields() -> None:
    out = dump(Presenter(CDN), record())

    assert out["imageUrl"] == f"{CDN}/images/a%20b/{ID}.webp"
    assert out["thumbnailUrl"] == f"{CDN}/images/a%20b/thumbnails/{ID}.webp"
    for name in ("renditions", "srcset", "thumbhash", "dominantColor", "renditionVersion", "duplicateOf"):
        assert name not in out


def test_a_pending_image_shows_no_renditions() -> None:
    out = dump(Presenter(CDN), record(status=ImageStatus.PENDING, renditions=[rung(320)], perceptual_hash="0" * 16))

    assert "renditions" not in out and "srcset" not in out and "duplicateOf" not in out


def test_the_ladder_boxes_are_the_processors() -> None:
    assert LADDER_BOXES == LADDER


def test_a_delete_covers_every_key_the_current_spec_may_have_written() -> None:
    keys = record(renditions=[rung(320)], rendition_version=2).derived_keys

    for box in LADDER_BOXES:
        assert ladder_key("a b", ID, 2, box, "webp") in keys
        assert ladder_key("a b", ID, 2, box, "avif") in keys
    assert f"images/a b/{ID}/v2/thumbnail.webp" in keys
    assert f"images/a b/{ID}.webp" in keys  # a v1 rendition, if any


def test_the_stage_setting_adds_avif_renditions_with_their_content_type() -> None:
    import io

    from PIL import Image

    from chalicelib.models.domain import upload_key
    from chalicelib.services.processing import Outcome, ProcessingService
    from tests.unit.fakes import FakeImageRepository, FakeObjectStore, FakePublisher, unit_settings
    from tests.unit.test_processing_service import s3_message

    out = io.BytesIO()
    Image.new("RGB", (500, 300), (30, 120, 200)).save(out, "JPEG")
    data = out.getvalue()
    repo, store = FakeImageRepository(), FakeObjectStore()
    pending = record(status=ImageStatus.PENDING, user_id="alice", file_size=len(data), width=None, height=None)
    repo.put(pending)
    store.uploads[upload_key("alice", ID)] = data
    service = ProcessingService(repo, store, FakePublisher(), Presenter(CDN), unit_settings(avif_renditions=True))

    assert service.handle_message(s3_message(upload_key("alice", ID))) == [Outcome.COMPLETED]

    renditions = repo.records[ID].renditions or []
    assert [(r.width, r.format) for r in renditions] == [(320, "webp"), (500, "webp"), (320, "avif"), (500, "avif")]
    assert {store.content_types[r.key] for r in renditions if r.format == "avif"} == {"image/avif"}
    assert store.images[renditions[-1].key][4:12] == b"ftypavif"
