"""ThumbHash interoperability with the reference thumbhash.js, and the dominant colour.

The reference (npm ``thumbhash`` 0.1.1, pinned by tests/processors/thumbhash_js/package-lock.json,
installed by scripts/bootstrap.sh with ``npm ci``) runs under node on exactly the pixels
processors/thumbhash.py hashed; the bytes must be identical. Skips when node or the npm
install is missing.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from processors import process_image
from processors.thumbhash import rgba_to_thumbhash
from tests.processors.processors_testkit import encode, quadrants

REFERENCE = Path(__file__).parent / "thumbhash_js"


def _reference(items: list[dict[str, object]]) -> list[dict[str, object]]:
    node = shutil.which("node")
    if node is None or not (REFERENCE / "node_modules" / "thumbhash" / "thumbhash.js").is_file():
        pytest.skip("node or tests/processors/thumbhash_js/node_modules missing (scripts/bootstrap.sh installs them)")
    done = subprocess.run(
        [node, "reference.mjs"], cwd=REFERENCE, input=json.dumps(items), capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert isinstance(result, list)
    return result


def _cases(corpus: Path) -> list[tuple[str, Image.Image]]:
    """Photos, renders, a PNG, odd sizes, alpha (RGBA with partial transparency), greys."""
    cases: list[tuple[str, Image.Image]] = []
    for name in ("kite.jpg", "boats.jpg", "moss.jpg", "cascade-render.png"):
        with Image.open(corpus / name) as im:
            im.draft("RGB", (200, 200))
            small = im.convert("RGBA")
            small.thumbnail((100, 100), Image.Resampling.LANCZOS)
            cases.append((name, small))
    cases.append(("quadrants-portrait", quadrants(37, 100).convert("RGBA")))
    cases.append(("one-pixel", Image.new("RGBA", (1, 1), (12, 200, 99, 255))))
    cases.append(("grey-wide", Image.linear_gradient("L").resize((100, 7)).convert("RGBA")))
    alpha = quadrants(80, 60).convert("RGBA")
    mask = Image.new("L", alpha.size, 0)
    ImageDraw.Draw(mask).ellipse((5, 5, 75, 55), fill=255)
    mask.paste(128, (0, 0, 20, 60))
    alpha.putalpha(mask)
    cases.append(("alpha-ellipse", alpha))
    cases.append(("fully-transparent", Image.new("RGBA", (10, 10), (0, 0, 0, 0))))
    return cases


def test_our_thumbhash_bytes_equal_the_reference_implementations(corpus: Path) -> None:
    cases = _cases(corpus)
    items = [{"w": im.width, "h": im.height, "rgba": base64.b64encode(im.tobytes()).decode("ascii")} for _, im in cases]
    reference = _reference(items)
    for (name, im), ref in zip(cases, reference, strict=True):
        ours = rgba_to_thumbhash(im.width, im.height, im.tobytes())
        assert base64.b64encode(ours).decode("ascii") == ref["hash"], name


def test_the_pipelines_thumbhash_decodes_with_the_reference_to_the_pictures_colours(corpus: Path) -> None:
    result = process_image((corpus / "kite.jpg").read_bytes())
    raw = base64.b64decode(result.thumbhash, validate=True)
    assert 5 <= len(raw) <= 25
    # Decode it with thumbhash.js's thumbHashToRGBA: a landscape placeholder close to the
    # average colour of the smallest rendition.
    (decoded,) = _reference([{"w": 1, "h": 1, "rgba": "AAAAAA==", "ours": result.thumbhash}])
    ours = decoded["ours"]
    assert isinstance(ours, dict)
    assert ours["w"] > ours["h"]  # 2560 x 1600 is landscape
    placeholder = Image.frombytes("RGBA", (ours["w"], ours["h"]), base64.b64decode(ours["rgba"]))
    smallest = Image.open(__import__("io").BytesIO(result.renditions[0].data)).convert("RGB")
    mean_placeholder = placeholder.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    mean_image = smallest.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(mean_placeholder, tuple) and isinstance(mean_image, tuple)
    assert all(abs(a - b) <= 12 for a, b in zip(mean_placeholder, mean_image, strict=True)), (
        mean_placeholder,
        mean_image,
    )


def test_thumbhash_refuses_what_the_reference_refuses() -> None:
    with pytest.raises(ValueError):
        rgba_to_thumbhash(101, 10, bytes(101 * 10 * 4))
    with pytest.raises(ValueError):
        rgba_to_thumbhash(2, 2, bytes(3))


@pytest.mark.parametrize(
    ("colour", "expected"),
    [((200, 30, 40), "#c81e28"), ((10, 120, 250), "#0a78fa"), ((255, 255, 255), "#ffffff")],
)
def test_dominant_color_is_the_most_common_colour(colour: tuple[int, int, int], expected: str) -> None:
    im = Image.new("RGB", (400, 300), colour)
    im.paste((0, 0, 0), (0, 0, 100, 100))  # a smaller black area does not win
    result = process_image(encode(im, "PNG"))
    assert result.dominant_color == expected


def test_transparent_pixels_do_not_count_towards_the_dominant_colour() -> None:
    im = Image.new("RGBA", (200, 200), (255, 0, 0, 0))  # mostly invisible red
    im.paste((0, 0, 255, 255), (0, 0, 80, 80))
    assert process_image(encode(im, "PNG")).dominant_color == "#0000ff"


def test_rounding_is_javascripts_math_round() -> None:
    from processors.thumbhash import _js_round

    # Halves go up, as Math.round does; Python's round() would give 6, 0 and -2.
    assert [_js_round(v) for v in (6.5, 0.5, -1.5, 7.4999)] == [7, 1, -1, 7]
