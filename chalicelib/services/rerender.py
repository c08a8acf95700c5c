"""Use case: bring one completed image to the current rendition spec (issue 18).

Reads the image's original (a native image's kept upload, tagged processed; an imported
image's legacy object in the image bucket), renders it, writes the renditions under the
keys of the target spec, then switches the record in one conditional write that sets only
the rendition fields (``ImageRepository.switch_renditions``). Safe to repeat: keys are
derived, and the switch is refused once the record is at the target spec.
Legacy objects are only ever read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib import logs
from chalicelib.errors import ConditionFailed
from chalicelib.models.common import ImageStatus, format_time, utc_now
from chalicelib.models.domain import (
    RENDITION_VERSION,
    ImageRecord,
    ProcessingOutcome,
    Rendition,
    ladder_box,
    ladder_key,
    versioned_thumbnail_key,
)
from chalicelib.repositories.images import ImageRepository
from chalicelib.repositories.storage import ObjectStore
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from processors import Limits, ProcessedImage

ImageProcessor = Callable[[bytes, "Limits"], "ProcessedImage"]

#: The marker code of an image whose original is gone.
ORIGINAL_MISSING = "original_missing"


class RerenderResult(StrEnum):
    RENDERED = "rendered"
    CURRENT = "current"  # already at the target spec (or above): nothing to do
    DELETED = "skipped: deleted"  # no such image, or deleted before or during the re-render
    NOT_COMPLETED = "skipped: not completed"  # pending, processing, failed or expired
    UNREADABLE = "unreadable"  # the original is gone or cannot be decoded: marked, still served


def _default_processor(data: bytes, limits: Limits) -> ProcessedImage:
    from processors import process_image  # not at import: the API path never loads Pillow

    return process_image(data, limits)


class RerenderService:
    def __init__(
        self,
        images: ImageRepository,
        store: ObjectStore,
        settings: Settings,
        processor: ImageProcessor | None = None,
        clock: Callable[[], datetime] = utc_now,
        version: int = RENDITION_VERSION,
    ) -> None:
        self._images = images
        self._store = store
        self._settings = settings
        self._processor = processor or _default_processor
        self._clock = clock
        self._version = version  # the target spec; a parameter so tests can raise it

    def rerender(self, image_id: str) -> RerenderResult:
        record = self._images.get(image_id)
        if record is None or record.deleted_at is not None:
            return RerenderResult.DELETED
        if record.status is not ImageStatus.COMPLETED:
            return RerenderResult.NOT_COMPLETED
        if record.rendition_version is not None and record.rendition_version >= self._version:
            return RerenderResult.CURRENT
        with logs.log_context(imageId=image_id, userId=record.user_id):
            return self._rerender(record)

    def _rerender(self, record: ImageRecord) -> RerenderResult:
        if record.legacy_image_key is not None:
            data = self._store.read_image(record.legacy_image_key)
        else:
            data = self._store.read_upload(record.upload_key)
        if data is None:
            return self._unreadable(record, ORIGINAL_MISSING)
        from processors import ImageRejected, Limits

        limits = Limits(
            # A legacy original was never held to the upload limit: its own size is allowed.
            max_bytes=max(self._settings.max_upload_bytes, len(data)),
            max_pixels=self._settings.max_image_pixels,
            max_seconds=self._settings.image_timeout_seconds,
        )
        try:
            result = self._processor(data, limits)
        except ImageRejected as rejected:
            return self._unreadable(record, rejected.code)
        renditions, written = self._write(record, result)
        outcome = ProcessingOutcome(
            status=ImageStatus.COMPLETED,
            width=result.rendition.width,
            height=result.rendition.height,
            placeholder=result.placeholder,
            renditions=renditions,
            rendition_version=self._version,
            thumbhash=result.thumbhash or None,
            dominant_color=result.dominant_color or None,
            perceptual_hash=result.perceptual_hash or None,
        )
        try:
            self._images.switch_renditions(record.id, outcome)
        except ConditionFailed:
            return self._refused(record.id, written)
        logs.info("re-rendered", renditionVersion=self._version)
        return RerenderResult.RENDERED

    def _write(self, record: ImageRecord, result: ProcessedImage) -> tuple[list[Rendition], list[str]]:
        """The ladder and the thumbnail under the target spec's keys (rewritten identically on a retry)."""
        ladder = result.renditions or (result.rendition,)
        renditions = []
        for encoded in ladder:
            box = ladder_box(encoded.width, encoded.height)
            key = ladder_key(record.user_id, record.id, self._version, box, encoded.format)
            self._store.write_image(key, encoded.data, f"image/{encoded.format}")
            renditions.append(
                Rendition(
                    width=encoded.width, height=encoded.height, format=encoded.format, key=key, bytes=len(encoded.data)
                )
            )
        thumbnail = versioned_thumbnail_key(record.user_id, record.id, self._version)
        self._store.write_image(thumbnail, result.thumbnail.data, "image/webp")
        return renditions, [*(r.key for r in renditions), thumbnail]

    def _refused(self, image_id: str, written: list[str]) -> RerenderResult:
        current = self._images.get(image_id)
        if current is None or current.deleted_at is not None:
            # Nobody refers to what was just written (never a legacy object: these keys are ours).
            self._store.delete_renditions(written)
            logs.info("image deleted during its re-render; its new renditions were removed")
            return RerenderResult.DELETED
        if current.rendition_version is not None and current.rendition_version >= self._version:
            return RerenderResult.CURRENT  # another delivery switched it to the same keys
        return RerenderResult.NOT_COMPLETED

    def _unreadable(self, record: ImageRecord, code: str) -> RerenderResult:
        logs.warning("re-render could not read the original; the image keeps its renditions", errorCode=code)
        try:
            self._images.mark_rerender_error(record.id, code, format_time(self._clock()))
        except ConditionFailed:
            return RerenderResult.DELETED  # deleted meanwhile: nothing to mark
        return RerenderResult.UNREADABLE
