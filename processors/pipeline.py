"""The processing pipeline: validate, decode, orient, sRGB, resize, encode.

Geometry is computed once, in the coordinates the pixels are *stored* in.
Resizing happens before the EXIF transpose and before the colour transform,
so both of those only ever touch the (much smaller) outputs; the centre cover
crop of the thumbnail is symmetric under every EXIF orientation, which is why
this order gives the same pictures as "orient first, then resize".
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Final, cast

from PIL import Image, ImageFile

from processors import colour, heif, structure
from processors.phash import PHASH_SIDE, phash_from_grey
from processors.sniff import sniff_format, webp_canvas_size
from processors.thumbhash import thumbhash_base64
from processors.types import EncodedImage, ImageRejected, Limits, ProcessedImage

#: Decoders Pillow may use. Nothing outside this list is ever tried, and for one upload
#: only the decoder of the format its bytes were sniffed as.
ALLOWED_FORMATS: Final[tuple[str, ...]] = ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF")
#: Decoded by plugins that are imported on the first such upload (processors/heif.py).
_PLUGIN_FORMATS: Final = frozenset({"HEIF", "AVIF"})

#: The responsive ladder (API.md v1.1): each rendition fits inside S x S, smallest first.
LADDER: Final[tuple[int, ...]] = (320, 640, 1024, 1600, 2048)
RENDITION_MAX_SIDE: Final = LADDER[-1]
RENDITION_QUALITY: Final = 85
#: AVIF renditions (off unless asked for): libavif (aom) quality and speed, chosen with the
#: measurements in docs/benchmarks.md ("AVIF renditions"): q70 is where AVIF's SSIM meets
#: WebP q85's on textured photos (0.80-0.85x the bytes); speed 9 and 10 give the same
#: bytes at q70, speed 8 took 4x the time.
AVIF_QUALITY: Final = 70
AVIF_SPEED: Final = 10
#: ThumbHash input: the smallest rendition fitted in 100 x 100 (the reference's limit).
THUMBHASH_SIDE: Final = 100
THUMBNAIL_SIDE: Final = 400
THUMBNAIL_QUALITY: Final = 80
PLACEHOLDER_MAX_CHARS: Final = 1024
PLACEHOLDER_PREFIX: Final = "data:image/webp;base64,"
#: (longest side, quality) tried in order until the data URI fits.
_PLACEHOLDER_STEPS: Final[tuple[tuple[int, int], ...]] = (
    (32, 50),
    (24, 40),
    (16, 30),
    (8, 20),
    (4, 10),
    (1, 10),
)

#: What Pillow calls an MPO (multi-picture JPEG from many phones) is a JPEG to us.
_FORMAT_ALIASES: Final[dict[str, str]] = {"MPO": "JPEG"}

_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG: Final = 0x0112

_LANCZOS: Final = Image.Resampling.LANCZOS

#: Bytes Pillow hands a decoder per call (its default is 64 KiB). Each call returns to
#: Python, where the deadline is checked: at 4 KiB a 10 MiB file is 2,560 calls (a few
#: ms in all), and the work between two checks stays small for anything the structure
#: limits let through (docs/reliability.md).
DECODE_BLOCK: Final = 4096

#: Structure checks per sniffed format (WebP needs none: libwebp demuxes frames in C and
#: decodes only the first; 200,000 frames in 9 MiB take 0.25 s).
_STRUCTURE_CHECKS: Final[dict[str, Callable[[bytes], None]]] = {
    "JPEG": structure.check_jpeg,
    "PNG": structure.check_png,
    "GIF": structure.check_gif,
}

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One small worker pool, created on first use (never at import)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webp-encode")
    return _executor


def _too_large_pixels(width: int, height: int, limits: Limits) -> ImageRejected:
    megapixels = limits.max_pixels / 1_000_000
    return ImageRejected(
        "image_too_large",
        f"The image is {width}x{height} pixels; images may have at most "
        f"{megapixels:g} megapixels. Resize it and upload it again.",
    )


def _bomb() -> ImageRejected:
    """Pillow's own pixel limit tripped (a header our sniffing could not size)."""
    return ImageRejected("image_too_large", "The image has too many pixels. Resize it and upload it again.")


