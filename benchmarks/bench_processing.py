"""Benchmark the image processor, alone or side by side with Node's sharp.

The job is the whole default ``process_image``: decode once, the WebP ladder (fitted
inside 320, 640, 1024, 1600 and 2048 px, never enlarged), the 400x400 thumbnail, the
placeholder, ThumbHash, dominant colour and perceptual hash.

Single run (what ``process_image`` does for every JPEG/PNG in a folder)::

    python scripts/bench_processing.py --corpus ../shared/corpus --repeat 5
    python scripts/bench_processing.py --corpus DIR --repeat 5 --json --out /tmp/out

prints ``{"images": [{"file", "ms", "webpBytes", "thumbBytes", "renditions",
"totalBytes", "steps"}]}`` with --json (``ms``: the whole job, the median over
--repeat runs after one warm-up run; ``webpBytes``: the largest WebP;
``renditions``: ``{"width", "height", "bytes"}`` per WebP rung, smallest first;
``totalBytes``: every rung plus the thumbnail) and writes ``<stem>.webp`` (the
largest), ``<stem>.thumb.webp`` and the ladder as ``<stem>.<width>.webp`` into --out.

Side by side with sharp (benchmarks/bench_sharp; ``npm ci`` runs there on first use)::

    python scripts/bench_processing.py --corpus DIR --repeat 5 --compare-sharp \\
        --out /tmp/bench [--cpus 0 0,1] [--rounds 2] [--json]

runs both, each pinned with ``taskset -c CPUS``, alternating which goes first
over --rounds rounds, and reports per image: ms for both and their ratio, the
total output bytes ratio (ladder + thumbnail), and SSIM of each rendition against
a float Lanczos-3 reference made from the full decode (benchmarks/ssim.py). Both
sides get the CPUs they are pinned to: sharp's libvips concurrency and libuv
threadpool (UV_THREADPOOL_SIZE) are set to the number of CPUs (threadpool >= 4,
libuv's default), and the project runs its two encode lanes.

Levers can be switched off one at a time (--webp-method, --no-draft,
--no-concurrency, --thumbnail-from-source, --reducing-gap) to measure each.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from infra.stage_config import CORPUS_DIR

ROOT = Path(__file__).resolve().parents[1]
SHARP_DIR = ROOT / "benchmarks" / "bench_sharp"
DEFAULT_CORPUS = CORPUS_DIR


def _progress(message: str) -> None:
    sys.stderr.write(f"\r\033[K{message}")
    sys.stderr.flush()


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


# --- one runner: this project ---------------------------------------------------


def webp_ladder(result: Any) -> list[Any]:
    """The WebP rungs of a ProcessedImage, smallest first (the last is ``rendition``)."""
    return [r for r in result.renditions if r.format == "webp"] or [result.rendition]


def write_outputs(out: Path, stem: str, result: Any) -> None:
    """``<stem>.webp`` (the largest), ``<stem>.thumb.webp`` and ``<stem>.<width>.webp`` per rung."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.webp").write_bytes(result.rendition.data)
    (out / f"{stem}.thumb.webp").write_bytes(result.thumbnail.data)
    for rung in webp_ladder(result):
        (out / f"{stem}.{rung.width}.webp").write_bytes(rung.data)


def sizes_of(result: Any) -> dict[str, Any]:
    """The byte counts a report carries for one job."""
    ladder = webp_ladder(result)
    return {
        "webpBytes": len(result.rendition.data),
        "thumbBytes": len(result.thumbnail.data),
        "renditions": [{"width": r.width, "height": r.height, "bytes": len(r.data)} for r in ladder],
        "totalBytes": sum(len(r.data) for r in ladder) + len(result.thumbnail.data),
    }


