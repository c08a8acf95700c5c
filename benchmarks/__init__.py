"""Benchmarks a developer runs to measure a change (docs/benchmarks.md): image processing
(``bench_processing``, beside sharp in ``bench_sharp/``; ``ssim`` scores the renditions),
cold-start imports (``bench_import``) and many clients against the local stack
(``loadtest``). Nothing here ships to AWS."""
