// Test-only: the reference thumbhash.js on pixels sent by tests/processors/test_processors_thumbhash.py.
// stdin: a JSON list of {"w", "h", "rgba": base64}; stdout: a JSON list of
// {"hash": base64 of rgbaToThumbHash, "decoded": {"w", "h", "rgba": base64 of thumbHashToRGBA(hash)},
//  "ours": base64 of thumbHashToRGBA(ours) when the item carries "ours" (a hash to decode)}.
import { readFileSync } from "node:fs";
import { rgbaToThumbHash, thumbHashToRGBA } from "thumbhash";

const items = JSON.parse(readFileSync(0, "utf8"));
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const out = items.map((item) => {
  const rgba = new Uint8Array(Buffer.from(item.rgba, "base64"));
  const hash = rgbaToThumbHash(item.w, item.h, rgba);
  const decoded = thumbHashToRGBA(hash);
  const result = { hash: b64(hash), decoded: { w: decoded.w, h: decoded.h, rgba: b64(decoded.rgba) } };
  if (item.ours) {
    const mine = thumbHashToRGBA(new Uint8Array(Buffer.from(item.ours, "base64")));
    result.ours = { w: mine.w, h: mine.h, rgba: b64(mine.rgba) };
  }
  return result;
});
process.stdout.write(JSON.stringify(out));