def run_project(args: argparse.Namespace) -> dict[str, Any]:
    from processors.pipeline import process_image
    from processors.types import DEFAULT_LIMITS

    tuning = _tuning(args)
    files = corpus_files(args.corpus)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    images = []
    for n, path in enumerate(files, 1):
        data = path.read_bytes()
        result = process_image(data, DEFAULT_LIMITS, tuning)  # warm-up
        times, steps = [], []
        for r in range(args.repeat):
            started = time.perf_counter()
            result = process_image(data, DEFAULT_LIMITS, tuning)
            times.append((time.perf_counter() - started) * 1000.0)
            steps.append(result.timings_ms)
            _progress(f"project {n}/{len(files)} {path.name} run {r + 1}/{args.repeat}")
        if args.out:
            write_outputs(args.out, path.stem, result)
        images.append(
            {
                "file": path.name,
                "ms": round(statistics.median(times), 2),
                **sizes_of(result),
                "steps": {k: round(statistics.median(s.get(k, 0.0) for s in steps), 1) for k in steps[0]},
            }
        )
    sys.stderr.write("\n")
    return {"images": images, "runner": "project", "tuning": dataclasses.asdict(tuning)}


def print_table(report: dict[str, Any]) -> None:
    print(f"{'file':24}{'ms':>10}{'webpBytes':>12}{'thumbBytes':>12}{'totalBytes':>12}  steps (ms)")
    for im in report["images"]:
        steps = " ".join(f"{k}={v:g}" for k, v in im.get("steps", {}).items())
        print(
            f"{im['file']:24}{im['ms']:>10.1f}{im['webpBytes']:>12}{im['thumbBytes']:>12}"
            f"{im['totalBytes']:>12}  {steps}"
        )
    print(f"{'total':24}{sum(im['ms'] for im in report['images']):>10.1f}")


# --- side by side --------------------------------------------------------------


def _tuning(args: argparse.Namespace) -> Any:
    from processors.pipeline import DEFAULT_TUNING

    method = args.webp_method
    gap = args.reducing_gap
    return dataclasses.replace(
        DEFAULT_TUNING,
        webp_method=DEFAULT_TUNING.webp_method if method is None else method,
        jpeg_draft=not args.no_draft,
        concurrent=not args.no_concurrency,
        thumbnail_from_rendition=not args.thumbnail_from_source,
        reducing_gap=DEFAULT_TUNING.reducing_gap if gap is None else (gap or None),
    )


