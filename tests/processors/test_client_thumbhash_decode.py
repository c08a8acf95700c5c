"""The browser client's ThumbHash decoder (chalicelib/api/client/image-service.js) draws the
same placeholder as the reference thumbhash.js for hashes our processor makes.

Runs under node with the reference from tests/processors/thumbhash_js (npm ci by
scripts/bootstrap.sh); skips when either is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from processors.thumbhash import thumbhash_base64
from tests.processors.processors_testkit import quadrants

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "processors" / "thumbhash_js" / "node_modules" / "thumbhash" / "thumbhash.js"
CLIENT = ROOT / "chalicelib" / "api" / "client" / "image-service.js"

SCRIPT = """
import * as ref from %(ref)s;
import * as client from %(client)s;
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map((b64) => {
  const bytes = Uint8Array.from(Buffer.from(b64, "base64"));
  return {ours: client.thumbHashToDataURL(b64), reference: ref.thumbHashToDataURL(bytes),
          ratio: client.thumbHashToApproximateAspectRatio(bytes)};
});
process.stdout.write(JSON.stringify(out));
"""


def _hashes() -> list[str]:
    pictures = [quadrants(100, 60), quadrants(40, 100), Image.new("RGB", (50, 50), (200, 30, 90))]
    alpha = Image.new("RGBA", (90, 70), (0, 0, 0, 0))
    ImageDraw.Draw(alpha).ellipse((10, 10, 80, 60), fill=(20, 120, 220, 255))
    pictures.append(alpha)
    out = []
    for im in pictures:
        rgba = im.convert("RGBA")
        out.append(thumbhash_base64(rgba.width, rgba.height, rgba.tobytes()))
    return out


def test_client_decodes_our_thumbhashes_like_the_reference(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not REFERENCE.is_file():
        pytest.skip("node or tests/processors/thumbhash_js/node_modules missing (scripts/bootstrap.sh installs them)")
    script = tmp_path / "decode.mjs"
    script.write_text(SCRIPT % {"ref": json.dumps(REFERENCE.as_uri()), "client": json.dumps(CLIENT.as_uri())})
    hashes = _hashes()

    done = subprocess.run(
        [node, str(script)], input=json.dumps(hashes), capture_output=True, text=True, check=True, timeout=60
    )

    results = json.loads(done.stdout)
    assert len(results) == len(hashes)
    for result in results:
        assert result["ours"].startswith("data:image/png;base64,")
        assert result["ours"] == result["reference"]
    assert results[0]["ratio"] > 1 > results[1]["ratio"]  # landscape, portrait
