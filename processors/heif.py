"""HEIF (HEIC) and AVIF: the container checks before decoding, the decoders, nclx colour.

Both formats are ISOBMFF files: a ``meta`` box lists *items* (coded images, a grid
that assembles tiles, Exif/XMP blocks, thumbnails, depth and gain maps), their
*properties* (size ``ispe``, colour ``colr``, rotation ``irot``, mirror ``imir``) and the
references between them (``dimg``: a grid's tiles). Nothing in the byte or pixel limit
bounds how many items or tiles a file lists, and every tile is a separate HEVC/AV1
decode, so :func:`check_structure` walks those boxes on the raw bytes first and
refuses what no camera writes (``image_too_complex``), the way ``structure.py`` does
for JPEG scans and PNG chunks.

The decoders are plugins (pillow-heif for HEIF, pillow-avif-plugin for AVIF), imported
and registered by :func:`register_plugins` on the first HEIF/AVIF upload only: a
process that never sees one never pays for them. pillow-heif applies ``irot``/``imir``
itself (libheif does, and resets the EXIF orientation to 1); pillow-avif-plugin does
not, it reports them as the EXIF orientation instead, which the pipeline applies.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from processors.types import ImageRejected

#: Items in a file (coded images, tiles, metadata blocks). An iPhone 48 MP HEIC holds about
#: 200 (a 512 px tile grid, its gain map grid, a thumbnail, Exif, XMP); libheif's own
#: default limit is 1,000.
MAX_HEIF_ITEMS: Final = 1_000
#: Tiles of the primary image's grid: each is a separate HEVC/AV1 decode. 50 MP in Apple's
#: 512 px tiles is 192; in 256 px tiles 763.
MAX_HEIF_TILES: Final = 1_024
#: Pixels decoded for the primary image, over all its tiles, as a multiple of the canvas
#: limit (tiles overhang the canvas by less than a tile; a grid whose tiles add up to far
#: more than its canvas is decode work with no picture).
MAX_TILE_AREA_FACTOR: Final = 2
#: Boxes walked inside ``meta`` (item infos, properties, references, associations).
MAX_HEIF_BOXES: Final = 20_000
#: Decoder threads: libheif decodes grid tiles in parallel; the processor Lambda has 1-2 vCPUs.
HEIF_DECODE_THREADS: Final = 2

_DERIVED: Final = frozenset({b"grid", b"iden", b"iovl"})


def _too_complex(what: str) -> ImageRejected:
    return ImageRejected(
        "image_too_complex",
        f"The image file has {what}, more than any camera or image editor writes, and would take "
        "too long to read. Open it in an image editor, save or export it again, and upload the new file.",
    )


@dataclass
class HeifInfo:
    """What the container says about the primary image (None where it does not say)."""

    items: int = 0
    primary: int | None = None
    primary_type: bytes = b""
    tiles: int = 0
    #: Item ids of the primary image's tiles (``dimg`` references of a grid).
    tile_ids: tuple[int, ...] = ()
    #: (colour_primaries, transfer_characteristics) of an ``nclx`` colr of the primary image.
    nclx: tuple[int, int] | None = None
    has_icc: bool = False
    #: Width and height (``ispe``) per item id.
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box in data[start:end]; stops where the structure is lost."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def parse(data: bytes) -> HeifInfo:
    """Read the item count, the primary item, its grid tiles, sizes and colour from ``meta``.

    Raises ``image_too_complex`` as soon as a count passes its limit; never judges
    validity (the decoder reports damage as ``corrupt_image``).
    """
    info = HeifInfo()
    meta = next(((s, e) for kind, s, e in _boxes(data, 0, len(data)) if kind == b"meta"), None)
    if meta is None:
        return info
    boxes = 0
    properties: list[tuple[bytes, int, int]] = []
    associations: dict[int, list[int]] = {}
    dimg: dict[int, list[int]] = {}
    item_types: dict[int, bytes] = {}

    def count() -> None:
        nonlocal boxes
        boxes += 1
        if boxes > MAX_HEIF_BOXES:
            raise _too_complex(f"more than {MAX_HEIF_BOXES} container boxes")

    # meta is a full box: 4 bytes of version and flags before its children.
    for kind, s, e in _boxes(data, meta[0] + 4, meta[1]):
        count()
        version = data[s] if s < e else 0
        if kind == b"pitm" and e - s >= 6:
            info.primary = struct.unpack_from(">H" if version == 0 else ">I", data, s + 4)[0]
        elif kind == b"iinf" and e - s >= 6:
            info.items = struct.unpack_from(">H", data, s + 4)[0] if version == 0 else 0
            if version != 0 and e - s >= 8:
                info.items = struct.unpack_from(">I", data, s + 4)[0]
            if info.items > MAX_HEIF_ITEMS:
                raise _too_complex(f"more than {MAX_HEIF_ITEMS} items")
            for ikind, i_s, i_e in _boxes(data, s + (6 if version == 0 else 8), e):
                count()
                if ikind == b"infe" and i_e - i_s >= 12 and data[i_s] >= 2:
                    if data[i_s] == 2:
                        item_id = struct.unpack_from(">H", data, i_s + 4)[0]
                        item_types[item_id] = data[i_s + 8 : i_s + 12]
                    elif i_e - i_s >= 14:
                        item_id = struct.unpack_from(">I", data, i_s + 4)[0]
                        item_types[item_id] = data[i_s + 10 : i_s + 14]
        elif kind == b"iref" and e - s >= 4:
            wide = version != 0
            for rkind, r_s, r_e in _boxes(data, s + 4, e):
                count()
                id_size = 4 if wide else 2
                if r_e - r_s < 2 * id_size + 2:
                    continue
                fmt = ">I" if wide else ">H"
                from_id = struct.unpack_from(fmt, data, r_s)[0]
                refs = struct.unpack_from(">H", data, r_s + id_size)[0]
                if rkind == b"dimg":
                    at = r_s + id_size + 2
                    to = [
                        struct.unpack_from(fmt, data, at + i * id_size)[0]
                        for i in range(min(refs, (r_e - at) // id_size))
                    ]
                    dimg.setdefault(from_id, []).extend(to)
        elif kind == b"iprp":
            for pkind, p_s, p_e in _boxes(data, s, e):
                count()
                if pkind == b"ipco":
                    for prop in _boxes(data, p_s, p_e):
                        count()
                        properties.append(prop)
                elif pkind == b"ipma" and p_e - p_s >= 8:
                    _read_ipma(data, p_s, p_e, associations, count)

    info.items = max(info.items, len(item_types))
    primary = info.primary
    if primary is None:
        return info
    info.primary_type = item_types.get(primary, b"")
    for item_id, indices in associations.items():
        for index in indices:
            if 1 <= index <= len(properties):
                kind, s, e = properties[index - 1]
                if kind == b"ispe" and e - s >= 12:
                    info.sizes[item_id] = struct.unpack_from(">II", data, s + 4)
                if item_id == primary and kind == b"colr" and e - s >= 4:
                    colour_type = data[s : s + 4]
                    if colour_type in (b"prof", b"rICC"):
                        info.has_icc = True
                    elif colour_type == b"nclx" and e - s >= 8 and info.nclx is None:
                        info.nclx = struct.unpack_from(">HH", data, s + 4)
    if info.primary_type in _DERIVED:
        info.tile_ids = tuple(dimg.get(primary, []))
        info.tiles = len(info.tile_ids)
        if info.tiles > MAX_HEIF_TILES:
            raise _too_complex(f"more than {MAX_HEIF_TILES} tiles in its picture")
    return info


def _read_ipma(data: bytes, s: int, e: int, out: dict[int, list[int]], count: Callable[[], None]) -> None:
    version, flags = data[s], int.from_bytes(data[s + 1 : s + 4], "big")
    entries = struct.unpack_from(">I", data, s + 4)[0]
    pos = s + 8
    id_size = 2 if version < 1 else 4
    index_size = 2 if flags & 1 else 1
    for _ in range(entries):
        if pos + id_size + 1 > e:
            return
        item_id = int.from_bytes(data[pos : pos + id_size], "big")
        n = data[pos + id_size]
        pos += id_size + 1
        if pos + n * index_size > e:
            return
        mask = 0x7FFF if index_size == 2 else 0x7F
        out.setdefault(item_id, []).extend(
            int.from_bytes(data[pos + i * index_size : pos + (i + 1) * index_size], "big") & mask for i in range(n)
        )
        pos += n * index_size
        count()


def check_structure(data: bytes, max_pixels: int) -> HeifInfo:
    """Refuse a HEIF/AVIF whose container lists more work than any camera writes."""
    info = parse(data)
    area = sum(w * h for w, h in (info.sizes.get(t, (0, 0)) for t in info.tile_ids))
    if area > MAX_TILE_AREA_FACTOR * max_pixels:
        raise _too_complex(f"{info.tiles} tiles adding up to {area / 1e6:.0f} megapixels")
    return info


# --- the decoders ------------------------------------------------------------------


@lru_cache(maxsize=1)
def register_plugins() -> None:
    """Import and register the HEIF and AVIF openers (once per process, on first use)."""
    import pillow_avif  # type: ignore[import-untyped]  # noqa: F401  (registers "AVIF" on import)
    import pillow_heif

    # Only the primary image is ever decoded: no embedded thumbnails (draft would pick one),
    # depth maps or auxiliary images (alpha stays: libheif attaches it to the image itself).
    pillow_heif.register_heif_opener(
        thumbnails=False, depth_images=False, aux_images=False, decode_threads=HEIF_DECODE_THREADS
    )
    # The security limits libheif applies by default (1,000 items, 32 extents per item,
    # images up to 32768 x 32768, 512 MB per allocation) stay on; check_structure applies
    # the tighter ones above before libheif sees the bytes.
    pillow_heif.options.DISABLE_SECURITY_LIMITS = False


# --- nclx colour -------------------------------------------------------------------

_Chroma = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]

#: ITU-T H.273 colour primaries: red, green, blue, white (x, y).
_PRIMARIES: Final[dict[int, _Chroma]] = {
    1: ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.3290)),  # BT.709 / sRGB
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), (0.3127, 0.3290)),  # BT.2020
    12: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290)),  # Display P3
}
#: H.273 transfer characteristics -> ICC parametric curve (type 3: g, a, b, c, d) or gamma.
_SRGB_CURVE: Final = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
_BT709_CURVE: Final = (1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081)
_TRANSFERS: Final[dict[int, tuple[float, ...]]] = {
    13: _SRGB_CURVE,
    1: _BT709_CURVE,
    6: _BT709_CURVE,
    14: _BT709_CURVE,
    15: _BT709_CURVE,
    4: (2.2,),
    5: (2.8,),
    8: (1.0,),
}
_D50: Final = (0.9642, 1.0, 0.8249)
_BRADFORD: Final = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))

_Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


def _mul(a: _Matrix, b: _Matrix) -> _Matrix:
    rows = [tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def _inv(m: _Matrix) -> _Matrix:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    rows = (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )
    return rows


def _xyz(x: float, y: float) -> tuple[float, float, float]:
    return (x / y, 1.0, (1 - x - y) / y)


def _primaries_d50(chroma: _Chroma) -> _Matrix:
    """RGB -> XYZ (D50, Bradford-adapted) columns, as an ICC matrix/TRC profile stores them."""
    r, g, b = (_xyz(*c) for c in chroma[:3])
    m: _Matrix = ((r[0], g[0], b[0]), (r[1], g[1], b[1]), (r[2], g[2], b[2]))
    white = _xyz(*chroma[3])
    s = [sum(_inv(m)[i][k] * white[k] for k in range(3)) for i in range(3)]
    rgb_to_xyz: _Matrix = tuple(tuple(m[i][j] * s[j] for j in range(3)) for i in range(3))  # type: ignore[assignment]
    src = [sum(_BRADFORD[i][k] * white[k] for k in range(3)) for i in range(3)]
    dst = [sum(_BRADFORD[i][k] * _D50[k] for k in range(3)) for i in range(3)]
    scale: _Matrix = ((dst[0] / src[0], 0, 0), (0, dst[1] / src[1], 0), (0, 0, dst[2] / src[2]))
    adapt = _mul(_inv(_BRADFORD), _mul(scale, _BRADFORD))
    return _mul(adapt, rgb_to_xyz)


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(values: tuple[float, ...]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in values)


def _curve(params: tuple[float, ...]) -> bytes:
    if len(params) == 1:
        return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(params[0] * 256)) + b"\0\0"
    return b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(_s15f16(p) for p in params)


def _desc(text: str) -> bytes:
    raw = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(raw)) + raw + b"\0" * 78


@lru_cache(maxsize=16)
def nclx_icc(primaries: int, transfer: int) -> bytes | None:
    """An ICC v2 matrix/TRC profile equivalent to an nclx colour description.

    None when the pixels are sRGB already (BT.709 primaries with the sRGB curve) or the
    description is one this does not convert (unspecified values; PQ/HLG HDR curves,
    which need tone mapping): those pixels are taken as sRGB.
    """
    chroma = _PRIMARIES.get(primaries)
    curve = _TRANSFERS.get(transfer)
    if chroma is None or curve is None or (primaries == 1 and transfer == 13):
        return None
    matrix = _primaries_d50(chroma)
    columns = [tuple(matrix[row][col] for row in range(3)) for col in range(3)]
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _desc(f"nclx {primaries}/{transfer}")),
        (b"wtpt", _xyz_tag(_D50)),
    ]
    for sig, column in zip((b"rXYZ", b"gXYZ", b"bXYZ"), columns, strict=True):
        tags.append((sig, _xyz_tag(column)))
    trc = _curve(curve)
    tags += [(b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    table = struct.pack(">I", len(tags))
    body = b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, blob in tags:
        blob += b"\0" * (-len(blob) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(blob))
        body += blob
    size = 128 + len(table) + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + b"\x02\x10\0\0mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + b"".join(_s15f16(v) for v in _D50)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + table + body
