"""The legacy ``gallery_images`` table: reading it, and mapping a row to an image record.

One mapping: row -> ``ImportImageRequest`` (the import endpoint's body) -> ``build_record``.
The dual-write sends the request body, the backfill writes the record, and the
verification compares against the record, so all three agree by construction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from chalicelib.models.domain import ImageRecord
from chalicelib.models.imports import ImportImageRequest
from chalicelib.services.imports import build_record, object_key_problems
from migration.errors import MigrationError

TABLE = "gallery_images"
COLUMNS: tuple[str, ...] = (
    "id",
    "user_id",
    "album_id",
    "title",
    "description",
    "tags",
    "original_filename",
    "mime_type",
    "file_size",
    "s3_key",
    "thumbnail_key",
    "width",
    "height",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class LegacyRow:
    """One ``gallery_images`` row, columns in table order."""

    id: str
    user_id: str
    album_id: str | None
    title: str | None
    description: str | None
    tags: list[str]
    original_filename: str
    mime_type: str
    file_size: int
    s3_key: str
    thumbnail_key: str | None
    width: int | None
    height: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_tuple(cls, values: Sequence[Any]) -> LegacyRow:
        row = dict(zip(COLUMNS, values, strict=True))
        return cls.from_mapping(row)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LegacyRow:
        """From the legacy API's own row objects (a dict of column names)."""
        row: dict[str, Any] = {name: values.get(name) for name in COLUMNS}
        row["id"] = str(row["id"]) if isinstance(row["id"], uuid.UUID) else row["id"]
        row["tags"] = list(row["tags"] or [])
        return cls(**row)


class RowRejected(ValueError):
    """A row the import model refuses; ``reason`` names the fields."""

    def __init__(self, image_id: str, reason: str) -> None:
        super().__init__(f"{image_id}: {reason}")
        self.image_id = image_id
        self.reason = reason


def row_to_request(row: LegacyRow) -> ImportImageRequest:
    """The import body of a row; ``RowRejected`` when the row does not fit the model, or
    has object keys the import endpoint refuses (the backfill writes without it)."""
    try:
        request = ImportImageRequest.model_validate(
            {
                "user_id": row.user_id,
                "album_id": row.album_id,
                "title": row.title,
                "description": row.description,
                "tags": row.tags,
                "original_filename": row.original_filename,
                "content_type": row.mime_type,
                "file_size": row.file_size,
                "image_key": row.s3_key,
                "thumbnail_key": row.thumbnail_key,
                "width": row.width,
                "height": row.height,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RowRejected(row.id, problems) from exc
    key_problems = object_key_problems(request)
    if key_problems:
        raise RowRejected(row.id, "; ".join(f"{p.field}: {p.message}" for p in key_problems))
    return request


def row_to_record(row: LegacyRow) -> ImageRecord:
    return build_record(row.id, row_to_request(row))


def row_to_body(row: LegacyRow) -> dict[str, Any]:
    """The JSON body of ``PUT /internal/images/{id}`` for a row."""
    return row_to_request(row).model_dump(mode="json", by_alias=True)


def describe_dsn(dsn: str) -> str:
    """Where a DSN points, without its password (for messages)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "an unparseable DSN"
    host = parts.get("host") or "local socket"
    return f"{parts.get('dbname') or parts.get('user') or '?'} on {host}:{parts.get('port') or 5432}"


def connect(
    dsn: str, *, autocommit: bool = False, application_name: str = "gallery-migration"
) -> psycopg.Connection[Any]:
    """A connection, or a one-line ``MigrationError`` (bad syntax, unreachable, refused)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, application_name=application_name, connect_timeout=10)
    except psycopg.ProgrammingError as exc:
        raise MigrationError(f"invalid --dsn: {str(exc).splitlines()[0]}") from exc
    except psycopg.OperationalError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "connection failed")
        raise MigrationError(f"cannot connect to PostgreSQL ({describe_dsn(dsn)}): {first.strip()}") from exc


