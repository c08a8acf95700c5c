"""Measure the processor's renditions job (docs/benchmarks.md, "Renditions ladder").

    python -m tests.processors.bench_ladder steps [--repeat 5]     # per-step ms, ladder vs old job
    python -m tests.processors.bench_ladder quality                # SSIM: cascaded rungs vs from source; webp methods
    python -m tests.processors.bench_ladder avif [--repeat 3]      # AVIF's time and bytes
    python -m tests.processors.bench_ladder heic [--repeat 3]      # 12 MP phone HEIC decode
    python -m tests.processors.bench_ladder memory                 # peak RSS for a 50 MP image

Pin cores with ``taskset -c 0`` (one core) or ``taskset -c 0,1``. The old two-rendition
job is the pipeline at ``--baseline`` (a git revision, default c2f2fa5: the last one
before the ladder), loaded from git into this process so both run on the same machine
state, alternately.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

from infra.stage_config import CORPUS_DIR
from processors import DEFAULT_LIMITS, process_image
from processors.pipeline import Tuning
from processors.pipeline import process_image as process_with

ROOT = Path(__file__).resolve().parents[2]
CORPUS = CORPUS_DIR


def _files() -> list[Path]:
    return sorted(CORPUS.glob("*.jpg")) + sorted(CORPUS.glob("*.png"))


def _baseline(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:processors/pipeline.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    spec = importlib.util.spec_from_loader("processors._baseline_pipeline", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:processors/pipeline.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs)


def steps(args: argparse.Namespace) -> dict[str, Any]:
    old = _baseline(args.baseline)
    out: dict[str, Any] = {}
    for path in _files():
        data = path.read_bytes()
        old_ms = new_ms = 0.0
        timings: list[dict[str, float]] = []
        old_runs, new_runs = [], []
        process_image(data)
        old.process_image(data, DEFAULT_LIMITS)
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            t = time.perf_counter()
            old.process_image(data, DEFAULT_LIMITS)
            old_runs.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            result = process_image(data)
            new_runs.append((time.perf_counter() - t) * 1000)
            timings.append(dict(result.timings_ms))
        old_ms, new_ms = statistics.median(old_runs), statistics.median(new_runs)
        step_ms = {k: round(statistics.median(t.get(k, 0.0) for t in timings), 1) for k in timings[0]}
        out[path.name] = {
            "old_job_ms": round(old_ms, 1),
            "ladder_job_ms": round(new_ms, 1),
            "ratio": round(new_ms / old_ms, 2),
            "steps_ms": step_ms,
            "webp_bytes": [len(r.data) for r in result.renditions],
            "sizes": [f"{r.width}x{r.height}" for r in result.renditions],
            "thumb_bytes": len(result.thumbnail.data),
        }
    return out


def quality(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.ssim import full_decode, lanczos_resize, luma, ssim

    out: dict[str, Any] = {}
    for path in _files():
        data = path.read_bytes()
        reference = luma(full_decode(data))
        row: dict[str, Any] = {}
        for label, tuning in (
            ("cascade", Tuning()),
            ("from_source", Tuning(ladder_cascade=False)),
            ("method2_all", Tuning(small_webp_method=2)),
        ):
            t = time.perf_counter()
            result = process_with(data, DEFAULT_LIMITS, tuning)
            ms = (time.perf_counter() - t) * 1000
            scores = []
            for r in result.renditions:
                ref = lanczos_resize(reference, r.width, r.height)
                scores.append(round(ssim(ref, luma(Image.open(io.BytesIO(r.data)))), 4))
            row[label] = {"ssim": scores, "bytes": sum(len(r.data) for r in result.renditions), "ms": round(ms)}
        out[path.name] = row
    return out


def avif(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in _files():
        data = path.read_bytes()
        plain = _median_ms(lambda d=data: process_image(d), args.repeat)  # type: ignore[misc]
        result = process_image(data, avif=True)
        with_avif = _median_ms(lambda d=data: process_image(d, avif=True), args.repeat)  # type: ignore[misc]
        webp = [len(r.data) for r in result.renditions if r.format == "webp"]
        avifs = [len(r.data) for r in result.renditions if r.format == "avif"]
        out[path.name] = {
            "webp_ms": round(plain),
            "webp_and_avif_ms": round(with_avif),
            "webp_bytes": sum(webp),
            "avif_bytes": sum(avifs),
            "avif_over_webp_bytes": round(sum(avifs) / sum(webp), 2),
        }
    return out


def phone_heic() -> bytes:
    """A 12 MP (4032 x 3024) HEIC in 512 px tiles from a corpus photo, x265 at quality 80."""
    from processors.heif import register_plugins

    register_plugins()
    with Image.open(CORPUS / "forest-path.jpg") as im:
        big = im.convert("RGB").resize((4032, 3024), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    big.save(out, format="HEIF", quality=80, tile_size=512, enc_params={"preset": "ultrafast"})
    return out.getvalue()


def heic(args: argparse.Namespace) -> dict[str, Any]:
    data = phone_heic()
    runs = [dict(process_image(data).timings_ms) for _ in range(args.repeat + 1)][1:]
    return {
        "bytes": len(data),
        "decode_ms": round(statistics.median(t["decode"] for t in runs)),
        "total_ms": round(statistics.median(t["total"] for t in runs)),
    }


_MEMORY_CHILD = """
import json, sys, time
from pathlib import Path
import processors.pipeline, processors.heif  # the imports a warm processor has, before the baseline
processors.heif.register_plugins()
from processors import Limits, process_image
# VmHWM (peak RSS of this process image): getrusage's ru_maxrss survives exec on Linux and
# would report the forking parent's peak.
def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
data = Path(sys.argv[1]).read_bytes()
before = hwm()
t = time.perf_counter()
result = process_image(data, Limits(max_bytes=1 << 30), avif=sys.argv[2] == "avif")
ms = (time.perf_counter() - t) * 1000
print(json.dumps({"peak_rss_before_mib": before, "peak_rss_mib": hwm(), "ms": round(ms)}))
"""


def _fifty_megapixels(fmt: str, path: Path) -> None:
    """A 50 MP photo-like file: a corpus photo upscaled to 8660 x 5773 (made in this process,
    so its memory never counts in the measuring child)."""
    with Image.open(CORPUS / "moss.jpg") as im:
        big = im.convert("RGB").resize((8660, 5773), Image.Resampling.BICUBIC)
    if fmt == "PNG":
        big.putalpha(255)
        big.save(path, format="PNG", compress_level=1)
    elif fmt == "HEIF":
        from processors.heif import register_plugins

        register_plugins()
        big.save(path, format="HEIF", quality=80, tile_size=512, enc_params={"preset": "ultrafast"})
    else:
        big.save(path, format=fmt, quality=90)


def memory(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("JPEG", "PNG", "HEIF"):
            path = Path(tmp) / f"big.{fmt.lower()}"
            _fifty_megapixels(fmt, path)
            for mode in ("webp", "avif"):
                done = subprocess.run(
                    [sys.executable, "-c", _MEMORY_CHILD, str(path), mode],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                out[f"{fmt} {mode}"] = {"input_bytes": path.stat().st_size, **json.loads(done.stdout)}
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.processors.bench_ladder")
    parser.add_argument("what", choices=["steps", "quality", "avif", "heic", "memory"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", default="c2f2fa5")
    args = parser.parse_args(argv[1:])
    result = {"steps": steps, "quality": quality, "avif": avif, "heic": heic, "memory": memory}[args.what](args)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
