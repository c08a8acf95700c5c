"""Turns stored records into the wire shapes of API.md (API responses and events)."""

from __future__ import annotations

from urllib.parse import quote

from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord, event_type_for
from chalicelib.models.responses import EventImage, ImageError, ImageEvent, ImageOut, RenditionOut, StatusOut


class Presenter:
    def __init__(self, public_image_base_url: str) -> None:
        self._base = public_image_base_url.rstrip("/")

    def _url(self, key: str) -> str:
        return f"{self._base}/{quote(key, safe='/')}"

    def _urls(self, record: ImageRecord) -> tuple[str | None, str | None]:
        if record.status is not ImageStatus.COMPLETED:
            return None, None
        return self._url(record.rendition_key), self._url(record.thumbnail_key)

    @staticmethod
    def _error(record: ImageRecord) -> ImageError | None:
        if record.error_code is None:
            return None
        return ImageError(code=record.error_code, message=record.error_message or record.error_code)

    def renditions(self, record: ImageRecord) -> list[RenditionOut] | None:
        """The ladder with URLs: WebP smallest first, then AVIF; None for a record without one."""
        if record.status is not ImageStatus.COMPLETED or not record.renditions:
            return None
        ordered = sorted(record.renditions, key=lambda r: (r.format != "webp", r.width))
        return [
            RenditionOut(width=r.width, height=r.height, format=r.format, url=self._url(r.key), bytes=r.bytes)
            for r in ordered
        ]

    @staticmethod
    def srcset(renditions: list[RenditionOut] | None) -> str | None:
        """The WebP ladder as an HTML ``srcset``: ``<url> <width>w``, comma-separated.

        The URLs are percent-encoded (``quote``), so they hold no space or comma that
        would split a candidate."""
        webp = [r for r in renditions or () if r.format == "webp"]
        return ", ".join(f"{r.url} {r.width}w" for r in webp) or None

    def image(self, record: ImageRecord) -> ImageOut:
        image_url, thumbnail_url = self._urls(record)
        completed = record.status is ImageStatus.COMPLETED
        renditions = self.renditions(record)
        return ImageOut(
            id=record.id,
            user_id=record.user_id,
            status=record.status,
            title=record.title,
            description=record.description,
            tags=list(record.tags),
            album_id=record.album_id,
            original_filename=record.original_filename,
            content_type=record.content_type,
            file_size=record.file_size,
            width=record.width if completed else None,
            height=record.height if completed else None,
            image_url=image_url,
            thumbnail_url=thumbnail_url,
            placeholder=record.placeholder if completed else None,
            renditions=renditions,
            srcset=self.srcset(renditions),
            thumbhash=record.thumbhash if completed else None,
            dominant_color=record.dominant_color if completed else None,
            rendition_version=record.rendition_version if completed else None,
            # Known for every image completed with a perceptual hash; absent otherwise.
            duplicate_of=record.duplicate_of if completed and record.perceptual_hash else False,
            error=self._error(record),
            created_at=record.created_at,
            updated_at=record.updated_at,
            uploaded_at=record.uploaded_at if completed else None,
            version=record.version,
        )

    def status(self, record: ImageRecord) -> StatusOut:
        image_url, thumbnail_url = self._urls(record)
        return StatusOut(
            id=record.id,
            status=record.status,
            updated_at=record.updated_at,
            image_url=image_url,
            thumbnail_url=thumbnail_url,
            error=self._error(record),
        )

    def event(self, record: ImageRecord) -> ImageEvent:
        """The event of a record's terminal transition; the same for every re-publication."""
        if not record.status.is_terminal or record.event_id is None:
            raise ValueError(f"image {record.id} has no terminal transition to announce")
        image_url, thumbnail_url = self._urls(record)
        completed = record.status is ImageStatus.COMPLETED
        renditions = self.renditions(record)
        return ImageEvent(
            event_id=record.event_id,
            type=event_type_for(record.status),
            occurred_at=record.event_occurred_at or record.updated_at,
            image=EventImage(
                id=record.id,
                user_id=record.user_id,
                status=record.status,
                image_url=image_url,
                thumbnail_url=thumbnail_url,
                width=record.width if completed else None,
                height=record.height if completed else None,
                # What a subscriber needs to render the image without asking the API.
                renditions=renditions,
                srcset=self.srcset(renditions),
                thumbhash=record.thumbhash if completed else None,
                dominant_color=record.dominant_color if completed else None,
                error=self._error(record),
            ),
        )