@dataclass(frozen=True)
class Position:
    """A keyset position: the last row handled, in (created_at, id) order."""

    created_at: datetime
    id: str

    def to_json(self) -> dict[str, str]:
        return {"createdAt": self.created_at.isoformat(), "id": self.id}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Position:
        return cls(created_at=datetime.fromisoformat(str(values["createdAt"])), id=str(values["id"]))


_SELECT = sql.SQL("SELECT {columns} FROM {table}").format(
    columns=sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS), table=sql.Identifier(TABLE)
)
_AFTER = sql.SQL(" WHERE (created_at, id) > (%s, %s::uuid)")
_ORDER = sql.SQL(" ORDER BY created_at, id")


class LegacySource:
    """Reads ``gallery_images``: one long read-only transaction streams the rows through a
    server-side (named) cursor, so client memory does not grow with the table; a second,
    autocommit connection answers point queries with the latest committed data."""

    def __init__(self, dsn: str) -> None:
        self._stream = connect(dsn)
        self._stream.read_only = True
        self._point = connect(dsn, autocommit=True)
        self._check_table()

    def _check_table(self) -> None:
        with self._point.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", (TABLE,))
            found = cursor.fetchone()
        if found is None or found[0] is None:
            raise MigrationError(f"table {TABLE!r} not found in the database the DSN names")

    def close(self) -> None:
        for connection in (self._stream, self._point):
            connection.close()

    def __enter__(self) -> LegacySource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def count_after(self, position: Position | None) -> int:
        query = sql.SQL("SELECT count(*) FROM {table}").format(table=sql.Identifier(TABLE))
        params: tuple[Any, ...] = ()
        if position is not None:
            query += _AFTER
            params = (position.created_at, position.id)
        with self._point.cursor() as cursor:
            cursor.execute(query, params)
            result = cursor.fetchone()
        return int(result[0]) if result else 0

    def stream_after(self, position: Position | None, batch_size: int) -> Iterator[list[LegacyRow]]:
        """Batches of rows after ``position`` in (created_at, id) order."""
        query = _SELECT
        params: tuple[Any, ...] = ()
        if position is not None:
            query += _AFTER
            params = (position.created_at, position.id)
        query += _ORDER
        with self._stream.cursor(name="gallery_backfill") as cursor:
            cursor.itersize = batch_size
            cursor.execute(query, params)
            while batch := cursor.fetchmany(batch_size):
                yield [LegacyRow.from_tuple(values) for values in batch]
        self._stream.rollback()  # end the read-only transaction

    def sample(self, size: int, batch_size: int) -> Iterator[list[LegacyRow]]:
        """A uniform random sample of ``size`` rows, in batches."""
        query = _SELECT + sql.SQL(" ORDER BY random() LIMIT %s")
        with self._stream.cursor(name="gallery_sample") as cursor:
            cursor.itersize = batch_size
            cursor.execute(query, (size,))
            while batch := cursor.fetchmany(batch_size):
                yield [LegacyRow.from_tuple(values) for values in batch]
        self._stream.rollback()

    def updated_at_of(self, image_ids: Sequence[str]) -> dict[str, datetime]:
        """The latest committed ``updated_at`` of each id that still exists."""
        if not image_ids:
            return {}
        with self._point.cursor() as cursor:
            cursor.execute(
                sql.SQL("SELECT id::text, updated_at FROM {table} WHERE id = ANY(%s::uuid[])").format(
                    table=sql.Identifier(TABLE)
                ),
                (list(image_ids),),
            )
            return {str(image_id): updated for image_id, updated in cursor.fetchall()}

    def rows_by_id(self, image_ids: Sequence[str]) -> list[LegacyRow]:
        if not image_ids:
            return []
        with self._point.cursor() as cursor:
            cursor.execute(_SELECT + sql.SQL(" WHERE id = ANY(%s::uuid[])"), (list(image_ids),))
            return [LegacyRow.from_tuple(values) for values in cursor.fetchall()]
