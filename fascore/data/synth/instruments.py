"""Presentation attack instruments: a face photo turned into a print, a screen, or a worn mask.

An instrument is a flat rectangle (instrument coordinates (su, sv) in [0, 1]^2) held in front of
the capture camera. A :class:`Placement` maps it into the scene (S x S pixels); every function
here evaluates the instrument *at the scene pixels*, so dots and screen pixels are computed where
the camera will sample them (box-filtered over one scene pixel), never resampled twice.
Reflectances and emissions are float32 arrays (S, S, 3); masks are (S, S, 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from fascore.data.synth.domains import MaskKind, Printer, Screen
from fascore.data.synth.faces import Landmarks, planes, tile

# Classic halftone screen angles for cyan, magenta and yellow (degrees): rotated screens keep the
# three dot grids from beating against each other.
SCREEN_ANGLES = (15.0, 75.0, 0.0)


@functools.lru_cache(maxsize=4)
def grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene pixel centres (x, y) as fractions of the scene side, each (S, S); read-only."""
    y, x = (np.mgrid[0:s, 0:s].astype(np.float32) + 0.5) / s
    x.flags.writeable = y.flags.writeable = False
    return x, y


@dataclass(frozen=True)
class Placement:
    """Where the instrument sits: centre (scene fractions), size (share of the scene), rotation."""

    cx: float
    cy: float
    size: float  # instrument side / scene side: < 1 shows its border, > 1 fills the view
    angle: float  # radians
    margin: float  # share of the instrument around the picture (white paper border, bezel)

    def coords(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Instrument coordinates (su, sv) of every scene pixel centre, each (S, S)."""
        x, y = grid(s)
        x, y = x - self.cx, y - self.cy
        c, n = np.cos(self.angle), np.sin(self.angle)
        return (x * c + y * n) / self.size + 0.5, (-x * n + y * c) / self.size + 0.5

    def picture_scale(self) -> float:
        """How much bigger the picture's face must be drawn so the face in the scene keeps its size."""
        return 1.0 / (self.size * (1 - 2 * self.margin))


def sample_placement(rng: np.random.Generator, edges: bool, margin: float) -> Placement:
    """A hand-held instrument: fills the view, or (``edges``) is small enough to show its border."""
    size = rng.uniform(0.85, 1.0) if edges else rng.uniform(1.35, 1.6)
    return Placement(0.5 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02), size,
                     rng.normal(0, 0.06), margin if edges else 0.0)  # fmt: skip


def tremor(p: Placement, rng: np.random.Generator) -> Placement:
    """Per-frame hand shake: the instrument moves and turns a little between frames."""
    return Placement(p.cx + rng.normal(0, 0.008), p.cy + rng.normal(0, 0.008),
                     p.size * rng.uniform(0.985, 1.015), p.angle + rng.normal(0, 0.01), p.margin)  # fmt: skip


def inside(su: np.ndarray, sv: np.ndarray, lo: float, px: float) -> np.ndarray:
    """Antialiased indicator (S, S, 1) of lo <= su, sv <= 1 - lo; ``px`` = one scene pixel in su."""
    d = np.minimum(np.minimum(su - lo, 1 - lo - su), np.minimum(sv - lo, 1 - lo - sv))
    return np.clip(d / px + 0.5, 0, 1)[..., None]


def sample_picture(
    picture: np.ndarray, su: np.ndarray, sv: np.ndarray, margin: float, nearest: bool = False
) -> np.ndarray:
    """The picture (S, S, 3) looked up at instrument coordinates, inside the margin."""
    s = picture.shape[0]
    mx = ((su - margin) / (1 - 2 * margin) * s - 0.5).astype(np.float32)
    my = ((sv - margin) / (1 - 2 * margin) * s - 0.5).astype(np.float32)
    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(picture, mx, my, mode, borderMode=cv2.BORDER_REPLICATE)


def _halftone_lut(n: int = 1024) -> np.ndarray:
    """Maps the dot threshold t (quantised to n levels) to its CDF over one cell, so that a flat
    tone k inks a share k of the paper (a printer's linearisation)."""
    a = np.linspace(0, 1, 256, endpoint=False)
    t = 0.5 + 0.25 * (np.cos(2 * np.pi * a)[:, None] + np.cos(2 * np.pi * a)[None, :])
    levels = (np.arange(n) + 0.5) / n
    return (np.searchsorted(np.sort(t.ravel()), levels) / t.size).astype(np.float32)


_LUT = _halftone_lut()


