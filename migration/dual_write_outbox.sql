-- The dual-write's outbox, in the legacy database next to gallery_images: one row per
-- image whose last dual-write was dropped (docs/migration.md, "Dropped dual-writes").
-- Apply once before the dual-write is turned on:
--   psql "$LEGACY_DSN" -f scripts/migration/dual_write_outbox.sql
CREATE TABLE IF NOT EXISTS gallery_dual_write_outbox (
  image_id   uuid        PRIMARY KEY,   -- gallery_images.id; replay sends the row as it is then
  failed_at  timestamptz NOT NULL,      -- the last drop
  failures   integer     NOT NULL DEFAULT 1,
  reason     text        NOT NULL
);
