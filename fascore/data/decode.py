"""Image decoding, right or refused: the one place that turns an image file into 8-bit RGB.

Training (``fascore.data.images``), validation, Grad-CAM uploads and reports all decode through
``to_rgb``, so a 16-bit or palette PNG or a rotated phone photo means the same pixels everywhere.
PIL and numpy only (no torch), so the dashboard can import it cheaply.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


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
    """One image file -> an 8-bit RGB PIL image (``to_rgb``); OSError or ValueError if it cannot
    be read."""
    with Image.open(path) as im:
        im.load()
        return to_rgb(im)