def _corrupt() -> ImageRejected:
    return ImageRejected(
        "corrupt_image",
        "The image file is damaged or incomplete and cannot be read. Export or save it again and upload the new file.",
    )


def _unsupported() -> ImageRejected:
    return ImageRejected(
        "unsupported_format",
        "This file is not a supported image. Upload a JPEG, PNG, WebP, GIF, HEIC or AVIF image.",
    )


def _timeout(seconds: float) -> ImageRejected:
    return ImageRejected(
        "processing_timeout",
        f"Processing the image took longer than {seconds:g} seconds, far longer than a photo of this size "
        "takes. Open it in an image editor, save or export it again, and upload the new file.",
    )


class _Deadline:
    """The end of the time ``Limits.max_seconds`` allows, on the monotonic clock."""

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if self._end is not None and time.monotonic() > self._end:
            assert self._seconds is not None
            raise _timeout(self._seconds)


class _DeadlineReader(io.BytesIO):
    """The file Pillow reads: every read checks the deadline first.

    Pillow's ``ImageFile.load`` feeds the decoder ``decodermaxblock`` bytes at a time
    through ``read``, so a decode that runs past the deadline stops at the next chunk.
    """

    def __init__(self, data: bytes, deadline: _Deadline) -> None:
        super().__init__(data)
        self._deadline = deadline

    def read(self, size: int | None = -1, /) -> bytes:
        self._deadline.check()
        return super().read(size)


