"""Use case: import a legacy gallery image (``PUT /internal/images/{id}``).

Both the dual-write from the legacy API and the backfill build records with
``build_record``: one mapping from a legacy row to an image record.

The import token may write legacy images only. Legacy ids are PostgreSQL ``uuid``s
(``gallery_images.id``), so a ULID, the service's own kind of id, is refused outright
(400); and a stored record that was not imported, or that another user owns, is never
replaced (403, below): an import can neither take over an image nor change its owner.

The legacy object keys must be under ``images/`` in the image bucket, where the legacy
objects are copied (docs/migration.md) and the only prefix the API role may delete
(``scripts/iam_policies.py``, statement ``Renditions``): a migrated image's DELETE removes
the objects at those keys, and a key elsewhere could never be deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chalicelib import logs
from chalicelib.auth import Principal
from chalicelib.errors import FieldProblem, Forbidden, StaleUpdate, ValidationFailed
from chalicelib.models.common import UUID_PATTERN, ImageStatus, format_time
from chalicelib.models.domain import ImageRecord
from chalicelib.models.imports import ImportImageRequest
from chalicelib.repositories.imports import ImportRepository, UpsertOutcome, UpsertResult

IMPORT_SCOPE = "images:import"
_LEGACY_ID = re.compile(UUID_PATTERN)
# The image bucket's prefix the API role may delete (scripts/iam_policies.py, "Renditions").
LEGACY_KEY_PREFIX = "images/"


class ImportRefused(Forbidden):
    """The stored record is not the import's to write: the service created it, or it
    belongs to another user. Nothing about the stored record is said."""

    default_message = "This image was not imported from the legacy gallery for this user; an import cannot replace it."


def is_legacy_id(image_id: str) -> bool:
    """A legacy gallery id: a UUID in PostgreSQL's text form (lower case, hyphenated)."""
    return _LEGACY_ID.fullmatch(image_id) is not None


def object_key_problems(request: ImportImageRequest) -> list[FieldProblem]:
    """The legacy object keys that an import must refuse: outside ``images/`` (the
    image's DELETE could not remove the object), or with a ``.`` or ``..`` segment
    (``imageUrl`` would resolve to another path than the object's)."""
    problems = []
    for field, key in (("imageKey", request.image_key), ("thumbnailKey", request.thumbnail_key)):
        if key is None:
            continue
        if not key.startswith(LEGACY_KEY_PREFIX) or key == LEGACY_KEY_PREFIX:
            problems.append(FieldProblem(field=field, message=f"must be an object key under {LEGACY_KEY_PREFIX!r}"))
        elif any(segment in (".", "..") for segment in key.split("/")):
            problems.append(FieldProblem(field=field, message="must not have '.' or '..' path segments"))
    return problems


def grants_import(scopes: Iterable[str]) -> bool:
    """``images:import``, also as Cognito spells a resource server's scope
    (``image-service/images:import``, or with a URL as the resource server id)."""
    return any(scope == IMPORT_SCOPE or scope.endswith(f"/{IMPORT_SCOPE}") for scope in scopes)


def require_import_scope(principal: Principal) -> None:
    if not grants_import(principal.scopes):
        raise Forbidden(f"This endpoint needs a service token with the {IMPORT_SCOPE!r} scope.")


def build_record(image_id: str, request: ImportImageRequest) -> ImageRecord:
    """The ``completed`` record of a legacy image whose objects are already in S3.

    The legacy object keys are kept: ``imageUrl``/``thumbnailUrl`` point at them (a row
    without a thumbnail shows the image itself as its thumbnail). No event is published
    for an imported image.
    """
    created = format_time(request.created_at)
    return ImageRecord(
        id=image_id,
        user_id=request.user_id,
        status=ImageStatus.COMPLETED,
        original_filename=request.original_filename,
        content_type=request.content_type,
        file_size=request.file_size,
        title=request.title,
        description=request.description,
        tags=list(request.tags),
        album_id=request.album_id,
        created_at=created,
        updated_at=format_time(request.updated_at),
        uploaded_at=created,
        width=request.width,
        height=request.height,
        legacy_image_key=request.image_key,
        legacy_thumbnail_key=request.thumbnail_key,
        # Nothing to announce: the image did not reach ``completed`` in this service, so
        # the outbox sweep must not publish an image.completed event for it.
        event_published=True,
    )


class ImportService:
    def __init__(self, repository: ImportRepository) -> None:
        self._repository = repository

    def import_image(self, image_id: str, request: ImportImageRequest) -> UpsertResult:
        """Upsert; 409 ``stale_update`` when the stored record is newer or the image was
        deleted through the service; 403 ``forbidden`` when it was not imported or has
        another owner.

        The same ``updatedAt`` again (a retried dual-write, a re-run backfill) is a no-op
        that answers 200 with the stored record.
        """
        if not is_legacy_id(image_id):
            raise ValidationFailed(
                "The image id must be a legacy gallery UUID (lower case, with hyphens).",
                [FieldProblem(field="id", message="must be a lower-case UUID")],
            )
        problems = object_key_problems(request)
        if problems:
            raise ValidationFailed(
                f"Legacy objects must be in the image bucket under {LEGACY_KEY_PREFIX!r} "
                "(copy them there first; see the migration guide).",
                problems,
            )
        result = self._repository.upsert(build_record(image_id, request))
        if result.outcome is UpsertOutcome.CONFLICT:
            logs.warning(
                "image import refused",
                imageId=image_id,
                outcome=result.outcome.value,
                userId=request.user_id,
                storedUserId=result.record.user_id,
                storedImported=result.record.legacy_image_key is not None,
            )
            raise ImportRefused()
        logs.info("image import", imageId=image_id, outcome=result.outcome.value, updatedAt=result.record.updated_at)
        if result.outcome is UpsertOutcome.DELETED:
            raise StaleUpdate(
                f"The image was deleted in the Image Service at {result.record.deleted_at}; "
                "an import cannot bring it back, and nothing was changed."
            )
        if result.outcome is UpsertOutcome.STALE:
            raise StaleUpdate(
                f"The stored image was updated at {result.record.updated_at}, after this import's "
                f"{format_time(request.updated_at)}; nothing was changed."
            )
        return result
