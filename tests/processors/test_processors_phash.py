"""Perceptual hash: the same photo stays within DUPLICATE_MAX_DISTANCE, near-misses do not,
and the bucket keys find every pair within it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from processors import BUCKET_COUNT, DUPLICATE_MAX_DISTANCE, buckets, distance, is_duplicate, process_image
from processors.phash import HASH_BITS, phash_from_grey
from tests.processors import phash_corpus
from tests.processors.processors_testkit import encode, quadrants

#: A photo, a textured photo and a render; the whole set is `python -m tests.processors.phash_corpus`.
PHOTOS = ("kite.jpg", "moss.jpg", "volna-render.jpg")


@pytest.fixture(scope="module")
def originals(corpus: Path) -> dict[str, tuple[Image.Image, str]]:
    out = {}
    for name in PHOTOS:
        im = phash_corpus._load(corpus / name)
        out[name] = (im, phash_corpus.phash_of((corpus / name).read_bytes()))
    return out


@pytest.mark.parametrize("variant", ["1200px-q60", "png-reexport", "webp-q70", "brighter-5pct"])
@pytest.mark.parametrize("name", PHOTOS)
def test_the_same_photo_resized_recompressed_or_reexported_is_a_duplicate(
    originals: dict[str, tuple[Image.Image, str]], name: str, variant: str
) -> None:
    im, original = originals[name]
    copy = phash_corpus.phash_of(phash_corpus.SAME_PHOTO[variant](im))
    assert is_duplicate(original, copy), (variant, distance(original, copy))
    assert set(buckets(original)) & set(buckets(copy))


@pytest.mark.parametrize("near_miss", sorted(phash_corpus.NEAR_MISSES))
@pytest.mark.parametrize("name", PHOTOS)
def test_another_shot_of_the_same_subject_is_not_a_duplicate(
    originals: dict[str, tuple[Image.Image, str]], name: str, near_miss: str
) -> None:
    im, _ = originals[name]
    first, second = phash_corpus.NEAR_MISSES[near_miss]
    a = phash_corpus.phash_of(phash_corpus._jpeg(first(im), 90))
    b = phash_corpus.phash_of(phash_corpus._jpeg(second(im), 90))
    # Far outside the threshold, not just past it (measured: 22 and more over the corpus).
    assert distance(a, b) > 3 * DUPLICATE_MAX_DISTANCE, (near_miss, distance(a, b))


def test_different_photos_are_not_duplicates(originals: dict[str, tuple[Image.Image, str]]) -> None:
    hashes = [h for _, h in originals.values()]
    for i, a in enumerate(hashes):
        for b in hashes[i + 1 :]:
            assert not is_duplicate(a, b)


def test_orientation_and_metadata_do_not_change_the_hash() -> None:
    # The hash is taken from the upright picture: a rotated JPEG with EXIF orientation 6
    # hashes like the upright one.
    upright = quadrants(300, 200, ((200, 30, 30), (30, 200, 30), (30, 30, 200), (240, 240, 240)))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what orientation 6 turns back
    exif = Image.Exif()
    exif[0x0112] = 6
    a = process_image(encode(upright, "JPEG", quality=90)).perceptual_hash
    b = process_image(encode(stored, "JPEG", quality=90, exif=exif.tobytes())).perceptual_hash
    assert distance(a, b) <= 2


def test_the_hash_is_16_hex_digits_from_32x32_grey() -> None:
    flat = phash_from_grey(bytes([128]) * 32 * 32)
    assert len(flat) == 16 and int(flat, 16) >= 0
    with pytest.raises(ValueError):
        phash_from_grey(bytes(31 * 32))
    gradient = bytes((x * 8) % 256 for _ in range(32) for x in range(32))
    assert phash_from_grey(gradient) != flat


def test_buckets_are_one_key_per_band_named_by_band() -> None:
    keys = buckets("0123456789abcdef")
    assert len(keys) == BUCKET_COUNT == DUPLICATE_MAX_DISTANCE + 1
    assert [k.split(":")[0] for k in keys] == [str(i) for i in range(BUCKET_COUNT)]
    assert len(set(buckets("0123456789abcdef")) & set(buckets("fedcba9876543210"))) == 0


@settings(max_examples=500, derandomize=True)
@given(st.integers(0, 2**HASH_BITS - 1), st.lists(st.integers(0, HASH_BITS - 1), max_size=DUPLICATE_MAX_DISTANCE))
def test_any_two_hashes_within_the_threshold_share_a_bucket(value: int, flips: list[int]) -> None:
    other = value
    for bit in flips:
        other ^= 1 << bit
    a, b = f"{value:016x}", f"{other:016x}"
    assert distance(a, b) <= DUPLICATE_MAX_DISTANCE
    assert set(buckets(a)) & set(buckets(b))


def test_one_flip_per_band_can_miss_every_bucket_which_is_why_there_are_threshold_plus_one() -> None:
    # DUPLICATE_MAX_DISTANCE + 1 flips, one in each band, share no bucket: the pigeonhole
    # bound is tight, so fewer bands would miss pairs within the threshold.
    from processors.phash import BANDS

    value = random.Random(7).getrandbits(HASH_BITS)
    other = value
    for start, _width in BANDS:
        other ^= 1 << (HASH_BITS - 1 - start)
    a, b = f"{value:016x}", f"{other:016x}"
    assert distance(a, b) == DUPLICATE_MAX_DISTANCE + 1
    assert not set(buckets(a)) & set(buckets(b))
