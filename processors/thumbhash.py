"""ThumbHash (https://evanw.github.io/thumbhash/) and the dominant colour.

:func:`rgba_to_thumbhash` is a port of ``rgbaToThumbHash`` from the reference
``thumbhash.js`` (npm ``thumbhash`` 0.1.1): the same arithmetic and the same rounding
(JavaScript's ``Math.round`` rounds halves up, Python's ``round`` to even, hence
:func:`_js_round`) and the same order of float operations, so for the same pixels it
writes the same bytes (``tests/processors/test_processors_thumbhash.py`` runs the
reference on the same pixels with node). Order matters: in flat or symmetric areas an
AC factor is 0 up to rounding, lands on 7.5 after scaling and rounds to 7 or 8 by the
last bit of the sum, so the DCT sums are the reference's plain left-to-right additions
(``functools.reduce``; Python's ``sum`` of floats is compensated since 3.12), done with
``map`` over whole channels: 10-20 ms for a 100x63 image.

Pure Python over bytes: no Pillow import here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from functools import reduce
from operator import add, mul
from typing import Final

#: The reference refuses anything larger; its README resizes to fit 100x100 first.
MAX_SIDE: Final = 100


def _js_round(v: float) -> int:
    """JavaScript's Math.round: halves go up (towards +infinity)."""
    return math.floor(v + 0.5)


#: How close to a rounding boundary (x.5) a fast-path value may come before the exact
#: path is taken: the two sums differ by about 1e-13 for 10,000 pixels.
_TIE_MARGIN: Final = 1e-7


class _NearTie(Exception):
    """A value the fast sums put within _TIE_MARGIN of a rounding boundary."""


def _fast_channel(channel: Sequence[float], w: int, h: int, nx: int, ny: int) -> list[tuple[int, int, float]]:
    """(cx, cy, f) for each factor, with separable sums (a row pass, then a column pass)."""
    rows = [channel[y * w : (y + 1) * w] for y in range(h)]
    sums_by_cx: dict[int, list[float]] = {}
    out = []
    for cy in range(ny):
        fy = [math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)]
        cx = 0
        while cx * ny < nx * (ny - cy):
            if cx not in sums_by_cx:
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                sums_by_cx[cx] = [sum(map(mul, row, fx)) for row in rows]
            out.append((cx, cy, sum(map(mul, sums_by_cx[cx], fy)) / (w * h)))
            cx += 1
    return out


def _exact_channel(channel: Sequence[float], w: int, h: int, nx: int, ny: int) -> list[tuple[int, int, float]]:
    """The same factors with the reference's order of operations: (value * fx) * fy added
    up in pixel order with plain float additions (Python's ``sum`` compensates)."""
    out = []
    fx_by_cx: dict[int, list[float]] = {}
    for cy in range(ny):
        fy = [math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)]
        fy_tiled = [f for f in fy for _ in range(w)]
        cx = 0
        while cx * ny < nx * (ny - cy):
            fx_tiled = fx_by_cx.get(cx)
            if fx_tiled is None:
                fx_tiled = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)] * h
                fx_by_cx[cx] = fx_tiled
            out.append((cx, cy, reduce(add, map(mul, map(mul, channel, fx_tiled), fy_tiled), 0.0) / (w * h)))
            cx += 1
    return out


def _encode_channel(factors: list[tuple[int, int, float]]) -> tuple[float, list[float], float]:
    dc, scale = 0.0, 0.0
    ac: list[float] = []
    for cx, cy, f in factors:
        if cx or cy:
            ac.append(f)
            scale = max(scale, abs(f))
        else:
            dc = f
    if scale:
        ac = [0.5 + 0.5 / scale * v for v in ac]
    return dc, ac, scale


def _lpqa(
    n: int, reds: bytes, greens: bytes, blues: bytes, alphas: bytes
) -> tuple[list[float], list[float], list[float], list[float], bool]:
    """The reference's average colour and LPQA conversion, pixel by pixel (with alpha)."""
    avg_r = avg_g = avg_b = avg_a = 0.0
    for r, g, b, a in zip(reds, greens, blues, alphas, strict=True):
        alpha = a / 255
        avg_r += alpha / 255 * r
        avg_g += alpha / 255 * g
        avg_b += alpha / 255 * b
        avg_a += alpha
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a
    lum: list[float] = [0.0] * n
    p: list[float] = [0.0] * n
    q: list[float] = [0.0] * n
    av: list[float] = [0.0] * n
    for i, (r8, g8, b8, a8) in enumerate(zip(reds, greens, blues, alphas, strict=True)):
        alpha = a8 / 255
        rf = avg_r * (1 - alpha) + alpha / 255 * r8
        gf = avg_g * (1 - alpha) + alpha / 255 * g8
        bf = avg_b * (1 - alpha) + alpha / 255 * b8
        lum[i] = (rf + gf + bf) / 3
        p[i] = (rf + gf) / 2 - bf
        q[i] = rf - gf
        av[i] = alpha
    return lum, p, q, av, avg_a < n


