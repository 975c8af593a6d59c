"""The upload checker: every bad upload is one readable FascoreError; good ones decode to RGB."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fascore.data.uploads import MAX_BYTES, read_upload
from fascore.errors import FascoreError


def _png(w: int = 8, h: int = 6, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 128).save(buf, format="PNG")
    return buf.getvalue()


def _with_size(png: bytes, w: int, h: int) -> bytes:
    """The same PNG with its IHDR claiming w x h (CRC fixed, so only the size is a lie)."""
    ihdr = png[12:16] + struct.pack(">II", w, h) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def test_a_png_and_a_jpeg_decode_to_rgb():
    im = read_upload("face.PNG", _png(8, 6, "L"))
    assert (im.mode, im.size) == ("RGB", (8, 6))
    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(buf, format="JPEG")
    assert read_upload("face.jpeg", buf.getvalue()).size == (7, 5)


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("notes.txt", b"hello", "not a .png or .jpg"),
        ("notes.png", b"just some text, not an image", "could not be read as an image"),
        ("big.png", b"\0" * (MAX_BYTES + 1), "over the 10 MB limit"),
        ("empty.jpg", b"", "is empty"),
        ("huge.png", _with_size(_png(), 6000, 5000), "30 megapixels, over the 25 MP limit"),
        ("broken.png", _png(64, 64)[:-40], "damaged or truncated"),
    ],
)
def test_bad_uploads_get_one_message_each(name, data, words):
    with pytest.raises(FascoreError) as err:
        read_upload(name, data)
    message = str(err.value)
    assert words in message
    assert "Upload a PNG or JPEG" in message  # the next step
    assert "\n" not in message


def test_content_decides_the_format_not_the_name():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="GIF")
    with pytest.raises(FascoreError, match="holds a GIF image"):
        read_upload("sneaky.png", buf.getvalue())


def test_share_mode_decodes_no_upload(monkeypatch):
    """Issue 22.2: a shared (read-only) dashboard decodes nothing a visitor sends."""
    monkeypatch.setenv("FASCORE_SHARE", "1")
    with pytest.raises(FascoreError, match="shared read-only"):
        read_upload("face.png", _png())
    monkeypatch.setenv("FASCORE_SHARE", "")
    assert read_upload("face.png", _png()).size == (8, 6)
