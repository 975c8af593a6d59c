"""Image decoding, right or refused: the one place that turns an image file into 8-bit RGB.

Training (``fascore.data.images``), validation, Grad-CAM uploads, reports and the importers'
still images all decode through ``decode_image`` / ``to_rgb``, so a 16-bit or palette PNG or a
rotated phone photo means the same pixels everywhere. Every reader first opens the header only
(``open_image``) and refuses an image of more than ``max_pixels()`` pixels before a byte is
decoded: a few-KB PNG may claim 50000 x 50000 pixels (7.5 GB decoded). Videos are checked the
same way from their stream's frame size (``check_pixels``). PIL and numpy only (no torch), so
the dashboard can import it cheaply.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps

#: Environment variable that raises (or lowers) the pixel limit, in pixels.
MAX_PIXELS_ENV = "FASCORE_MAX_PIXELS"
#: 25 MP: a 6000 x 4000 photo; far above any face crop or video frame, far below a bomb.
DEFAULT_MAX_PIXELS = 25_000_000


class TooManyPixels(ValueError):
    """An image or video frame larger than the pixel limit (refused before decoding)."""


def max_pixels() -> int:
    """The pixel limit of every reader: ``$FASCORE_MAX_PIXELS`` if set to a positive whole
    number, else ``DEFAULT_MAX_PIXELS``. PIL refuses more than ~179 MP on its own whatever
    this says (``PIL.Image.MAX_IMAGE_PIXELS`` x 2)."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_PIXELS


def check_pixels(width: int, height: int, what: str = "image") -> None:
    """Raise ``TooManyPixels`` when ``width x height`` is over the pixel limit."""
    limit = max_pixels()
    if width * height > limit:
        raise TooManyPixels(
            f"{what} is {width}x{height} = {width * height / 1e6:.0f} megapixels, over the "
            f"{limit / 1e6:g} MP limit (raise it with {MAX_PIXELS_ENV})"
        )


def open_image(src: str | Path | IO[bytes]) -> Image.Image:
    """The image's header only (nothing decoded yet), refused with ``TooManyPixels`` when it
    claims more pixels than the limit; OSError or ValueError when it is not an image."""
    with warnings.catch_warnings():
        # PIL warns (then raises) on huge images; our own limit, checked below, is stricter.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(src)
        except Image.DecompressionBombError as err:
            raise TooManyPixels(f"{err} (limit {max_pixels() / 1e6:g} MP)") from None
    try:
        check_pixels(*im.size)
    except TooManyPixels:
        im.close()
        raise
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """A decoded image as 8-bit RGB, right or refused: the one colour conversion of fascore
    (training, analysis, Grad-CAM, uploads, reports).

    EXIF orientation is applied (phone photos are stored sideways); 16-bit grey (PIL modes
    ``I;16*`` and ``I``) is scaled 65535 -> 255 rather than clipped to white; palette images
    (transparent ones through RGBA), grey, alpha and CMYK images are converted. Float pixels have
    no defined 8-bit scale and raise ``ValueError``.
    """
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"{im.mode} pixels outside the 16-bit range")
        im = Image.fromarray(np.rint(arr / 257.0).astype(np.uint8), mode="L")
    elif im.mode == "F":
        raise ValueError("floating-point pixels have no 8-bit scale; save the image as 8/16-bit")
    elif im.mode in ("P", "PA") and "transparency" in im.info:
        im = im.convert("RGBA")
    return im if im.mode == "RGB" else im.convert("RGB")


def decode_image(path: str | Path) -> Image.Image:
    """One image file -> an 8-bit RGB PIL image (``to_rgb``); ``TooManyPixels`` (a ValueError)
    over the pixel limit, checked before decoding; OSError or ValueError if it cannot be read
    (a truncated file included)."""
    with open_image(path) as im:
        im.load()
        return to_rgb(im)
