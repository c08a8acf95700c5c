"""``python scripts/verify_migration.py --dsn DSN --stage STAGE``: verify the backfill (migration.verify_migration)."""

from migration.verify_migration import main

if __name__ == "__main__":
    raise SystemExit(main())