def rgba_to_thumbhash(w: int, h: int, rgba: bytes) -> bytes:
    """The ThumbHash of a w x h RGBA image (not premultiplied), w and h <= 100."""
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"{w}x{h} doesn't fit in 100x100")
    if len(rgba) != w * h * 4:
        raise ValueError("rgba must hold w * h * 4 bytes")
    n = w * h
    reds, greens, blues, alphas = rgba[0::4], rgba[1::4], rgba[2::4], rgba[3::4]
    if alphas.count(255) == n:
        # Opaque (most photos): alpha is 1.0, so the reference's "composite atop the
        # average" is exactly c / 255 (avg * 0.0 + x == x, the average is not needed) and
        # the per-pixel work can run as comprehensions over a table of the same products.
        table = [1 / 255 * v for v in range(256)]
        rs, gs, bs = [table[v] for v in reds], [table[v] for v in greens], [table[v] for v in blues]
        has_alpha = False
        lum = [(r + g + b) / 3 for r, g, b in zip(rs, gs, bs, strict=True)]
        p = [(r + g) / 2 - b for r, g, b in zip(rs, gs, bs, strict=True)]
        q = [r - g for r, g in zip(rs, gs, strict=True)]
        av = [1.0] * n
    else:
        lum, p, q, av, has_alpha = _lpqa(n, reds, greens, blues, alphas)
    l_limit = 5 if has_alpha else 7
    lx = max(1, _js_round(l_limit * w / max(w, h)))
    ly = max(1, _js_round(l_limit * h / max(w, h)))

    try:
        return _pack(w, h, lx, ly, has_alpha, lum, p, q, av, _fast_channel, guard=True)
    except _NearTie:
        return _pack(w, h, lx, ly, has_alpha, lum, p, q, av, _exact_channel, guard=False)


def _pack(
    w: int,
    h: int,
    lx: int,
    ly: int,
    has_alpha: bool,
    lum: list[float],
    p: list[float],
    q: list[float],
    av: list[float],
    factors: Callable[[Sequence[float], int, int, int, int], list[tuple[int, int, float]]],
    *,
    guard: bool,
) -> bytes:
    def rnd(v: float) -> int:
        if guard and abs(v - math.floor(v) - 0.5) < _TIE_MARGIN:
            raise _NearTie
        return _js_round(v)

    l_dc, l_ac, l_scale = _encode_channel(factors(lum, w, h, max(3, lx), max(3, ly)))
    p_dc, p_ac, p_scale = _encode_channel(factors(p, w, h, 3, 3))
    q_dc, q_ac, q_scale = _encode_channel(factors(q, w, h, 3, 3))
    a_dc, a_ac, a_scale = _encode_channel(factors(av, w, h, 5, 5)) if has_alpha else (0.0, [], 0.0)

    is_landscape = w > h
    header24 = (
        rnd(63 * l_dc)
        | (rnd(31.5 + 31.5 * p_dc) << 6)
        | (rnd(31.5 + 31.5 * q_dc) << 12)
        | (rnd(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if is_landscape else lx) | (rnd(63 * p_scale) << 3) | (rnd(63 * q_scale) << 9) | (int(is_landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        out.append(rnd(15 * a_dc) | (rnd(15 * a_scale) << 4))
    start = len(out)
    varying = [*l_ac, *p_ac, *q_ac, *a_ac]
    out.extend([0] * ((len(varying) + 1) // 2))
    for index, f in enumerate(varying):
        out[start + (index >> 1)] |= rnd(15 * f) << ((index & 1) << 2)
    return bytes(out)


def thumbhash_base64(w: int, h: int, rgba: bytes) -> str:
    """:func:`rgba_to_thumbhash` as standard base64 (what API.md's ``thumbhash`` carries)."""
    return base64.b64encode(rgba_to_thumbhash(w, h, rgba)).decode("ascii")
