"""The benchmark tools: the SSIM helper and the project runner's JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.processors.processors_testkit import quadrants

ROOT = Path(__file__).resolve().parents[2]

np = pytest.importorskip("numpy")

from benchmarks import ssim  # noqa: E402 - needs numpy, checked just above


def test_ssim_of_identical_images_is_one() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (64, 80))
    assert ssim.ssim(a, a) == pytest.approx(1.0)
    noisy = ssim.ssim(a, a + rng.normal(0, 20, a.shape))
    assert 0.5 < noisy < 0.99
    assert ssim.ssim(a, rng.permutation(a.ravel()).reshape(a.shape)) < 0.1


def test_lanczos_reference_matches_pillows_lanczos() -> None:
    im = Image.effect_noise((400, 300), 50).convert("L").resize((800, 600))
    ours = ssim.lanczos_resize(np.asarray(im, dtype=np.float64), 320, 240)
    pillow = np.asarray(im.resize((320, 240), Image.Resampling.LANCZOS), dtype=np.float64)
    assert np.abs(ours - pillow).mean() < 1.0


def test_project_runner_prints_one_json_line_and_writes_outputs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    quadrants(640, 400).save(corpus / "one.jpg", quality=90)
    quadrants(300, 500).save(corpus / "two.png")
    (corpus / "notes.txt").write_text("ignored")
    out = tmp_path / "out"

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_processing.py"),
            "--corpus",
            str(corpus),
            "--repeat",
            "2",
            "--json",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert [im["file"] for im in report["images"]] == ["one.jpg", "two.png"]
    for im in report["images"]:
        assert im["ms"] > 0 and im["webpBytes"] > 0 and im["thumbBytes"] > 0
        # The whole job: the ladder's bytes, the largest last, and the total with the thumbnail.
        assert im["renditions"][-1]["bytes"] == im["webpBytes"]
        assert im["totalBytes"] == sum(r["bytes"] for r in im["renditions"]) + im["thumbBytes"]
        assert {"decode", "thumbhash", "phash"} <= set(im["steps"])
    one, two = report["images"]
    assert [(r["width"], r["height"]) for r in one["renditions"]] == [(320, 200), (640, 400)]
    assert [(r["width"], r["height"]) for r in two["renditions"]] == [(192, 320), (300, 500)]  # never enlarged
    assert sorted(p.name for p in out.iterdir()) == [
        "one.320.webp",
        "one.640.webp",
        "one.thumb.webp",
        "one.webp",
        "two.192.webp",
        "two.300.webp",
        "two.thumb.webp",
        "two.webp",
    ]
    assert Image.open(out / "two.thumb.webp").size == (400, 400)
    assert Image.open(out / "one.320.webp").size == (320, 200)
    assert (out / "one.webp").read_bytes() == (out / "one.640.webp").read_bytes()


SHARP = ROOT / "benchmarks" / "bench_sharp" / "node_modules" / "sharp"


@pytest.mark.skipif(not SHARP.is_dir(), reason="sharp not installed (npm ci in benchmarks/bench_sharp)")
def test_compare_sharp_pairs_every_rung_and_counts_every_byte(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    quadrants(1200, 800).save(corpus / "one.jpg", quality=90)
    out = tmp_path / "out"

    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.bench_processing", "--corpus", str(corpus), "--compare-sharp"),
            *("--repeat", "1", "--cpus", "0", "--out", str(out), "--json"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    report = json.loads(done.stdout)
    (row,) = report["cpus"]["0"]["images"]
    for side in ("project", "sharp"):
        rungs = row[f"{side}Renditions"]
        assert [r["width"] for r in rungs] == [320, 640, 1024, 1200]
        assert row[f"{side}Bytes"] == sum(r["bytes"] for r in rungs) + row[f"{side}ThumbBytes"]
        written = sorted(p.name for p in (out / f"{side}-cpus0").iterdir())
        assert written == [
            "one.1024.webp",
            "one.1200.webp",
            "one.320.webp",
            "one.640.webp",
            "one.thumb.webp",
            "one.webp",
        ]
    ssim = report["ssim"]["one.jpg"]
    assert [r["width"] for r in ssim["renditions"]] == [320, 640, 1024, 1200]
    assert ssim["delta"] == min(r["delta"] for r in ssim["renditions"])
    assert all(0.5 < r["project"] <= 1 and 0.5 < r["sharp"] <= 1 for r in ssim["renditions"])
