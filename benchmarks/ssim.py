"""SSIM of a rendition against a float Lanczos-3 reference (numpy only).

The reference is what an ideal pipeline would show: the *full* decode (no DCT
scaling), EXIF-oriented, converted to sRGB, taken to luma (BT.601, in float),
and resized with a separable Lanczos-3 filter in float64 to the rendition's
size. SSIM uses an 11-tap Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
L = 255, on luma, averaged over the valid (un-padded) area, as in Wang et al.

Usage as a script: ``python -m benchmarks.ssim SOURCE RENDITION.webp [...]``.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms, ImageOps

Array = npt.NDArray[np.float64]

_LUMA = np.array([0.299, 0.587, 0.114])


def luma(im: Image.Image) -> Array:
    """BT.601 luma of an image, in float64 (alpha composited onto white)."""
    if im.mode in ("RGBA", "LA") or im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    out: Array = rgb @ _LUMA
    return out


def full_decode(data: bytes) -> Image.Image:
    """The whole picture at full size: oriented and in sRGB."""
    opened = Image.open(io.BytesIO(data))
    opened.load()
    icc = opened.info.get("icc_profile")
    im: Image.Image = opened
    im = ImageOps.exif_transpose(im)
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            mode = "RGB" if im.mode in ("RGB", "CMYK", "L") else im.mode
            converted = ImageCms.profileToProfile(im, src, srgb, outputMode=mode)
            if converted is not None:
                im = converted
        except ImageCms.PyCMSError:
            pass
    return im


def _lanczos3(x: Array) -> Array:
    out = np.sinc(x) * np.sinc(x / 3.0)
    out[np.abs(x) >= 3.0] = 0.0
    return out


def _resample_axis(a: Array, out_len: int, axis: int) -> Array:
    """Antialiased Lanczos-3 along one axis (pixel centres aligned, like Pillow)."""
    in_len = a.shape[axis]
    if in_len == out_len:
        return a
    scale = in_len / out_len
    filter_scale = max(scale, 1.0)
    support = 3.0 * filter_scale
    centres = (np.arange(out_len) + 0.5) * scale
    first = np.floor(centres - support).astype(np.int64)
    taps = math.ceil(2 * support) + 2
    idx = first[:, None] + np.arange(taps)[None, :]
    weights = _lanczos3((idx + 0.5 - centres[:, None]) / filter_scale)
    weights[(idx < 0) | (idx >= in_len)] = 0.0  # truncate and renormalise
    weights /= weights.sum(axis=1, keepdims=True)
    idx = np.clip(idx, 0, in_len - 1)
    moved = np.moveaxis(a, axis, 0)
    out = np.zeros((out_len, *moved.shape[1:]), dtype=np.float64)
    for k in range(taps):
        w = weights[:, k].reshape((out_len, *([1] * (moved.ndim - 1))))
        out += w * moved[idx[:, k]]
    return np.moveaxis(out, 0, axis)


def lanczos_resize(a: Array, width: int, height: int) -> Array:
    """Resize a float (H, W) array to (height, width) with Lanczos-3."""
    return _resample_axis(_resample_axis(a, width, 1), height, 0)


def _gaussian_blur(a: Array, sigma: float = 1.5, size: int = 11) -> Array:
    """'Valid' separable Gaussian filtering (no padding)."""
    half = size // 2
    k = np.exp(-((np.arange(size) - half) ** 2) / (2 * sigma * sigma))
    k /= k.sum()
    h, w = a.shape
    rows = sum(k[i] * a[:, i : w - size + 1 + i] for i in range(size))
    assert isinstance(rows, np.ndarray)
    cols = sum(k[i] * rows[i : h - size + 1 + i, :] for i in range(size))
    assert isinstance(cols, np.ndarray)
    return cols


def ssim(x: Array, y: Array, data_range: float = 255.0) -> float:
    """Mean SSIM of two equally sized float luma arrays."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    if min(x.shape) < 11:
        return float("nan")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)
    sxx = _gaussian_blur(x * x) - mu_x * mu_x
    syy = _gaussian_blur(y * y) - mu_y * mu_y
    sxy = _gaussian_blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


class Reference:
    """Float Lanczos references of one source, cached per output size."""

    def __init__(self, source: bytes) -> None:
        self._luma = luma(full_decode(source))
        self._cache: dict[tuple[int, int], Array] = {}

    def at(self, width: int, height: int) -> Array:
        key = (width, height)
        if key not in self._cache:
            self._cache[key] = lanczos_resize(self._luma, width, height)
        return self._cache[key]

    def ssim_of(self, rendition: bytes) -> float:
        """SSIM of an encoded rendition against the reference at its size."""
        with Image.open(io.BytesIO(rendition)) as im:
            im.load()
            return ssim(self.at(*im.size), luma(im))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    ref = Reference(Path(argv[0]).read_bytes())
    for path in argv[1:]:
        print(f"{path}\t{ref.ssim_of(Path(path).read_bytes()):.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
