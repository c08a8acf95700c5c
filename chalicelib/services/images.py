"""Use cases of the image metadata API: get, list, update, delete."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from chalicelib import logs
from chalicelib.errors import FieldProblem, Forbidden, NotFound, PreconditionRequired, ValidationFailed, VersionConflict
from chalicelib.models.common import format_time, is_image_id, utc_now
from chalicelib.models.domain import ImageRecord
from chalicelib.models.requests import MAX_VERSION, ListImagesQuery, UpdateImageRequest
from chalicelib.repositories.cdn import CdnInvalidator
from chalicelib.repositories.images import ImageQueries, ImageRepository, WriteRejected
from chalicelib.repositories.storage import ObjectStore
from chalicelib.services.cursors import CursorCodec
from chalicelib.services.duplicates import DuplicateFinder


class ImagePage(NamedTuple):
    records: list[ImageRecord]
    next_cursor: str | None


def _not_found(image_id: str) -> NotFound:
    return NotFound.of("image", image_id)


def owned(record: ImageRecord | None, user_id: str, image_id: str) -> ImageRecord:
    """The caller's live image: 404 when unknown or being deleted, 403 when someone else's."""
    if record is None or record.deleted_at is not None:
        raise _not_found(image_id)
    if record.user_id != user_id:
        raise Forbidden("This image belongs to another user.")
    return record


def read_owned(images: ImageRepository, user_id: str, image_id: str) -> ImageRecord:
    """One strongly consistent GetItem of the caller's live image (404 / 403 otherwise)."""
    if not is_image_id(image_id):
        raise _not_found(image_id)
    return owned(images.get(image_id), user_id, image_id)


class ImageService:
    def __init__(
        self,
        images: ImageRepository,
        queries: ImageQueries,
        store: ObjectStore,
        cursors: Callable[[], CursorCodec],
        cdn: CdnInvalidator | None,
        clock: Callable[[], datetime] = utc_now,
        duplicates: DuplicateFinder | None = None,
    ) -> None:
        self._images = images
        self._queries = queries
        self._store = store
        self._cursors = cursors
        self._cdn = cdn
        self._clock = clock
        self._duplicates = duplicates

    def get(self, user_id: str, image_id: str) -> ImageRecord:
        return read_owned(self._images, user_id, image_id)

    def list(self, user_id: str, query: ListImagesQuery) -> ImagePage:
        """One Query on the user (or album) index, newest first, with a signed cursor."""
        scope = f"album:{query.album_id}" if query.album_id else "all"
        # Any cursor sent, even an empty one, must be one of ours (400 invalid_cursor otherwise).
        start = self._cursors().decode(query.cursor, user_id, scope) if query.cursor is not None else None
        page = self._queries.list_for_user(user_id, query.limit, start, query.album_id)
        next_cursor = self._cursors().encode(page.last_key, user_id, scope) if page.last_key else None
        return ImagePage(records=page.records, next_cursor=next_cursor)

    def update(self, user_id: str, image_id: str, request: UpdateImageRequest, if_match: str | None) -> ImageRecord:
        """Check order: the caller's image (404 / 403), then a version (428, or 400 for a bad
        or contradictory one), then something to change (400), then the conditional write.

        A request that passes the checks is one conditional UpdateItem (owner, not being
        deleted, version), whose refusal says 404 / 403 before 409. A request the checks
        refuse first reads the image (one strongly consistent GetItem), so that an unknown or
        another user's image answers 404 / 403 rather than 428 or 400.
        """
        if not is_image_id(image_id):
            raise _not_found(image_id)
        try:
            version = _expected_version(request.version, if_match)
            changes = request.changes()
            if not changes:
                raise ValidationFailed(
                    "Nothing to update: send at least one of title, description, tags, albumId.",
                    [FieldProblem(field="body", message="send at least one of title, description, tags, albumId")],
                )
        except (PreconditionRequired, ValidationFailed):
            read_owned(self._images, user_id, image_id)
            raise
        try:
            record = self._queries.update_metadata(image_id, user_id, changes, version, format_time(self._clock()))
        except WriteRejected as rejected:
            current = owned(rejected.current, user_id, image_id)
            raise VersionConflict(
                f"The image is at version {current.version}, not {version}. Fetch it again and retry."
            ) from rejected
        logs.info("image updated", imageId=image_id, version=record.version, fields=sorted(changes))
        return record

    def delete(self, user_id: str, image_id: str) -> None:
        """Tombstone, delete the objects, invalidate the CDN, then drop the record (an
        imported one is kept as a purged tombstone that no import replaces and that
        answers 404 like a removed record: ``ImageQueries.finish_delete``).

        Each step is safe to repeat, and a crash between steps leaves a tombstone that a
        retried DELETE finishes, or else the sweeper (``DELETE_FINISH_DELAY`` later): never a
        live record pointing at deleted objects, never objects that no record knows about.
        """
        if not is_image_id(image_id):
            raise _not_found(image_id)
        try:
            record = self._queries.begin_delete(image_id, user_id, format_time(self._clock()))
        except WriteRejected as rejected:
            current = rejected.current
            if current is None:
                raise _not_found(image_id) from rejected
            raise Forbidden("This image belongs to another user.") from rejected
        finish_deletion(record, self._store, self._cdn, self._queries, self._duplicates)


def finish_deletion(
    record: ImageRecord,
    store: ObjectStore,
    cdn: CdnInvalidator | None,
    queries: ImageQueries,
    duplicates: DuplicateFinder | None = None,
) -> None:
    """The steps of a delete after the tombstone: objects, CDN, duplicate index (the
    images that named this one re-pointed), record. Each is safe to repeat; the DELETE
    runs them, and the sweeper for a DELETE that stopped before the end."""
    store.delete_image_objects(record.upload_key, record.derived_keys)
    if cdn is not None:
        # What the record named, hence what a cache may hold (every rendition, AVIF too).
        named = [record.rendition_key, record.thumbnail_key, *(r.key for r in record.renditions or ())]
        cdn.invalidate([f"/{key}" for key in dict.fromkeys(named)], reference=f"delete-{record.id}")
    if duplicates is not None:
        duplicates.forget(record)
    queries.finish_delete(record.id)
    logs.info("image deleted", imageId=record.id)


# ASCII digits only (str.isdigit also takes "²" and "١"), and few enough to parse cheaply.
_VERSION_TEXT = re.compile(r"[0-9]{1,20}")


def _if_match_version(if_match: str | None) -> int | None:
    """The version of ``If-Match: "3"`` (weak ``W/"3"`` accepted); None when absent or blank."""
    if if_match is None or not if_match.strip():
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if _VERSION_TEXT.fullmatch(text) is None or not 1 <= int(text) <= MAX_VERSION:
        raise ValidationFailed(
            'If-Match must be a quoted version, e.g. If-Match: "3".',
            [FieldProblem(field="If-Match", message=f'must be a quoted version from 1 to {MAX_VERSION}, e.g. "3"')],
        )
    return int(text)


def _expected_version(body_version: int | None, if_match: str | None) -> int:
    header_version = _if_match_version(if_match)
    if body_version is not None and header_version is not None and body_version != header_version:
        raise ValidationFailed(
            "The body's version and the If-Match header disagree.",
            [
                FieldProblem(field="version", message=f"is {body_version}, but If-Match says {header_version}"),
                FieldProblem(
                    field="If-Match", message=f"says {header_version}, but the body's version is {body_version}"
                ),
            ],
        )
    version = body_version if body_version is not None else header_version
    if version is None:
        raise PreconditionRequired()
    return version
