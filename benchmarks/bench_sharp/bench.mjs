#!/usr/bin/env node
// Reference benchmark: the Image Service's processing job done by Node's sharp.
//
// For every JPEG/PNG in --corpus: one sharp input (clone() per output), auto-orient,
// the WebP ladder -- fitted inside 320, 640, 1024, 1600 and 2048 px, never enlarged,
// sizes that collapse into the original's made once -- as WebP q85 effort 4, and a
// 400x400 centre cover thumbnail as WebP q80 effort 4, every pipeline running
// concurrently (Promise.all) as a sharp user would write it. Metadata is stripped and
// colour converted to sRGB by sharp's defaults. Times are per image, from the bytes in
// memory to every output in memory (the header read for the ladder's sizes included);
// the median over --repeat runs is reported after one warm-up run.
//
// Usage: node bench.mjs --corpus DIR [--repeat N] [--json] [--out DIR] [--concurrency N]
//        node bench.mjs --serve [--concurrency N]
// --serve reads one JSON request per stdin line, {"file": PATH, "out": DIR|null},
// runs the job once and answers one JSON line {"file", "ms", "webpBytes" (the largest),
// "thumbBytes", "renditions": [{"width", "height", "bytes"}], "totalBytes"};
// --out writes <stem>.webp (largest), <stem>.thumb.webp and <stem>.<width>.webp per rung.
// scripts/bench_processing.py --compare-sharp uses it to
// interleave sharp and the project run by run, so both see the same machine load.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { basename, extname, join } from "node:path";
import { performance } from "node:perf_hooks";
import sharp from "sharp";

function parseArgs(argv) {
  const args = { corpus: null, repeat: 3, json: false, out: null, concurrency: null, serve: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--corpus") args.corpus = argv[++i];
    else if (a === "--repeat") args.repeat = Number.parseInt(argv[++i], 10);
    else if (a === "--json") args.json = true;
    else if (a === "--out") args.out = argv[++i];
    else if (a === "--concurrency") args.concurrency = Number.parseInt(argv[++i], 10);
    else if (a === "--serve") args.serve = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.corpus && !args.serve) throw new Error("--corpus DIR is required");
  if (!(args.repeat >= 1)) throw new Error("--repeat must be >= 1");
  return args;
}

const LADDER = [320, 640, 1024, 1600, 2048];

// The sides the ladder needs for an upright width x height: a side at or above the
// long edge gives the original size, so only the first such side is kept.
function ladderSides(width, height) {
  const longest = Math.max(width, height);
  const sides = LADDER.filter((side) => side < longest);
  if (sides.length < LADDER.length) sides.push(Math.min(longest, LADDER[LADDER.length - 1]));
  return sides;
}

async function processOnce(input) {
  const image = sharp(input, { failOn: "error" });
  const meta = await image.metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const sides = ladderSides(swap ? meta.height : meta.width, swap ? meta.width : meta.height);
  const rung = (side) =>
    image
      .clone()
      .autoOrient()
      .resize(side, side, { fit: "inside", withoutEnlargement: true })
      .webp({ quality: 85, effort: 4 })
      .toBuffer({ resolveWithObject: true });
  const thumb = image
    .clone()
    .autoOrient()
    .resize(400, 400, { fit: "cover", position: "centre" })
    .webp({ quality: 80, effort: 4 })
    .toBuffer();
  const [ladder, thumbnail] = await Promise.all([Promise.all(sides.map(rung)), thumb]);
  const renditions = ladder.map(({ data, info }) => ({ width: info.width, height: info.height, data }));
  return { renditions, webp: renditions[renditions.length - 1].data, thumb: thumbnail };
}

function sizes(result) {
  const renditions = result.renditions.map((r) => ({ width: r.width, height: r.height, bytes: r.data.length }));
  const ladderBytes = renditions.reduce((a, r) => a + r.bytes, 0);
  return {
    webpBytes: result.webp.length,
    thumbBytes: result.thumb.length,
    renditions,
    totalBytes: ladderBytes + result.thumb.length,
  };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function writeOutputs(outDir, file, result) {
  mkdirSync(outDir, { recursive: true });
  const stem = basename(file, extname(file));
  writeFileSync(join(outDir, `${stem}.webp`), result.webp);
  writeFileSync(join(outDir, `${stem}.thumb.webp`), result.thumb);
  for (const r of result.renditions) writeFileSync(join(outDir, `${stem}.${r.width}.webp`), r.data);
}

async function serve() {
  const inputs = new Map();
  const hello = {
    ready: true,
    versions: { sharp: sharp.versions.sharp, vips: sharp.versions.vips, webp: sharp.versions.webp },
    concurrency: sharp.concurrency(),
    threadpool: Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? "4", 10),
  };
  process.stdout.write(JSON.stringify(hello) + "\n");
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    if (!inputs.has(req.file)) {
      const input = readFileSync(req.file);
      await processOnce(input); // warm-up once per file
      inputs.set(req.file, input);
    }
    const t0 = performance.now();
    const result = await processOnce(inputs.get(req.file));
    const ms = performance.now() - t0;
    if (req.out) writeOutputs(req.out, req.file, result);
    const answer = { file: basename(req.file), ms, ...sizes(result) };
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.concurrency !== null) sharp.concurrency(args.concurrency);
  sharp.cache(false); // no result reuse between repeats
  if (args.serve) return serve();
  const files = readdirSync(args.corpus)
    .filter((f) => [".jpg", ".jpeg", ".png"].includes(extname(f).toLowerCase()))
    .sort();
  if (args.out) mkdirSync(args.out, { recursive: true });
  const images = [];
  for (const [n, file] of files.entries()) {
    const input = readFileSync(join(args.corpus, file));
    await processOnce(input); // warm-up
    const times = [];
    let last;
    for (let r = 0; r < args.repeat; r++) {
      const t0 = performance.now();
      last = await processOnce(input);
      times.push(performance.now() - t0);
      process.stderr.write(`\rsharp ${n + 1}/${files.length} ${file} run ${r + 1}/${args.repeat}   `);
    }
    if (args.out) writeOutputs(args.out, file, last);
    images.push({
      file,
      ms: Math.round(median(times) * 100) / 100,
      ...sizes(last),
    });
  }
  process.stderr.write("\n");
  if (args.json) {
    process.stdout.write(
      JSON.stringify({
        images,
        runner: "sharp",
        versions: { sharp: sharp.versions.sharp, vips: sharp.versions.vips, webp: sharp.versions.webp },
        concurrency: sharp.concurrency(),
        threadpool: Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? "4", 10),
      }) + "\n",
    );
  } else {
    console.log(`sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}, libwebp ${sharp.versions.webp}), concurrency ${sharp.concurrency()}`);
    console.log("file".padEnd(24) + "ms".padStart(10) + "webpBytes".padStart(12) + "thumbBytes".padStart(12) + "totalBytes".padStart(12));
    for (const im of images) {
      console.log(
        im.file.padEnd(24) +
          im.ms.toFixed(1).padStart(10) +
          String(im.webpBytes).padStart(12) +
          String(im.thumbBytes).padStart(12) +
          String(im.totalBytes).padStart(12),
      );
    }
    const total = images.reduce((a, im) => a + im.ms, 0);
    console.log("total".padEnd(24) + total.toFixed(1).padStart(10));
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
