"""``python scripts/redrive.py --stage STAGE [--move]``: show the upload DLQ, move it back (operations.redrive)."""

from operations.redrive import main

if __name__ == "__main__":
    raise SystemExit(main())
