"""Reading frames: videos through PyAV (frame by frame, going on past a damaged packet) and
still images (CelebA-Spoof) as one-frame videos, upright whatever way they were stored.

Both hold the pixel limit of every reader (``fascore.data.decode``) before decoding: a still
image through ``decode_image`` (header first; a truncated file is refused, as training would
refuse it), a video by its stream's frame size. A refusal is a ``ValueError``, which the
import reports as that file's skip reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from fascore.data.decode import check_pixels, decode_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class Decoded:
    """What one pass over a file met: packets that would not decode (the pass went on)."""

    errors: list[str] = field(default_factory=list)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def count_frames(path: Path) -> int:
    """Frames in the first video stream: the header's count, else one demux pass (no decoding).
    A still image counts as one frame."""
    if is_image(path):
        return 1
    with av.open(str(path)) as container:
        stream = _checked_stream(container, path)
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _checked_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first video stream, refused (``TooManyPixels``) when its frames are over the limit."""
    if not container.streams.video:
        raise ValueError(f"{path.name} holds no video stream")
    stream = container.streams.video[0]
    check_pixels(stream.codec_context.width, stream.codec_context.height, "a video frame")
    return stream


def _read_image(path: Path) -> np.ndarray:
    """A still image as RGB (H, W, 3) uint8, through the one decoder of fascore."""
    return np.asarray(decode_image(path))


def decode_frames(
    path: Path, wanted: list[int], flip: bool = False, report: Decoded | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame (H, W, 3) uint8) for the wanted indices, in decoding order.

    Decoding goes packet by packet: a packet that fails to decode (some MSU-MFSD laptop .mov
    files raise mid-stream, then decode again) is noted in ``report`` and skipped, and the
    frames after it are still read. ``flip`` reverses the rows (an upside-down recording)."""
    report = report if report is not None else Decoded()
    if is_image(path):
        if 0 in wanted:
            rgb = _read_image(path)
            yield 0, np.ascontiguousarray(rgb[::-1]) if flip else rgb
        return
    keep, last = set(wanted), max(wanted)
    with av.open(str(path)) as container:
        stream = _checked_stream(container, path)
        stream.thread_type = "AUTO"
        i = 0  # decode order, as the data sets' annotation files count frames
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as err:
                report.errors.append(f"packet at {packet.pts}: {type(err).__name__}")
                i += 1  # that packet's frame is lost: the later frames keep their indices
                continue
            for frame in frames:
                if i in keep:
                    rgb = frame.to_ndarray(format="rgb24")
                    yield i, np.ascontiguousarray(rgb[::-1]) if flip else rgb
                if i >= last:
                    return
                i += 1
