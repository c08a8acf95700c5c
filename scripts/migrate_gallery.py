"""``python scripts/migrate_gallery.py --dsn DSN --stage STAGE``: the backfill (migration.migrate_gallery)."""

from migration.migrate_gallery import main

if __name__ == "__main__":
    raise SystemExit(main())
