"""``python scripts/bench_processing.py ...``: the processing benchmark (benchmarks.bench_processing)."""

from benchmarks.bench_processing import main

if __name__ == "__main__":
    raise SystemExit(main())
