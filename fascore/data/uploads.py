"""Check a user's uploaded image before any model sees it: type, size, pixel count, decodability.

The dashboard's Grad-CAM page calls ``read_upload``; every rejection is one ``FascoreError`` whose
message says what was wrong and what to upload instead, so the page shows one ``st.error`` line.
"""

from __future__ import annotations

import io
import os

from PIL import Image

from fascore.data.decode import TooManyPixels, max_pixels, open_image, to_rgb
from fascore.errors import FascoreError

MAX_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize = 10 (MB) in .streamlit/config.toml
EXTENSIONS = ("png", "jpg", "jpeg")
FORMATS = ("PNG", "JPEG")
SHARE_ENV = "FASCORE_SHARE"
#: Share mode (``FASCORE_SHARE=1``) is read-only: the server decodes nothing a visitor sends.
SHARE_REFUSAL = (
    "This dashboard is shared read-only: it decodes no uploaded file. Run it on your own "
    "machine (`streamlit run dashboard/app.py`) to explain your own images."
)


def _hint() -> str:
    return (
        f"Upload a PNG or JPEG face image of at most 10 MB and {max_pixels() / 1e6:g} megapixels."
    )


def share_mode() -> bool:
    """True when the dashboard is shared read-only (``FASCORE_SHARE=1``)."""
    return os.environ.get(SHARE_ENV, "") == "1"


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def read_upload(name: str, data: bytes) -> Image.Image:
    """Decode an upload into an RGB PIL image (``fascore.data.images.to_rgb``, as in training),
    or raise one readable ``FascoreError``.

    Checks, in order (cheapest first, the full decode last): share mode (read-only: nothing is
    decoded), the file extension, the byte size, the pixel count read from the header
    (``fascore.data.decode.open_image``), the format sniffed from the content (not the name),
    then a full decode, which catches truncated or corrupt files.
    """
    if share_mode():
        raise FascoreError(SHARE_REFUSAL)
    if _extension(name) not in EXTENSIONS:
        raise FascoreError(f"{name!r} is not a .png or .jpg file. {_hint()}")
    if len(data) > MAX_BYTES:
        raise FascoreError(
            f"{name!r} is {len(data) / 2**20:.1f} MB, over the 10 MB limit. {_hint()}"
        )
    if not data:
        raise FascoreError(f"{name!r} is empty. {_hint()}")
    try:
        image = open_image(io.BytesIO(data))  # the header only: the pixel limit holds first
    except TooManyPixels as err:
        raise FascoreError(f"{name!r}: {err}. {_hint()}") from None
    except (OSError, SyntaxError, ValueError):
        raise FascoreError(f"{name!r} could not be read as an image. {_hint()}") from None
    if image.format not in FORMATS:
        raise FascoreError(f"{name!r} holds a {image.format} image, not PNG or JPEG. {_hint()}")
    try:
        image.load()
        return to_rgb(image)  # EXIF orientation, 16-bit and palette images as in training
    except (OSError, SyntaxError, ValueError):
        raise FascoreError(
            f"{name!r} is damaged or truncated and could not be decoded. {_hint()}"
        ) from None
