"""Pixel modes and colour: everything becomes 8-bit sRGB (RGB or RGBA).

Two steps, so the expensive one runs on small images only:

* :func:`to_working_mode` (right after decoding) turns exotic modes (palette,
  16-bit, 1-bit, ...) into one Pillow can resize: ``L``, ``LA``, ``RGB``,
  ``RGBA`` or ``CMYK``. Pillow premultiplies alpha while resizing.
* :func:`to_srgb` (after resizing) applies the embedded ICC profile, if any,
  with LittleCMS and returns ``RGB`` or ``RGBA``.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Final

from PIL import Image, ImageCms

_WORKING_MODES: Final = frozenset({"L", "LA", "RGB", "RGBA", "CMYK"})
_SIXTEEN_BIT: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
#: ICC colour space signature each working mode needs from a profile.
_SPACE_FOR_MODE: Final = {"L": "GRAY", "RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK"}


def to_working_mode(im: Image.Image) -> Image.Image:
    """Return ``im`` in one of L, LA, RGB, RGBA, CMYK (alpha kept)."""
    mode = im.mode
    has_transparency_key = im.info.get("transparency") is not None
    if mode in _WORKING_MODES and not (has_transparency_key and mode in ("L", "RGB")):
        return im
    if mode in _SIXTEEN_BIT:
        # 16-bit grayscale: keep the high byte (scale 0..65535 to 0..255).
        wide = im if mode == "I" else im.convert("I")
        return wide.point(lambda v: v / 257.0).convert("L")
    if mode == "1":
        return im.convert("L")
    if mode == "RGBa":
        return im.convert("RGBA")
    if mode == "La":
        return im.convert("LA")
    if mode == "PA" or im.has_transparency_data:
        return im.convert("RGBA")
    return im.convert("RGB")


def _space(profile: ImageCms.ImageCmsProfile) -> str:
    return str(profile.profile.xcolor_space).strip()


@lru_cache(maxsize=32)
def _parsed(icc: bytes) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile, or None if it is unusable or already sRGB."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = str(profile.profile.profile_description or "")
    except Exception:
        return None  # a broken profile is ignored: the pixels are still usable
    if _space(profile) == "RGB" and description.lower().startswith("srgb"):
        return None  # converting sRGB to sRGB only costs time
    return profile


@lru_cache(maxsize=32)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=32)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform | None:
    profile = _parsed(icc)
    if profile is None or _space(profile) != _SPACE_FOR_MODE.get(in_mode):
        return None
    try:
        return ImageCms.buildTransform(profile, _srgb(), in_mode, out_mode, ImageCms.Intent.PERCEPTUAL)
    except Exception:
        try:  # some profiles only carry a colorimetric table
            return ImageCms.buildTransform(
                profile,
                _srgb(),
                in_mode,
                out_mode,
                ImageCms.Intent.RELATIVE_COLORIMETRIC,
            )
        except Exception:
            return None


def _apply(im: Image.Image, icc: bytes | None, out_mode: str) -> Image.Image:
    if icc:
        transform = _transform(icc, im.mode, out_mode)
        if transform is not None:
            try:
                result = transform.apply(im)
            except Exception:
                result = None
            if result is not None:
                return result
    return im.convert(out_mode)


def to_srgb(im: Image.Image, icc: object) -> Image.Image:
    """Convert a working-mode image to sRGB ``RGB`` or ``RGBA``.

    ``icc`` is the source's embedded profile (``info["icc_profile"]``) or None;
    without one the pixels are taken as sRGB already (CMYK without a profile
    gets Pillow's plain conversion).
    """
    profile = bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else None
    mode = im.mode
    if mode == "RGB" or mode == "CMYK" or mode == "L":
        return _apply(im, profile, "RGB")
    if mode == "RGBA":
        if profile is None or _transform(profile, "RGB", "RGB") is None:
            return im
        alpha = im.getchannel("A")
        rgb = _apply(im.convert("RGB"), profile, "RGB")
        rgb.putalpha(alpha)
        return rgb
    if mode == "LA":
        alpha = im.getchannel("A")
        rgb = _apply(im.getchannel("L"), profile, "RGB")
        rgb.putalpha(alpha)
        return rgb
    # to_working_mode never yields anything else
    raise ValueError(f"unexpected working mode {mode}")
