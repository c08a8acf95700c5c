"""Use case: ``duplicateOf``, the owner's earliest still-existing completed copy of a photo.

Found through the duplicate index (``chalicelib.repositories.duplicates``) with a bounded
number of reads: one Query per band of the perceptual hash (``BUCKET_COUNT``), at most
``CANDIDATES_PER_BUCKET`` items each, then a GetItem per candidate within the distance
until one is a live completed image. "Earliest" is by completion: the images of one photo
all point at the first of them to complete, which points at none.

Kept true across deletes at write time: an image's delete removes its bucket items, then
re-points every image whose ``duplicateOf`` named it (its back-references) to the next
earliest copy or to null. A completion racing that delete is closed from the other side:
after writing its back-reference the completing image reads its target again, and
re-points itself when the target is being deleted (the delete tombstones the record before
it reads the back-references, so one of the two sees the other).
"""

from __future__ import annotations

from chalicelib import logs
from chalicelib.models.common import ImageStatus
from chalicelib.models.domain import ImageRecord
from chalicelib.repositories.duplicates import DuplicateIndex
from chalicelib.repositories.images import ImageRepository
from chalicelib.repositories.keys import phash_sort
from processors.phash import buckets, is_duplicate


class DuplicateFinder:
    def __init__(self, images: ImageRepository, index: DuplicateIndex) -> None:
        self._images = images
        self._index = index

    def find(self, user_id: str, image_id: str, perceptual_hash: str, completed_at: str) -> str | None:
        """The id of the owner's earliest live completed image completed before
        ``completed_at`` within the duplicate distance, else None."""
        before = phash_sort(completed_at, image_id)
        for candidate in self._index.candidates(user_id, buckets(perceptual_hash), before):
            if candidate.image_id == image_id or not is_duplicate(candidate.perceptual_hash, perceptual_hash):
                continue
            record = self._images.get(candidate.image_id)
            if _live_completed(record, user_id):
                return candidate.image_id
        return None

    def index(self, record: ImageRecord) -> None:
        """After a completion: the record's bucket items and its back-reference (idempotent:
        a redelivery of a completed upload runs it again)."""
        phash, completed_at = record.perceptual_hash, record.event_occurred_at
        if phash is None or completed_at is None or record.status is not ImageStatus.COMPLETED:
            return
        self._index.add(record.user_id, record.id, phash, buckets(phash), completed_at)
        target = record.duplicate_of
        if target is None:
            return
        self._index.add_back_reference(target, record.id)
        # The target's delete may have read its back-references before this one was there.
        if not _live_completed(self._images.get(target), record.user_id):
            self._repoint(record.id, target)

    def forget(self, record: ImageRecord) -> None:
        """Part of a delete (safe to repeat): the record's bucket items go, its back-reference
        goes, and every image that named it as its duplicate is re-pointed."""
        phash, completed_at = record.perceptual_hash, record.event_occurred_at
        if phash is None or completed_at is None:
            return
        self._index.remove(record.user_id, record.id, buckets(phash), completed_at)
        if record.duplicate_of is not None:
            self._index.remove_back_reference(record.duplicate_of, record.id)
        for duplicate_id in self._index.back_references(record.id):
            self._repoint(duplicate_id, record.id)

    def _repoint(self, image_id: str, old: str) -> None:
        """Point ``image_id`` at its earliest live copy now that ``old`` is going."""
        record = self._images.get(image_id)
        if record is not None and record.deleted_at is None and record.duplicate_of == old:
            new = None
            if record.perceptual_hash is not None and record.event_occurred_at is not None:
                new = self.find(record.user_id, record.id, record.perceptual_hash, record.event_occurred_at)
            if self._index.repoint(image_id, old, new):
                logs.info("duplicate re-pointed", imageId=image_id, was=old, now=new)
                if new is not None:
                    self._index.add_back_reference(new, image_id)
        self._index.remove_back_reference(old, image_id)


def _live_completed(record: ImageRecord | None, user_id: str) -> bool:
    return (
        record is not None
        and record.deleted_at is None
        and record.user_id == user_id
        and record.status is ImageStatus.COMPLETED
    )
