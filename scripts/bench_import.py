"""``python scripts/bench_import.py ...``: the cold-start import benchmark (benchmarks.bench_import)."""

from benchmarks.bench_import import main

if __name__ == "__main__":
    raise SystemExit(main())