def _check_bytes(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_bytes:
        mib = limits.max_bytes / (1024 * 1024)
        raise ImageRejected(
            "image_too_large",
            f"The file is larger than {mib:g} MiB. Upload a smaller file.",
        )
    if not data:
        raise ImageRejected("corrupt_image", "The file is empty. Upload the image again.")


def _open(data: bytes, limits: Limits, deadline: _Deadline) -> tuple[ImageFile.ImageFile, str, bytes | None]:
    """Check the structure, open (header only) with the sniffed format's decoder only and
    check the pixel limit. Returns the image, its format and the ICC profile its pixels
    are in (embedded, or made from a HEIF/AVIF nclx colour description; None: sRGB)."""
    sniffed = sniff_format(data)
    if sniffed is None:
        raise _unsupported()
    check_structure = _STRUCTURE_CHECKS.get(sniffed)
    if check_structure is not None:
        check_structure(data)
    nclx_icc: bytes | None = None
    if sniffed in _PLUGIN_FORMATS:
        container = heif.check_structure(data, limits.max_pixels)
        if container.nclx is not None and not container.has_icc:
            nclx_icc = heif.nclx_icc(*container.nclx)
        heif.register_plugins()
    if sniffed == "WEBP":
        # Pillow's WebP opener allocates the whole canvas, so check first.
        canvas = webp_canvas_size(data)
        if canvas is None:
            raise _corrupt()
        if canvas[0] * canvas[1] > limits.max_pixels:
            raise _too_large_pixels(*canvas, limits)
    try:
        im = Image.open(_DeadlineReader(data, deadline), formats=(sniffed,))
    except Image.DecompressionBombError:
        raise _bomb() from None
    except (MemoryError, ImageRejected):
        raise
    except Exception:
        # The bytes look like an accepted format but its header is unreadable.
        raise _corrupt() from None
    width, height = im.size
    if width < 1 or height < 1:
        raise _corrupt()
    if width * height > limits.max_pixels:
        raise _too_large_pixels(width, height, limits)
    fmt = _FORMAT_ALIASES.get(im.format or "", im.format or "")
    if fmt not in ALLOWED_FORMATS or fmt != sniffed:
        # An allow-listed opener claimed bytes that do not start like that format.
        raise _unsupported()
    icc = im.info.get("icc_profile")
    return im, fmt, bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else nclx_icc


def _exif_block(im: Image.Image) -> bytes:
    """The EXIF bytes ``getexif`` would load (b"" when there are none)."""
    exif = im.info.get("exif")
    if isinstance(exif, bytes):
        return exif
    raw = im.info.get("Raw profile type exif")  # PNG text chunk, hex
    if isinstance(raw, str):
        try:
            return bytes.fromhex("".join(raw.split("\n")[3:]))
        except ValueError:
            return b""
    return b""


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1..8; anything unreadable counts as 1 (as stored).

    An EXIF block whose entries would make Pillow copy more than
    ``structure.MAX_EXIF_IFD_BYTES`` (entries pointing at one large region, again and
    again) counts as unreadable: reading it costs memory, not just time.
    """
    if structure.exif_ifd0_bytes(_exif_block(im)) > structure.MAX_EXIF_IFD_BYTES:
        return 1
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except MemoryError:
        raise
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _fit_inside(width: int, height: int, side: int) -> tuple[int, int]:
    """Size that fits in side x side keeping the aspect ratio, never enlarged."""
    longest = max(width, height)
    if longest <= side:
        return width, height
    scale = side / longest
    if width >= height:
        return side, max(1, round(height * scale))
    return max(1, round(width * scale)), side


def _load(im: ImageFile.ImageFile) -> None:
    # Guards a global misconfiguration elsewhere in the process.
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # pragma: no cover
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    im.decodermaxblock = DECODE_BLOCK
    try:
        im.load()
    except Image.DecompressionBombError:
        raise _bomb() from None
    except (MemoryError, ImageRejected):  # ImageRejected: the deadline, from a read
        raise
    except Exception:
        # OSError (truncated), SyntaxError (broken chunks), ValueError, EOFError,
        # struct.error, ...: every decoder failure on these bytes means bad bytes.
        raise _corrupt() from None


def _timed(timings: dict[str, float], name: str, start: float) -> float:
    now = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + (now - start) * 1000.0
    return now


@dataclass(frozen=True)
class Tuning:
    """Speed levers. The defaults are what production uses; the benchmark
    (scripts/bench_processing.py) flips them one at a time to measure each.
    None of them changes what the outputs are, only how fast and how well."""

    #: libwebp ``method`` (0 fastest .. 6 smallest). 2 is the knee: see
    #: docs/benchmarks.md (4 costs about twice the time for ~2% fewer bytes).
    webp_method: int = 2
    #: The thumbnail is small enough that libwebp's slower, smaller method costs a few
    #: milliseconds, in the worker thread: it keeps thumbnail bytes at sharp's.
    thumbnail_webp_method: int = 4
    #: Let libjpeg-turbo decode JPEGs at 1/2, 1/4 or 1/8 scale when that still
    #: covers the outputs.
    jpeg_draft: bool = True
    #: Pillow's ``reducing_gap`` for the Lanczos resizes (None = exact).
    reducing_gap: float | None = 3.0
    #: Make the thumbnail from the rendition, not from the decoded source,
    #: whenever the rendition is big enough (it always is unless panoramic).
    thumbnail_from_rendition: bool = True
    #: Encode in two lanes, the worker thread and this one (Pillow releases the GIL in
    #: resize and encode): the largest rendition goes to the worker at once, the other
    #: outputs are shared between the lanes by their estimated cost.
    concurrent: bool = True
    #: Make each smaller rung of the ladder from the next larger one (not from the
    #: decode): SSIM against a resize from the source is >= 0.998 (docs/benchmarks.md).
    ladder_cascade: bool = True
    #: libwebp ``method`` for the rungs below the largest. 4 would cost 2.5x the encode
    #: time of 2 for 1-2 % fewer bytes and +0.002 SSIM (docs/benchmarks.md): 2, like the
    #: largest.
    small_webp_method: int = 2


DEFAULT_TUNING: Final = Tuning()


def _encode(im: Image.Image, quality: int, method: int) -> bytes:
    out = io.BytesIO()
    # Only the pixels: Pillow writes ICC/EXIF/XMP to WebP only when asked.
    im.save(out, format="WEBP", quality=quality, method=method)
    return out.getvalue()


def _encode_avif(im: Image.Image) -> bytes:
    heif.register_plugins()
    out = io.BytesIO()
    # The plugin falls back to im.info for exif/xmp/icc_profile (which Image.convert and
    # resize carry over from the upload) and writes an EXIF orientation as irot/imir,
    # which would rotate the upright pixels again: say "none" for each. One thread per
    # encode: the pipeline runs two lanes of its own. A copy: Image.save keeps its
    # parameters on the Image object (encoderinfo) while it runs, and the other lane may
    # be saving the same rung as WebP at that moment (the AVIF then got q85: 3x the bytes).
    im = im.copy()
    im.info.clear()
    im.save(
        out, format="AVIF", quality=AVIF_QUALITY, speed=AVIF_SPEED, exif=b"", xmp=b"", icc_profile=b"", max_threads=1
    )
    return out.getvalue()


def ladder_sizes(width: int, height: int) -> tuple[tuple[int, int], ...]:
    """The ladder's sizes for an image, smallest first, duplicates collapsed.

    Sizes at or above the long edge all give the original size, so they become one rung.
    """
    sizes: list[tuple[int, int]] = []
    for side in LADDER:
        size = _fit_inside(width, height, side)
        if size not in sizes:
            sizes.append(size)
    return tuple(sizes)


def _dominant_color(im: Image.Image) -> str:
    """The most common colour of a small sRGB image, as #rrggbb (median cut to 8 colours;
    transparent pixels do not count)."""
    rgb = im.convert("RGB")
    quantized = rgb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    mask = im.getchannel("A").point(lambda a: 255 if a >= 128 else 0) if im.mode == "RGBA" else None
    counts = quantized.histogram(mask=mask)
    palette = quantized.getpalette() or [0, 0, 0]
    best = max(range(len(counts)), key=counts.__getitem__) if any(counts) else 0
    r, g, b = palette[3 * best : 3 * best + 3]
    return f"#{r:02x}{g:02x}{b:02x}"


def _fingerprints(smallest: Image.Image) -> tuple[str, str, str, float, float]:
    """ThumbHash, dominant colour and perceptual hash of the upright sRGB picture, from
    the smallest rendition; and the ms the ThumbHash (with the colour) and the pHash took."""
    t0 = time.perf_counter()
    small = smallest.resize(_fit_inside(*smallest.size, THUMBHASH_SIDE), _LANCZOS)
    rgba = small.convert("RGBA")
    thumbhash = thumbhash_base64(rgba.width, rgba.height, rgba.tobytes())
    dominant = _dominant_color(small)
    t1 = time.perf_counter()
    grey = smallest.convert("L").resize((PHASH_SIDE, PHASH_SIDE), _LANCZOS)
    phash = phash_from_grey(grey.tobytes())
    t2 = time.perf_counter()
    return thumbhash, dominant, phash, (t1 - t0) * 1000.0, (t2 - t1) * 1000.0


def _placeholder(
    source: Image.Image,
    finish: Callable[[Image.Image], Image.Image],
    method: int,
) -> str:
    """A tiny blurred WebP of the whole picture as a data URI.

    ``source`` is the rendition in stored coordinates and working mode;
    ``finish`` turns the tiny image into upright sRGB.
    """
    from PIL import ImageFilter

    for side, quality in _PLACEHOLDER_STEPS:
        width, height = _fit_inside(*source.size, side)
        small = source.resize((width, height), Image.Resampling.BOX, reducing_gap=2.0)
        small = finish(small)
        if min(width, height) >= 4:
            small = small.filter(ImageFilter.GaussianBlur(radius=0.6))
        encoded = base64.b64encode(_encode(small, quality, method)).decode("ascii")
        uri = PLACEHOLDER_PREFIX + encoded
        if len(uri) <= PLACEHOLDER_MAX_CHARS:
            return uri
    raise AssertionError("a 1x1 WebP always fits")  # pragma: no cover


_Box = tuple[float, float, float, float]


def _centre_square(box: _Box) -> _Box:
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return (cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)


@dataclass
class _Job:
    """One output to encode, with its estimated cost (pixels x format factor)."""

    name: str
    run: Callable[[], object]
    cost: float


def _run_jobs(jobs: list[_Job], timings: dict[str, float]) -> dict[str, object]:
    results: dict[str, object] = {}
    for job in jobs:
        t0 = time.perf_counter()
        results[job.name] = job.run()
        step = job.name.split(":")[0]
        timings[step] = timings.get(step, 0.0) + (time.perf_counter() - t0) * 1000.0
    return results


#: Relative encode cost per pixel (WebP method 2 = 1), measured on the corpus
#: (tests/processors/bench_ladder.py): method 4 about 2.5, AVIF (q70, speed 10) about 1.5.
_COST_WEBP_SLOW: Final = 2.5
_COST_AVIF: Final = 1.5
#: A Lanczos resize per output pixel; the placeholder and the ThumbHash, colour and pHash
#: (fixed: they work on <= 320 px images), in the same pixel-of-WebP units.
_COST_RESIZE: Final = 0.33
_COST_PLACEHOLDER: Final = 50_000.0
_COST_FINGERPRINTS: Final = 150_000.0


def process_image(
    data: bytes, limits: Limits, tuning: Tuning = DEFAULT_TUNING, *, avif: bool = False
) -> ProcessedImage:
    """See :func:`processors.process_image`; ``tuning`` is for benchmarks."""
    timings: dict[str, float] = {}
    start = t = time.perf_counter()
    deadline = _Deadline(limits.max_seconds)
    data = bytes(data)
    _check_bytes(data, limits)
    im, fmt, icc = _open(data, limits, deadline)
    raw_w, raw_h = im.size

    # HEIF: libheif has applied irot/imir and pillow-heif reset the EXIF orientation, so
    # there is nothing left to apply. AVIF: the plugin reports irot/imir as EXIF orientation.
    orientation = _orientation(im) if fmt in ("JPEG", "WEBP", "AVIF") else 1
    # Largest rendition's size in stored (raw) coordinates.
    rend_w, rend_h = _fit_inside(raw_w, raw_h, RENDITION_MAX_SIDE)

    box: tuple[float, float, float, float] = (0.0, 0.0, float(raw_w), float(raw_h))
    if fmt == "JPEG" and tuning.jpeg_draft:
        # Let libjpeg-turbo scale in the DCT (1/2, 1/4, 1/8) to the smallest
        # size that still covers the rendition and the thumbnail's crop.
        need_short = min(THUMBNAIL_SIDE, raw_w, raw_h)
        drafted = im.draft(im.mode, (max(rend_w, need_short), max(rend_h, need_short)))
        if drafted is not None:
            box = (0.0, 0.0, float(drafted[1][2]), float(drafted[1][3]))
    deadline.check()
    _load(im)
    if fmt == "PNG":
        orientation = _orientation(im)  # eXIf may follow the image data
    # A decoder may only ever shrink the canvas relative to the header.
    if im.size[0] * im.size[1] > limits.max_pixels:
        raise _too_large_pixels(*im.size, limits)
    base = colour.to_working_mode(im)
    t = _timed(timings, "decode", t)
    deadline.check()

    transpose = _TRANSPOSE.get(orientation)

    def finish(small: Image.Image) -> Image.Image:
        """Working mode + stored orientation -> upright sRGB."""
        small = colour.to_srgb(small, icc)
        return small if transpose is None else small.transpose(transpose)

    # --- largest rendition: resize in stored coordinates, then sRGB and upright ---
    gap = tuning.reducing_gap
    if (rend_w, rend_h) == base.size and box == (0.0, 0.0, *map(float, base.size)):
        largest = base
    else:
        largest = base.resize((rend_w, rend_h), _LANCZOS, box=box, reducing_gap=gap)
    top = finish(largest)
    t = _timed(timings, "resize", t)
    deadline.check()

    pool = _pool() if tuning.concurrent else None
    worker_jobs: list[_Job] = [
        _Job(
            f"encode:{top.width}x{top.height}",
            lambda: _encode(top, RENDITION_QUALITY, tuning.webp_method),
            top.width * top.height,
        )
    ]
    worker_timings: dict[str, float] = {}  # written by the worker thread only, read after it is done
    first_future = pool.submit(_run_jobs, worker_jobs, worker_timings) if pool is not None else None

    # --- the rest of the ladder, smallest-but-one up to the top, from one decode ---
    sizes = ladder_sizes(top.width, top.height)  # upright; the last one is top's size
    rungs: dict[tuple[int, int], Image.Image] = {top.size: top}
    previous = top
    for size in reversed(sizes[:-1]):
        if tuning.ladder_cascade:
            rung = previous.resize(size, _LANCZOS, reducing_gap=gap)
        else:
            rung = finish(base.resize(_stored(size, orientation), _LANCZOS, box=box, reducing_gap=gap))
        rungs[size] = rung
        previous = rung
    smallest = rungs[sizes[0]]
    t = _timed(timings, "ladder", t)
    deadline.check()

    # --- the thumbnail: centre square of the largest rendition (or of the decode) ---
    if tuning.thumbnail_from_rendition and (min(rend_w, rend_h) >= THUMBNAIL_SIDE or largest is base):
        thumb_src, thumb_box, thumb_finish = top, (0.0, 0.0, float(top.width), float(top.height)), None
    else:
        thumb_src, thumb_box, thumb_finish = base, box, finish

    def thumbnail() -> bytes:
        thumb = thumb_src.resize(
            (THUMBNAIL_SIDE, THUMBNAIL_SIDE), _LANCZOS, box=_centre_square(thumb_box), reducing_gap=gap
        )
        if thumb_finish is not None:
            thumb = thumb_finish(thumb)
        return _encode(thumb, THUMBNAIL_QUALITY, tuning.thumbnail_webp_method)

    small_method = tuning.small_webp_method
    slow = _COST_WEBP_SLOW if small_method > tuning.webp_method else 1.0
    jobs: list[_Job] = [
        _Job("thumbnail", thumbnail, THUMBNAIL_SIDE * THUMBNAIL_SIDE * _COST_WEBP_SLOW),
        _Job("placeholder", lambda: _placeholder(smallest, lambda i: i, tuning.webp_method), _COST_PLACEHOLDER),
        _Job("fingerprints", lambda: _fingerprints(smallest), _COST_FINGERPRINTS),
    ]
    for w, h in sizes[:-1]:
        encode = partial(_encode, rungs[w, h], RENDITION_QUALITY, small_method)
        jobs.append(_Job(f"encode:{w}x{h}", encode, w * h * slow))
    if avif:
        for w, h in sizes:
            jobs.append(_Job(f"avif:{w}x{h}", partial(_encode_avif, rungs[w, h]), w * h * _COST_AVIF))

    # Longest job first into the lane with less work so far (the worker starts with `top`).
    lanes: tuple[list[_Job], list[_Job]] = ([], [])
    # This thread already spent the ladder's resizes while the worker encoded.
    loads = [worker_jobs[0].cost, _COST_RESIZE * sum(w * h for w, h in sizes[:-1])]
    for job in sorted(jobs, key=lambda j: j.cost, reverse=True):
        lane = 0 if pool is not None and loads[0] <= loads[1] else 1
        lanes[lane].append(job)
        loads[lane] += job.cost
    second_future = pool.submit(_run_jobs, lanes[0], worker_timings) if pool is not None and lanes[0] else None
    results = _run_jobs(lanes[1], timings)
    if first_future is None:
        results.update(_run_jobs(worker_jobs, timings))
    t = _timed(timings, "main_lane", t)
    for future in (first_future, second_future):
        if future is not None:
            results.update(future.result())
    for step, ms in worker_timings.items():
        timings[step] = timings.get(step, 0.0) + ms
    t = _timed(timings, "wait", t)
    deadline.check()

    fingerprints = cast(tuple[str, str, str, float, float], results["fingerprints"])
    thumbhash, dominant, phash, timings["thumbhash"], timings["phash"] = fingerprints
    timings.pop("fingerprints", None)
    webp = tuple(EncodedImage(cast(bytes, results[f"encode:{w}x{h}"]), w, h) for w, h in sizes)
    avifs = tuple(EncodedImage(cast(bytes, results[f"avif:{w}x{h}"]), w, h, "avif") for w, h in sizes) if avif else ()
    timings["total"] = (t - start) * 1000.0

    swap = orientation >= 5
    return ProcessedImage(
        rendition=webp[-1],
        thumbnail=EncodedImage(cast(bytes, results["thumbnail"]), THUMBNAIL_SIDE, THUMBNAIL_SIDE),
        placeholder=cast(str, results["placeholder"]),
        source_format=fmt,
        source_width=raw_h if swap else raw_w,
        source_height=raw_w if swap else raw_h,
        timings_ms=timings,
        renditions=webp + avifs,
        thumbhash=thumbhash,
        dominant_color=dominant,
        perceptual_hash=phash,
    )


def _stored(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """An upright size in stored coordinates."""
    return (size[1], size[0]) if orientation >= 5 else size
