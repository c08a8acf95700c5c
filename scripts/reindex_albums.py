"""``python scripts/reindex_albums.py --stage STAGE [--apply]``: album index keys (operations.reindex_albums)."""

from operations.reindex_albums import main

if __name__ == "__main__":
    raise SystemExit(main())
