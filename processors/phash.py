"""Perceptual hash for duplicate detection, and the bucket keys to look duplicates up by.

The hash is the classic DCT pHash (as in the ``imagehash`` package's ``phash``): the
upright sRGB picture as 32x32 greyscale (aspect ratio ignored), its 2-D DCT-II, the 8x8
lowest frequencies compared with their median, one bit each: 64 bits, written as 16
lowercase hex digits. Low frequencies survive resizing, recompression, re-export and
metadata changes; a different shot of the same subject moves them.

Two images are the same photo when :func:`distance` (differing bits) is at most
:data:`DUPLICATE_MAX_DISTANCE`. To find such an image without comparing against every
image an owner has, :func:`buckets` cuts the 64 bits into ``DUPLICATE_MAX_DISTANCE + 1``
bands and names each band's exact value: two hashes within the distance differ in at
most ``DUPLICATE_MAX_DISTANCE`` bits, which cannot touch every one of the
``DUPLICATE_MAX_DISTANCE + 1`` bands, so they share at least one bucket key (pigeonhole).
A lookup reads the owner's images under each of the hash's keys (a fixed number of
queries) and keeps those within the distance.

Pure Python; importing it is cheap (the service imports :func:`buckets` and
:func:`distance` without Pillow).
"""

from __future__ import annotations

import math
from functools import lru_cache
from operator import mul
from typing import Final

#: Side of the greyscale square the DCT is taken over.
PHASH_SIDE: Final = 32
#: Low frequencies kept per axis (8 x 8 = 64 bits).
PHASH_KEEP: Final = 8
#: Largest distance (differing bits of 64) at which two images are the same photo.
#: Chosen from the distances measured over the corpus (docs/processing.md, "Duplicates";
#: ``python -m tests.processors.phash_corpus``): the same photo resized to 1200 px and
#: re-encoded at JPEG q60, re-exported as PNG or WebP or 5 % brighter is 0-2 bits away (49
#: pairs); panned, zoomed or mirrored shots of one subject and other photos 22-38 (49
#: pairs). 6 is three times the largest same-photo distance and keeps 7 bands of 9-10 bits.
DUPLICATE_MAX_DISTANCE: Final = 6
#: Bands, hence bucket keys per hash.
BUCKET_COUNT: Final = DUPLICATE_MAX_DISTANCE + 1
HASH_BITS: Final = PHASH_KEEP * PHASH_KEEP


@lru_cache(maxsize=1)
def _cosines() -> tuple[tuple[float, ...], ...]:
    n = PHASH_SIDE
    return tuple(tuple(math.cos(math.pi * k * (2 * x + 1) / (2 * n)) for x in range(n)) for k in range(PHASH_KEEP))


def phash_from_grey(pixels: bytes) -> str:
    """The 64-bit pHash of a 32x32 8-bit greyscale image (row-major bytes), as 16 hex digits."""
    n = PHASH_SIDE
    if len(pixels) != n * n:
        raise ValueError(f"expected {n * n} greyscale bytes")
    cos = _cosines()
    rows = [pixels[y * n : (y + 1) * n] for y in range(n)]
    # Separable DCT-II (unnormalised: scaling does not move the median comparison).
    along_x = [[sum(map(mul, row, cos[u])) for u in range(PHASH_KEEP)] for row in rows]
    coefficients = [
        sum(map(mul, (along_x[y][u] for y in range(n)), cos[v])) for v in range(PHASH_KEEP) for u in range(PHASH_KEEP)
    ]
    median = sorted(coefficients)[len(coefficients) // 2 - 1 : len(coefficients) // 2 + 1]
    threshold = (median[0] + median[1]) / 2
    value = 0
    for c in coefficients:
        value = (value << 1) | (c > threshold)
    return f"{value:016x}"


def distance(a: str, b: str) -> int:
    """Differing bits between two hashes from :func:`phash_from_grey`."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def is_duplicate(a: str, b: str) -> bool:
    """Whether two hashes are the same photo (within :data:`DUPLICATE_MAX_DISTANCE`)."""
    return distance(a, b) <= DUPLICATE_MAX_DISTANCE


def _bands() -> tuple[tuple[int, int], ...]:
    """(first bit, width) of each band: 64 bits in BUCKET_COUNT nearly equal bands."""
    base, extra = divmod(HASH_BITS, BUCKET_COUNT)
    bands, start = [], 0
    for index in range(BUCKET_COUNT):
        width = base + (1 if index < extra else 0)
        bands.append((start, width))
        start += width
    return tuple(bands)


BANDS: Final = _bands()


def buckets(phash: str) -> tuple[str, ...]:
    """The bucket keys of a hash: ``"<band>:<band value in hex>"``, one per band.

    Any two hashes with ``distance(a, b) <= DUPLICATE_MAX_DISTANCE`` share at least one key
    (the same band index with the same value). With 7 bands of 9-10 bits, one key matches
    about 1 in 700 unrelated images.
    """
    value = int(phash, 16)
    keys = []
    for index, (start, width) in enumerate(BANDS):
        band = (value >> (HASH_BITS - start - width)) & ((1 << width) - 1)
        keys.append(f"{index}:{band:03x}")
    return tuple(keys)
