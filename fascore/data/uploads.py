"""Check a user's uploaded image before any model sees it: type, size, pixel count, decodability.

The dashboard's Grad-CAM page calls ``read_upload``; every rejection is one ``FascoreError`` whose
message says what was wrong and what to upload instead, so the page shows one ``st.error`` line.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

from fascore.data.decode import to_rgb
from fascore.errors import FascoreError

MAX_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize = 10 (MB) in .streamlit/config.toml
MAX_PIXELS = 25_000_000  # 25 MP: far above any face crop, far below a decompression bomb
EXTENSIONS = ("png", "jpg", "jpeg")
FORMATS = ("PNG", "JPEG")
HINT = "Upload a PNG or JPEG face image of at most 10 MB and 25 megapixels."


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def read_upload(name: str, data: bytes) -> Image.Image:
    """Decode an upload into an RGB PIL image (``fascore.data.images.to_rgb``, as in training),
    or raise one readable ``FascoreError``.

    Checks, in order (cheapest first, the full decode last): the file extension, the byte size,
    the format sniffed from the content (not the name), the pixel count read from the header,
    then a full decode, which catches truncated or corrupt files.
    """
    if _extension(name) not in EXTENSIONS:
        raise FascoreError(f"{name!r} is not a .png or .jpg file. {HINT}")
    if len(data) > MAX_BYTES:
        raise FascoreError(f"{name!r} is {len(data) / 2**20:.1f} MB, over the 10 MB limit. {HINT}")
    if not data:
        raise FascoreError(f"{name!r} is empty. {HINT}")
    try:
        with warnings.catch_warnings():
            # PIL warns (then raises) on huge images; our own pixel limit below is stricter.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt, (w, h) = image.format, image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise FascoreError(f"{name!r} could not be read as an image. {HINT}") from None
    if fmt not in FORMATS:
        raise FascoreError(f"{name!r} holds a {fmt} image, not PNG or JPEG. {HINT}")
    if w * h > MAX_PIXELS:
        raise FascoreError(
            f"{name!r} is {w}x{h} = {w * h / 1e6:.0f} megapixels, over the 25 MP limit. {HINT}"
        )
    try:
        image.load()
        return to_rgb(image)  # EXIF orientation, 16-bit and palette images as in training
    except (OSError, SyntaxError, ValueError):
        raise FascoreError(
            f"{name!r} is damaged or truncated and could not be decoded. {HINT}"
        ) from None