def serve(args: argparse.Namespace) -> int:
    """Worker for --compare-sharp: one JSON request per stdin line, one answer."""
    from processors.pipeline import process_image
    from processors.types import DEFAULT_LIMITS

    tuning = _tuning(args)
    inputs: dict[str, bytes] = {}
    print(json.dumps({"ready": True, "tuning": dataclasses.asdict(tuning)}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req["file"] not in inputs:
            inputs[req["file"]] = Path(req["file"]).read_bytes()
            process_image(inputs[req["file"]], DEFAULT_LIMITS, tuning)  # warm-up
        started = time.perf_counter()
        result = process_image(inputs[req["file"]], DEFAULT_LIMITS, tuning)
        ms = (time.perf_counter() - started) * 1000.0
        if req.get("out"):
            write_outputs(Path(req["out"]), Path(req["file"]).stem, result)
        answer = {"file": Path(req["file"]).name, "ms": ms, **sizes_of(result), "steps": dict(result.timings_ms)}
        print(json.dumps(answer), flush=True)
    return 0


class _Worker:
    """A pinned, persistent runner process spoken to in JSON lines."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker exited: {self.proc.args!r}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, file: Path, out: Path | None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        req = {"file": str(file), "out": str(out) if out else None}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _worker_cmd(kind: str, args: argparse.Namespace, cpus: str) -> list[str]:
    if kind == "project":
        cmd = [sys.executable, "-m", "benchmarks.bench_processing", "--serve"]
        if args.webp_method is not None:
            cmd += ["--webp-method", str(args.webp_method)]
        for flag in ("no_draft", "no_concurrency", "thumbnail_from_source"):
            if getattr(args, flag):
                cmd.append("--" + flag.replace("_", "-"))
        if args.reducing_gap is not None:
            cmd += ["--reducing-gap", str(args.reducing_gap)]
    else:
        n = str(len(cpus.split(",")))
        cmd = [shutil.which("node") or "node", str(SHARP_DIR / "bench.mjs"), "--serve", "--concurrency", n]
    return ["taskset", "-c", cpus, *cmd]


def _worker_env(kind: str, cpus: str) -> dict[str, str]:
    """sharp's pipelines run on libuv's threadpool: at least as many threads as CPUs."""
    env = dict(os.environ)
    if kind == "sharp":
        env["UV_THREADPOOL_SIZE"] = str(max(4, len(cpus.split(","))))
    return env


def ensure_sharp() -> None:
    """``npm ci`` in benchmarks/bench_sharp when sharp is not there yet (a fresh machine)."""
    if (SHARP_DIR / "node_modules" / "sharp").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed for --compare-sharp (apt-get install npm)")
    sys.stderr.write(f"installing sharp: npm ci in {SHARP_DIR}\n")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SHARP_DIR, check=True)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Project and sharp run by run in turn (ABBA...), each pinned to --cpus.

    Interleaving single runs means both see the same background load, which on
    a shared 2-core machine moves far more than the difference being measured.
    """
    ensure_sharp()
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin the runs")
    out_root: Path = args.out or Path(tempfile.gettempdir()) / "bench_processing"
    files = corpus_files(args.corpus)
    runs_per_image = args.repeat * args.rounds
    by_cpus: dict[str, Any] = {}
    sharp_info: dict[str, Any] = {}
    tuning: dict[str, Any] = {}
    for cpus in args.cpus:
        suffix = cpus.replace(",", "_")
        workers = {k: _Worker(_worker_cmd(k, args, cpus), _worker_env(k, cpus)) for k in ("project", "sharp")}
        sharp_info = workers["sharp"].hello
        tuning = workers["project"].hello.get("tuning", {})
        rows = []
        try:
            for n, path in enumerate(files, 1):
                times: dict[str, list[float]] = {"project": [], "sharp": []}
                last: dict[str, dict[str, Any]] = {}
                steps: list[dict[str, float]] = []
                for r in range(runs_per_image):
                    order = ("project", "sharp") if r % 2 == 0 else ("sharp", "project")
                    for kind in order:
                        _progress(
                            f"[taskset -c {cpus}] {n}/{len(files)} {path.name} run {r + 1}/{runs_per_image} {kind}"
                        )
                        out = out_root / f"{kind}-cpus{suffix}"
                        last[kind] = workers[kind].run(path, out if r == 0 else None)
                        times[kind].append(last[kind]["ms"])
                        if kind == "project":
                            steps.append(last[kind]["steps"])
                p_ms = statistics.median(times["project"])
                s_ms = statistics.median(times["sharp"])
                proj, sharp = last["project"], last["sharp"]
                rows.append(
                    {
                        "file": path.name,
                        "projectMs": round(p_ms, 1),
                        "sharpMs": round(s_ms, 1),
                        "ratio": round(p_ms / s_ms, 3),
                        "projectMinMs": round(min(times["project"]), 1),
                        "sharpMinMs": round(min(times["sharp"]), 1),
                        "projectBytes": proj["totalBytes"],
                        "sharpBytes": sharp["totalBytes"],
                        "bytesRatio": round(proj["totalBytes"] / sharp["totalBytes"], 3),
                        "projectWebpBytes": proj["webpBytes"],
                        "sharpWebpBytes": sharp["webpBytes"],
                        "projectThumbBytes": proj["thumbBytes"],
                        "sharpThumbBytes": sharp["thumbBytes"],
                        "projectRenditions": proj["renditions"],
                        "sharpRenditions": sharp["renditions"],
                        "projectSteps": {
                            k: round(statistics.median(s.get(k, 0.0) for s in steps), 1) for k in steps[0]
                        },
                    }
                )
        finally:
            for worker in workers.values():
                worker.close()
        sys.stderr.write("\n")
        total_p = sum(r["projectMs"] for r in rows)
        total_s = sum(r["sharpMs"] for r in rows)
        min_p = sum(r["projectMinMs"] for r in rows)
        min_s = sum(r["sharpMinMs"] for r in rows)
        bytes_p = sum(r["projectBytes"] for r in rows)
        bytes_s = sum(r["sharpBytes"] for r in rows)
        by_cpus[cpus] = {
            "images": rows,
            "totalProjectMs": round(total_p, 1),
            "totalSharpMs": round(total_s, 1),
            "ratio": round(total_p / total_s, 3),
            "minRatio": round(min_p / min_s, 3),
            "bytesRatio": round(bytes_p / bytes_s, 3),
        }
    report: dict[str, Any] = {
        "runsPerImage": runs_per_image,
        "cpus": by_cpus,
        "sharp": {k: sharp_info.get(k) for k in ("versions", "concurrency", "threadpool")},
        "project": {**_project_versions(), "tuning": tuning},
        "loadavg": _loadavg(),
    }
    if not args.no_ssim:
        report["ssim"] = _ssim_table(args, out_root, by_cpus[args.cpus[0]], args.cpus[0])
    return report


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def _project_versions() -> dict[str, Any]:
    import PIL
    from PIL import features

    return {
        "pillow": PIL.__version__,
        "libjpeg-turbo": features.version("libjpeg_turbo"),
        "libwebp": features.version("webp"),
        "lcms2": features.version("littlecms2"),
        "zlib": features.version("zlib"),
    }


def _ssim_table(args: argparse.Namespace, out_root: Path, block: dict[str, Any], cpus: str) -> dict[str, Any]:
    """SSIM of every rung, both sides, against the reference; ``delta`` = project - sharp.

    Rungs are paired by their place in the ladder (the two may round a side by a
    pixel differently); per image, ``project``/``sharp``/``delta``/``width`` name the
    rung with the lowest delta.
    """
    from benchmarks.ssim import Reference

    suffix = cpus.replace(",", "_")
    rows = {r["file"]: r for r in block["images"]}
    table: dict[str, Any] = {}
    files = corpus_files(args.corpus)
    for n, path in enumerate(files, 1):
        _progress(f"ssim {n}/{len(files)} {path.name}")
        ref = Reference(path.read_bytes())
        row = rows[path.name]
        rungs = []
        for mine, theirs in zip(row["projectRenditions"], row["sharpRenditions"], strict=False):
            p_file = out_root / f"project-cpus{suffix}" / f"{path.stem}.{mine['width']}.webp"
            s_file = out_root / f"sharp-cpus{suffix}" / f"{path.stem}.{theirs['width']}.webp"
            p, s = ref.ssim_of(p_file.read_bytes()), ref.ssim_of(s_file.read_bytes())
            rungs.append(
                {"width": mine["width"], "project": round(p, 5), "sharp": round(s, 5), "delta": round(p - s, 5)}
            )
        worst = min(rungs, key=lambda r: r["delta"])
        table[path.name] = {**worst, "renditions": rungs}
    sys.stderr.write("\n")
    return table


def print_comparison(report: dict[str, Any]) -> None:
    ssim = report.get("ssim", {})
    print(f"project: {report['project']}")
    print(f"sharp:   {report['sharp']}")
    print(f"load average at the end: {report['loadavg']}")
    print(f"median of {report['runsPerImage']} interleaved runs per image (after a warm-up)")
    print("bytes: every rung + thumbnail; ssim: the rung whose SSIM is furthest below sharp's")
    for cpus, block in report["cpus"].items():
        print(f"\ntaskset -c {cpus}")
        print(
            f"{'file':22}{'project ms':>11}{'sharp ms':>10}{'ratio':>7}"
            f"{'bytes':>10}{'sharp':>10}{'ratio':>7}{'rung':>6}{'ssim':>9}{'sharp':>9}{'delta':>9}"
        )
        for r in block["images"]:
            s = ssim.get(r["file"], {})
            print(
                f"{r['file']:22}{r['projectMs']:>11.1f}{r['sharpMs']:>10.1f}"
                f"{r['ratio']:>7.2f}{r['projectBytes']:>10}{r['sharpBytes']:>10}"
                f"{r['bytesRatio']:>7.3f}{s.get('width', 0):>6}{s.get('project', float('nan')):>9.5f}"
                f"{s.get('sharp', float('nan')):>9.5f}{s.get('delta', float('nan')):>9.5f}"
            )
        print(
            f"{'total':22}{block['totalProjectMs']:>11.1f}{block['totalSharpMs']:>10.1f}"
            f"{block['ratio']:>7.2f}{'':>20}{block['bytesRatio']:>7.3f}"
        )
        print(f"{'ratio of summed best runs':33}{block['minRatio']:>7.2f}")


def print_markdown(report: dict[str, Any]) -> None:
    """The comparison as Markdown tables (for docs/benchmarks.md)."""
    ssim = report.get("ssim", {})
    sharp = report["sharp"]
    versions = sharp.get("versions") or {}
    project = report["project"]
    print(
        f"Project: Pillow-SIMD {project['pillow']}, libjpeg-turbo "
        f"{project['libjpeg-turbo']}, libwebp {project['libwebp']}, tuning "
        f"`{project.get('tuning')}`. sharp {versions.get('sharp')} (libvips "
        f"{versions.get('vips')}, libwebp {versions.get('webp')}, concurrency "
        f"{sharp.get('concurrency')}, libuv threadpool {sharp.get('threadpool')}). "
        f"Median of {report['runsPerImage']} interleaved "
        f"runs per image; load average at the end: {report['loadavg']}.\n"
    )
    for cpus, block in report["cpus"].items():
        print(f"`taskset -c {cpus}`\n")
        print(
            "| image | project ms | sharp ms | ratio | project bytes | sharp bytes "
            "| bytes ratio | worst rung | SSIM project | SSIM sharp | SSIM delta |"
        )
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for r in block["images"]:
            s = ssim.get(r["file"], {})
            print(
                f"| {r['file']} | {r['projectMs']:.0f} | {r['sharpMs']:.0f} "
                f"| {r['ratio']:.2f} | {r['projectBytes']:,} | {r['sharpBytes']:,} "
                f"| {r['bytesRatio']:.3f} | {s.get('width', '')} | {s.get('project', float('nan')):.4f} "
                f"| {s.get('sharp', float('nan')):.4f} "
                f"| {s.get('delta', float('nan')):+.4f} |"
            )
        print(
            f"| **total** | **{block['totalProjectMs']:.0f}** "
            f"| **{block['totalSharpMs']:.0f}** | **{block['ratio']:.2f}** | | "
            f"| **{block['bytesRatio']:.3f}** | | | | |\n"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    parser.add_argument("--out", type=Path, help="write the outputs here")
    parser.add_argument("--compare-sharp", action="store_true")
    parser.add_argument("--cpus", nargs="+", default=["0", "0,1"])
    parser.add_argument("--rounds", type=int, default=1, help="runs per image = repeat x rounds")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", action="store_true", help="print a comparison as Markdown")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="REPORT.json",
        help="print a saved --compare-sharp --json report (as a table or --markdown)",
    )
    parser.add_argument("--no-ssim", action="store_true")
    lever = parser.add_argument_group("levers (project only)")
    lever.add_argument("--webp-method", type=int, choices=range(7))
    lever.add_argument("--no-draft", action="store_true")
    lever.add_argument("--no-concurrency", action="store_true")
    lever.add_argument("--thumbnail-from-source", action="store_true")
    lever.add_argument("--reducing-gap", type=float, help="0 turns it off")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.rounds < 1:
        parser.error("--repeat and --rounds must be >= 1")
    if not args.serve and not args.render and not args.corpus.is_dir():
        parser.error(f"corpus folder not found: {args.corpus}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args)
    if args.compare_sharp or args.render:
        report = json.loads(args.render.read_text()) if args.render else compare(args)
        if args.json and not args.render:
            print(json.dumps(report))
        elif args.markdown:
            print_markdown(report)
        else:
            print_comparison(report)
        return 0
    single = run_project(args)
    if args.json:
        print(json.dumps(single))
    else:
        print_table(single)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
