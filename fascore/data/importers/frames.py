"""Reading frames: videos through PyAV (frame by frame, going on past a damaged packet) and
still images (CelebA-Spoof) as one-frame videos, upright whatever way they were stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

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
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path.name} is not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
        stream = container.streams.video[0]
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