def halftone(ink: np.ndarray, u: np.ndarray, v: np.ndarray, bleed: float, px: float) -> np.ndarray:
    """Clustered-dot coverage (S, S, 3) of ``ink`` (S, S, 3) in [0, 1]; (u, v) in cells.

    Dot threshold t = 1/2 + (cos 2pi a + cos 2pi b) / 4 on the channel's rotated grid (a, b),
    linearised through its quantiles so that a flat tone k covers a share k of the paper.
    ``px`` is one scene pixel in cells: dot edges are that soft (box filter, no aliasing). Ink
    bleed keeps the mean and shrinks the dot pattern: cover = k + (1 - bleed) (dots - k).
    """
    out = np.empty_like(ink)
    width = 1.5 * px
    for ch, deg in enumerate(SCREEN_ANGLES):
        c, n = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        a, b = u * c + v * n, -u * n + v * c
        t = 0.5 + 0.25 * (np.cos(2 * np.pi * a) + np.cos(2 * np.pi * b))
        t = _LUT[np.minimum((t * _LUT.size).astype(np.int32), _LUT.size - 1)]
        out[..., ch] = np.clip((ink[..., ch] - t) / width + 0.5, 0, 1)
    return ink + (1 - bleed) * (out - ink)


def print_sheet(
    picture: np.ndarray, printer: Printer, place: Placement, pitch: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (S, S, 3) of the printed sheet and its coverage mask (S, S, 1).

    ``pitch`` is the halftone cell in scene pixels. Printing compresses the gamut towards grey,
    lays CMY dots on tinted paper (reflectance paper + (black - paper) * coverage) and adds grain.
    """
    s = picture.shape[0]
    su, sv = place.coords(s)
    px = 1.0 / (place.size * s)
    img = sample_picture(picture, su, sv, place.margin)
    grey = planes(img.mean(axis=2, keepdims=True))
    img = np.clip(grey + printer.gamut * (img - grey), 0, 1)
    cells = place.size * s / pitch  # halftone cells across the sheet
    cover = halftone(1 - img, su * cells, sv * cells, printer.bleed, px * cells)
    paper = tile(np.array(printer.paper, np.float32), s)
    refl = paper + (printer.black - paper) * cover
    photo = planes(inside(su, sv, place.margin, px))
    refl = refl * photo + paper * (1 - photo)  # white border around the picture
    grain = cv2.GaussianBlur(rng.standard_normal((s, s), dtype=np.float32), (0, 0), 0.8)
    refl = refl * planes(1 + printer.grain * 2 * grain[..., None])
    return refl, inside(su, sv, 0.0, px)


def sheet_light(place: Placement, printer: Printer, rng: np.random.Generator, s: int) -> tuple:
    """Bent paper: shading across the bend (S, S, 1) and an additive specular band (S, S, 1)."""
    su, _ = place.coords(s)
    x = 2 * su - 1
    bend = rng.uniform(0.05, 0.25)
    shade = 1 - bend * x**2 + rng.uniform(-0.1, 0.1) * x
    x0, w = rng.uniform(-0.7, 0.7), rng.uniform(0.08, 0.25)
    spec = printer.gloss * rng.uniform(0.3, 1.0) * np.exp(-(((x - x0) / w) ** 2))
    return shade[..., None].astype(np.float32), spec[..., None].astype(np.float32)


def _stripe_cover(x: np.ndarray, start: float, width: float, h: float) -> np.ndarray:
    """Box-filtered periodic pulse: share of [x - h/2, x + h/2] inside [k + start, k + start + width)."""

    def prim(z: np.ndarray) -> np.ndarray:
        z = z - start
        return np.floor(z) * width + np.minimum(z - np.floor(z), width)

    return (prim(x + h / 2) - prim(x - h / 2)) / h


def screen_emission(
    picture: np.ndarray, screen: Screen, place: Placement, pitch: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Light emitted by a screen showing ``picture``: emission (S, S, 3), screen mask, device mask.

    The picture (sRGB-encoded) is shown at the panel's resolution with the panel's gamma
    (emission = tint * brightness * picture^(gamma / 2.2)); every pixel is three vertical R, G, B
    stripes separated by a black matrix, box-filtered over one scene pixel.
    """
    s = picture.shape[0]
    su, sv = place.coords(s)
    n = max(8, int(round((1 - 2 * place.margin) * place.size * s / pitch)))  # panel pixels
    panel = cv2.resize(picture, (n, n), interpolation=cv2.INTER_AREA)
    shown = sample_picture(
        cv2.resize(panel, (s, s), interpolation=cv2.INTER_NEAREST), su, sv, place.margin, True
    )
    shown = np.clip(shown, 0, 1) ** (screen.gamma / 2.2)
    scale = n / ((1 - 2 * place.margin) * place.size * s)  # panel pixels per scene pixel
    qu = (su - place.margin) / (1 - 2 * place.margin) * n
    qv = (sv - place.margin) / (1 - 2 * place.margin) * n
    rows = _stripe_cover(qv, 0.05, 0.9, scale)
    emit = np.empty_like(shown)
    for ch in range(3):
        cols = _stripe_cover(qu, ch / 3, screen.fill / 3, scale)
        emit[..., ch] = shown[..., ch] * cols * rows * 3 / (screen.fill * 0.9)
    tint = np.array(screen.tint, np.float32) * screen.brightness
    emit = (emit * (1 - screen.black) + screen.black) * tile(tint, s)
    px = 1.0 / (place.size * s)
    return emit, inside(su, sv, place.margin, px), inside(su, sv, 0.0, px)


def glare(s: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Mirror reflection of a window on cover glass (S, S, 1): a soft slanted band plus a veil."""
    x, y = grid(s)
    ang = rng.uniform(0, np.pi)
    d = (x - 0.5) * np.cos(ang) + (y - 0.5) * np.sin(ang) - rng.uniform(-0.4, 0.4)
    band = np.exp(-((d / rng.uniform(0.08, 0.3)) ** 2))
    return (strength * (0.25 + rng.uniform(0.3, 1.0) * band))[..., None]


def fingers(place: Placement, skin: np.ndarray, rng: np.random.Generator, s: int) -> tuple:
    """One or two fingers holding the instrument at its edge: colour (S, S, 3), mask (S, S, 1)."""
    su, sv = place.coords(s)
    mask = np.zeros((s, s), np.float32)
    for _ in range(int(rng.integers(1, 3))):
        side, pos = int(rng.integers(3)), rng.uniform(0.2, 0.8)
        a = {0: (pos, 1.15), 1: (-0.15, pos), 2: (1.15, pos)}[side]
        b = {0: (pos + rng.normal(0, 0.05), 0.9), 1: (0.1, pos), 2: (0.9, pos)}[side]
        du, dv = su - a[0], sv - a[1]
        eu, ev = b[0] - a[0], b[1] - a[1]
        t = np.clip((du * eu + dv * ev) / (eu**2 + ev**2), 0, 1)
        dist = np.hypot(du - t * eu, dv - t * ev) * place.size * s
        mask = np.maximum(mask, np.clip(0.055 * s - dist + 0.5, 0, 1))
    shade = 0.75 + 0.25 * np.cos(np.clip(sv - 0.5, -1, 1) * 2)
    return tile(skin, s) * planes(shade[..., None]), mask[..., None]


def wear_mask(
    wearer: np.ndarray, face: np.ndarray, marks: Landmarks, kind: MaskKind, rng: np.random.Generator
) -> np.ndarray:
    """A mask printed with ``face`` worn by ``wearer`` (both (S, S, 3), same pose) -> (S, S, 3).

    Inside the cut (an ellipse over the face) the print replaces the skin: reduced gamut, uniform
    texture, a dark rim along the cut; through two eye holes the wearer's shadowed eyes show.
    """
    s = face.shape[0]
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    c, n = np.cos(marks.roll), np.sin(marks.roll)
    xr, yr = x - marks.cx, y - (marks.cy + 0.08 * marks.b)
    r = np.hypot((xr * c + yr * n) / (0.97 * marks.a), (-xr * n + yr * c) / (0.95 * marks.b))
    cut = np.clip((1 - r) * marks.a + 0.5, 0, 1)
    grey = planes(face.mean(axis=2, keepdims=True))
    printed = grey + kind.gamut * (face - grey)
    tex = cv2.GaussianBlur(rng.standard_normal((s, s), dtype=np.float32), (0, 0), 1.2)
    printed = printed * planes(1 + kind.texture * 3 * tex[..., None])
    printed = printed * planes(1 - (1 - kind.relief) * 0.15 * ((xr / marks.a) ** 2)[..., None])
    printed = printed + planes(kind.gloss * 0.15 * np.exp(-((r - 0.3) ** 2) / 0.02)[..., None])
    holes = np.zeros((s, s), np.float32)
    for ex, ey in marks.eyes:
        d = np.hypot((x - ex) / (1.25 * marks.eye_r), (y - ey) / (0.7 * marks.eye_r))
        holes = np.maximum(holes, np.clip((1 - d) * marks.eye_r + 0.5, 0, 1))
    rim = 1 - kind.rim * np.exp(-(((r - 1) * marks.a / (0.03 * s)) ** 2))
    cut = planes(cut[..., None])
    out = wearer * (1 - cut) + printed * cut
    # Eyes sit deep behind a flat paper mask; a moulded mask hugs the face and shades them less.
    shadow = 0.45 + 0.35 * kind.relief
    holes = planes(holes[..., None])
    out = out * (1 - holes) + wearer * shadow * holes
    return (out * planes(rim[..., None])).astype(np.float32)
