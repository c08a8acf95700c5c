"""The duplicate test set: same-photo variants and near-misses made from the corpus.

``python -m tests.processors.phash_corpus`` prints the perceptual-hash distance of every
pair (the distribution docs/processing.md quotes and DUPLICATE_MAX_DISTANCE was chosen
from). The corpus (../shared/corpus) holds no LEGO photographs and no two shots of one
subject, so the near-misses are made the way a second shot differs from a first: the
camera panned (two overlapping 75 % windows of one photo), zoomed (a centre crop against
the whole), turned (mirrored), and the renders' and photos' other pictures.
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image

from infra.stage_config import CORPUS_DIR
from processors import process_image
from processors.phash import distance

Variant = Callable[[Image.Image], bytes]


def _jpeg(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _fit(im: Image.Image, side: int) -> Image.Image:
    small = im.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    return small


def _save(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **params)
    return out.getvalue()


#: The same photo: what API.md calls resized, recompressed, re-exported, metadata changed.
SAME_PHOTO: dict[str, Variant] = {
    "1200px-q60": lambda im: _jpeg(_fit(im, 1200), 60),
    "q60": lambda im: _jpeg(im, 60),
    "640px-q75": lambda im: _jpeg(_fit(im, 640), 75),
    "png-reexport": lambda im: _save(_fit(im, 2048), "PNG"),
    "webp-q70": lambda im: _save(_fit(im, 1600), "WEBP", quality=70),
    "exif-stripped-q90": lambda im: _jpeg(im, 90),
    "brighter-5pct": lambda im: _jpeg(im.point(lambda v: min(255, round(v * 1.05))), 85),
}


def _window(im: Image.Image, left: float, top: float, size: float) -> Image.Image:
    w, h = im.size
    return im.crop((round(left * w), round(top * h), round((left + size) * w), round((top + size) * h)))


#: Near-misses: (name, first picture, second picture) from one source photo.
NEAR_MISSES: dict[str, tuple[Callable[[Image.Image], Image.Image], Callable[[Image.Image], Image.Image]]] = {
    "panned": (lambda im: _window(im, 0.0, 0.0, 0.75), lambda im: _window(im, 0.25, 0.25, 0.75)),
    "panned-sideways": (lambda im: _window(im, 0.0, 0.1, 0.75), lambda im: _window(im, 0.25, 0.1, 0.75)),
    "zoomed": (lambda im: im, lambda im: _window(im, 0.2, 0.2, 0.6)),
    "mirrored": (lambda im: im, lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
}


def phash_of(data: bytes) -> str:
    return process_image(data).perceptual_hash


def _load(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.draft("RGB", (1600, 1600))
        return im.convert("RGB")


def same_photo_distances(corpus: Path) -> Iterator[tuple[str, str, int]]:
    for path in sorted(corpus.glob("*.jp*g")) + sorted(corpus.glob("*.png")):
        original = path.read_bytes()
        base = phash_of(original)
        im = _load(path)
        for name, variant in SAME_PHOTO.items():
            yield path.name, name, distance(base, phash_of(variant(im)))


def near_miss_distances(corpus: Path) -> Iterator[tuple[str, str, int]]:
    paths = sorted(corpus.glob("*.jp*g")) + sorted(corpus.glob("*.png"))
    for path in paths:
        im = _load(path)
        for name, (first, second) in NEAR_MISSES.items():
            a = phash_of(_jpeg(first(im), 90))
            b = phash_of(_jpeg(second(im), 90))
            yield path.name, name, distance(a, b)
    hashes = {path.name: phash_of(path.read_bytes()) for path in paths}
    for (name_a, a), (name_b, b) in itertools.combinations(hashes.items(), 2):
        yield name_a, f"other photo {name_b}", distance(a, b)


def main(argv: list[str]) -> int:
    corpus = Path(argv[1]) if len(argv) > 1 else CORPUS_DIR
    same = list(same_photo_distances(corpus))
    near = list(near_miss_distances(corpus))
    for label, rows in (("same photo", same), ("near miss", near)):
        print(f"## {label}")
        for file, name, d in rows:
            print(f"{d:3d}  {file}  {name}")
        values = sorted(d for _, _, d in rows)
        print(f"min {values[0]}  median {values[len(values) // 2]}  max {values[-1]}  n {len(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
