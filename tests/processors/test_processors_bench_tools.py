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
    assert sorted(p.name for p in out.iterdir()) == [
        "one.thumb.webp",
        "one.webp",
        "two.thumb.webp",
        "two.webp",
    ]
    assert Image.open(out / "two.thumb.webp").size == (400, 400)
