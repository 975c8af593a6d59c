"""The capture camera: scene radiance (S, S, 3, linear) -> the stored face crop (N, N, 3, uint8).

Order of a real pipeline: lens blur and vignetting -> auto-exposure -> sampling by the sensor's
photosites through a Bayer colour filter (where fine periodic patterns alias into moire) -> shot
and read noise -> demosaicing -> white balance and colour matrix -> tone curve -> sharpening ->
8-bit JPEG -> resize of the crop to the network's input size.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from fascore.data.synth.domains import Camera
from fascore.data.synth.faces import planes, tile

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance weights


def vignette(s: int, strength: float) -> np.ndarray:
    """Light fall-off (S, S, 1): 1 at the centre, 1 - strength at the corners (~cos^4 law)."""
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    r2 = ((x - (s - 1) / 2) ** 2 + (y - (s - 1) / 2) ** 2) / (2 * ((s - 1) / 2) ** 2)
    return (1 - strength * r2)[..., None]


@functools.lru_cache(maxsize=16)
def _vignette_rgb(s: int, strength: float) -> np.ndarray:
    """:func:`vignette` expanded to (S, S, 3), computed once per camera; read-only."""
    v = planes(vignette(s, strength))
    v.flags.writeable = False
    return v


def exposure_gain(img: np.ndarray, target: float, rng: np.random.Generator) -> float:
    """Auto-exposure: scale so the centre-weighted mean luminance hits ``target`` (+/- 10 %)."""
    s = img.shape[0]
    centre = img[s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] @ LUMA
    return float(target / max(float(centre.mean()), 1e-4) * rng.lognormal(0, 0.1))


def bayer_sample(img: np.ndarray) -> np.ndarray:
    """RGGB mosaic (H, W) of an RGB image: each photosite sees one colour."""
    m = np.empty(img.shape[:2], np.float32)
    m[0::2, 0::2] = img[0::2, 0::2, 0]
    m[0::2, 1::2] = img[0::2, 1::2, 1]
    m[1::2, 0::2] = img[1::2, 0::2, 1]
    m[1::2, 1::2] = img[1::2, 1::2, 2]
    return m


def demosaic(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear demosaicing of an RGGB mosaic in [0, 1] -> (H, W, 3)."""
    q = (np.clip(mosaic, 0, 1) * 65535).astype(np.uint16)
    return cv2.cvtColor(q, cv2.COLOR_BayerBG2RGB).astype(np.float32) / 65535


def white_balance(img: np.ndarray, cam: Camera) -> np.ndarray:
    """Partial grey-world AWB (gains^awb) times the camera's residual bias."""
    means = img.reshape(-1, 3).mean(axis=0) + 1e-4
    gains = (means[1] / means) ** cam.awb * np.array(cam.wb_bias, np.float32)
    return img * tile(gains.astype(np.float32), *img.shape[:2])


def tone(img: np.ndarray, cam: Camera) -> np.ndarray:
    """Colour matrix (saturation about luminance), sRGB-like gamma, contrast about mid-grey."""
    lum = planes((img @ LUMA)[..., None])
    img = np.clip(lum + cam.saturation * (img - lum), 0, 1)
    y = img ** (1 / 2.2)
    return np.clip(0.5 + (y - 0.5) * cam.contrast, 0, 1)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode at ``quality`` (uint8 (H, W, 3) in, out)."""
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok, "JPEG encoding failed"
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def capture(
    radiance: np.ndarray, cam: Camera, out_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Image ``radiance`` (S, S, 3) with ``cam`` -> face crop (out_size, out_size, 3) uint8."""
    s = radiance.shape[0]
    img = cv2.GaussianBlur(radiance, (0, 0), max(cam.blur * s / out_size, 0.3))
    img = img * _vignette_rgb(s, cam.vignetting)
    img = np.clip(img * exposure_gain(img, cam.exposure, rng), 0, 1)  # photosites saturate
    n = 2 * int(round(out_size * cam.sensor_scale / 2))
    img = cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA)  # pixel aperture integration
    mosaic = bayer_sample(img)
    noise = np.sqrt(cam.shot_noise**2 * mosaic + cam.read_noise**2)
    mosaic = mosaic + noise * rng.standard_normal(mosaic.shape, dtype=np.float32)
    img = tone(white_balance(demosaic(mosaic), cam), cam)
    if cam.sharpen > 0:
        img = img + cam.sharpen * (img - cv2.GaussianBlur(img, (0, 0), 1.0))
    img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    img = jpeg(img, cam.jpeg_quality)
    interp = cv2.INTER_AREA if n > out_size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(img, (out_size, out_size), interpolation=interp))
