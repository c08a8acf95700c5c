"""``python scripts/loadtest.py --clients N ...``: many clients against the API (benchmarks.loadtest)."""

from benchmarks.loadtest import main

if __name__ == "__main__":
    raise SystemExit(main())
