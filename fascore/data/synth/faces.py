"""Procedural frontal faces and backgrounds, drawn with PIL at the supersampled scene resolution.

A face is an :class:`Identity` (who: shape, colours, accessories; fixed per subject) seen in a
:class:`Pose` (this frame: position, scale, roll, blink, expression) under a :class:`Light`.
Geometry is in *face units*: u in [-1, 1] across the face, v in [-1, 1] from crown to chin, mapped
to scene pixels by the pose. Images are float32 arrays (S, S, 3) of reflectance in [0, 1].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image, ImageDraw

Color = tuple[float, float, float]
# Skin reflectance from deep brown to pale pink: identities interpolate along this line.
SKIN_DARK, SKIN_LIGHT = np.array([0.30, 0.18, 0.12]), np.array([0.93, 0.76, 0.66])
HAIR = ((0.05, 0.04, 0.03), (0.18, 0.11, 0.06), (0.40, 0.26, 0.14), (0.70, 0.55, 0.32),
        (0.45, 0.16, 0.08), (0.55, 0.55, 0.55))  # fmt: skip
IRIS = ((0.25, 0.15, 0.08), (0.12, 0.07, 0.04), (0.25, 0.40, 0.55), (0.30, 0.40, 0.25))
HAIR_STYLES = ("short", "long", "bald", "fringe", "bun")
BACKGROUNDS = ("backdrop", "office", "kiosk", "street")


@dataclass(frozen=True)
class Identity:
    """What stays fixed for one subject (sizes are in face units or crop fractions)."""

    skin: Color
    hair: Color
    iris: Color
    lips: Color
    clothes: Color
    face_w: float  # half-width of the face as a share of the crop width
    face_h: float  # half-height of the face as a share of the crop height
    jaw: float  # chin narrowing (0 round .. 0.4 pointed)
    eye_dx: float  # eye distance from the midline (face units)
    eye_v: float  # eye height
    eye_w: float
    eye_h: float
    brow: float  # eyebrow thickness
    nose: float  # nose length
    mouth_w: float
    lip_h: float
    hair_style: str
    hairline: float
    glasses: int  # 0 none, 1 round, 2 square
    beard: float  # 0 none .. 1 full


@dataclass(frozen=True)
class Pose:
    """What changes between frames of one video."""

    dx: float = 0.0  # shift of the face centre (crop fractions)
    dy: float = 0.0
    scale: float = 1.0
    roll: float = 0.0  # in-plane rotation (radians)
    eyes_open: float = 1.0  # 0 closed (blink) .. 1 open
    gaze: tuple[float, float] = (0.0, 0.0)
    smile: float = 0.0
    mouth_open: float = 0.0
    brow_raise: float = 0.0


@dataclass(frozen=True)
class Light:
    """Scene light: direction of the key light, its share, and a skin-gloss strength."""

    lx: float = 0.0
    ly: float = -0.3
    key: float = 0.4
    gloss: float = 0.08


@dataclass(frozen=True)
class Landmarks:
    """Where the face landed in scene pixels (used by the mask attack)."""

    cx: float
    cy: float
    a: float  # half-width in pixels
    b: float  # half-height in pixels
    roll: float
    eyes: tuple[tuple[float, float], tuple[float, float]]
    eye_r: float


def planes(a: np.ndarray) -> np.ndarray:
    """An (H, W, 1) array as a contiguous (H, W, 3) copy of the same dtype.

    Broadcasting an (H, W, 1) operand against an (H, W, 3) image makes numpy run its inner loop
    3 elements at a time (~6x slower); the elementwise result of the expanded operand is the same.
    """
    return cv2.merge([np.ascontiguousarray(a[..., 0])] * 3)


def tile(color: np.ndarray, h: int, w: int | None = None) -> np.ndarray:
    """A colour (3,) as a contiguous (H, W, 3) array of its dtype (see :func:`planes`)."""
    color = np.asarray(color)
    return cv2.merge([np.full((h, w or h), c, color.dtype) for c in color])


def _pick(rng: np.random.Generator, options: tuple) -> object:
    return options[int(rng.integers(len(options)))]


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random subject; proportions vary within plausible adult ranges."""
    t = rng.uniform()
    skin = SKIN_DARK + (SKIN_LIGHT - SKIN_DARK) * t + rng.normal(0, 0.02, 3)
    lips = skin * np.array([0.85, 0.55, 0.55]) + np.array([0.08, 0.0, 0.0])
    clothes = rng.uniform(0.05, 0.85, 3)
    return Identity(
        skin=tuple(np.clip(skin, 0.05, 1.0)), hair=_pick(rng, HAIR), iris=_pick(rng, IRIS),
        lips=tuple(np.clip(lips, 0.05, 1.0)), clothes=tuple(clothes),
        face_w=rng.uniform(0.24, 0.30), face_h=rng.uniform(0.32, 0.37), jaw=rng.uniform(0.0, 0.4),
        eye_dx=rng.uniform(0.36, 0.46), eye_v=rng.uniform(-0.12, -0.02),
        eye_w=rng.uniform(0.16, 0.22), eye_h=rng.uniform(0.06, 0.09), brow=rng.uniform(0.025, 0.06),
        nose=rng.uniform(0.30, 0.42), mouth_w=rng.uniform(0.30, 0.44), lip_h=rng.uniform(0.04, 0.08),
        hair_style=_pick(rng, HAIR_STYLES), hairline=rng.uniform(-0.72, -0.52),
        glasses=int(rng.choice(3, p=[0.7, 0.15, 0.15])), beard=float(rng.uniform() < 0.2),
    )  # fmt: skip


def disguise(ident: Identity, rng: np.random.Generator) -> Identity:
    """The same face geometry on another person's colours (the wearer behind a mask)."""
    other = sample_identity(rng)
    return replace(ident, skin=other.skin, hair=other.hair, iris=other.iris,
                   hair_style=other.hair_style, clothes=other.clothes, glasses=0, beard=0.0)  # fmt: skip


def sample_pose(rng: np.random.Generator, blink_prob: float = 0.12) -> Pose:
    """Per-frame jitter: small moves, scale change, expression and an occasional blink."""
    blink = rng.uniform() < blink_prob
    return Pose(
        dx=rng.normal(0, 0.02), dy=rng.normal(0, 0.02), scale=rng.uniform(0.93, 1.07),
        roll=rng.normal(0, 0.05), eyes_open=rng.uniform(0.0, 0.2) if blink else rng.uniform(0.8, 1),
        gaze=(rng.normal(0, 0.15), rng.normal(0, 0.1)), smile=rng.uniform(-0.2, 0.8),
        mouth_open=max(0.0, rng.normal(0, 0.3)), brow_raise=rng.normal(0, 0.3),
    )  # fmt: skip


def _c(col: Color | np.ndarray, k: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * k, 0, 1) * 255 + 0.5) for c in col)


class _Pen:
    """Maps face units to scene pixels under a pose and draws polygons and lines."""

    def __init__(self, img: Image.Image, ident: Identity, pose: Pose):
        s = img.size[0]
        self.draw = ImageDraw.Draw(img)
        self.cx, self.cy = (0.5 + pose.dx) * s, (0.53 + pose.dy) * s
        self.a, self.b = ident.face_w * pose.scale * s, ident.face_h * pose.scale * s
        self.cos, self.sin = np.cos(pose.roll), np.sin(pose.roll)
        self.px = s / 256.0  # line widths are given for a 256-px scene

    def on(self, img: Image.Image) -> _Pen:
        """The same mapping drawing onto another image."""
        pen = copy.copy(self)
        pen.draw = ImageDraw.Draw(img)
        return pen

    def pts(self, u: np.ndarray, v: np.ndarray) -> list[tuple[float, float]]:
        x, y = u * self.a, v * self.b
        xs, ys = self.cx + x * self.cos - y * self.sin, self.cy + x * self.sin + y * self.cos
        return list(zip(xs.tolist(), ys.tolist(), strict=True))

    def ellipse(self, u0: float, v0: float, ru: float, rv: float, fill: Color, n: int = 32):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        self.draw.polygon(self.pts(u0 + ru * np.cos(t), v0 + rv * np.sin(t)), fill=_c(fill))

    def poly(self, u: np.ndarray, v: np.ndarray, fill: Color) -> None:
        self.draw.polygon(self.pts(np.asarray(u), np.asarray(v)), fill=_c(fill))

    def line(self, u: np.ndarray, v: np.ndarray, fill: Color, width: float) -> None:
        w = max(1, int(round(width * self.px)))
        self.draw.line(
            self.pts(np.asarray(u), np.asarray(v)), fill=_c(fill), width=w, joint="curve"
        )


def _face_outline(jaw: float, grow: float = 1.0, n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    v = -np.cos(t) * grow
    u = np.sin(t) * grow * (1 - jaw * np.clip(v, 0, None) ** 2)
    return u, v


def _draw_head(pen: _Pen, ident: Identity) -> None:
    skin, hair = ident.skin, ident.hair
    if ident.hair_style == "long":
        pen.poly(np.array([-1.2, -1.25, -1.0, 0, 1.0, 1.25, 1.2]),
                 np.array([1.5, -0.3, -1.05, -1.2, -1.05, -0.3, 1.5]), hair)  # fmt: skip
    pen.poly(
        np.array([-0.42, 0.42, 0.55, -0.55]), np.array([0.5, 0.5, 1.6, 1.6]), np.multiply(skin, 0.8)
    )
    pen.ellipse(0, 2.05, 2.4, 0.85, ident.clothes)
    for s in (-1, 1):
        pen.ellipse(s * 0.98, 0.02, 0.13, 0.2, np.multiply(skin, 0.9))
    pen.poly(*_face_outline(ident.jaw), skin)
    if ident.beard:
        u, v = _face_outline(ident.jaw)
        low = v > 0.3  # along the jaw, below the mouth corners
        pen.poly(u[low], v[low], np.add(np.multiply(hair, 0.75), np.multiply(skin, 0.25)))
    if ident.hair_style != "bald":
        _draw_hair(pen, ident)


def _draw_hair(pen: _Pen, ident: Identity) -> None:
    t = np.linspace(np.pi * 0.95, np.pi * 2.05, 24)
    top_u, top_v = 1.08 * np.cos(t), -0.05 + 1.06 * np.sin(t)
    h = ident.hairline + (0.25 if ident.hair_style == "fringe" else 0.0)
    line_u = np.array([1.02, 0.7, 0.3, 0.0, -0.3, -0.7, -1.02])
    line_v = np.array([-0.05, h + 0.12, h + 0.02, h + 0.04, h + 0.02, h + 0.12, -0.05])
    pen.poly(np.concatenate([top_u, line_u]), np.concatenate([top_v, line_v]), ident.hair)
    if ident.hair_style == "bun":
        pen.ellipse(0, -1.15, 0.35, 0.22, ident.hair)


def _draw_eyes(img: Image.Image, pen: _Pen, ident: Identity, pose: Pose) -> list:
    centres = []
    t = np.linspace(0, np.pi, 12)
    lash = np.multiply(ident.hair, 0.5)
    for s in (-1, 1):
        u0, v0 = s * ident.eye_dx, ident.eye_v
        bu, bv = u0 + ident.eye_w * np.array([-1.1, 0, 1.1]) * s, v0 - np.array([0.14, 0.2, 0.16])
        pen.line(bu, bv - 0.04 * pose.brow_raise, ident.hair, 1 + 120 * ident.brow)
        centres.append(pen.pts(np.array([u0]), np.array([v0]))[0])
        if pose.eyes_open < 0.3:
            pen.line(u0 + ident.eye_w * np.cos(t), v0 + 0.01 * np.sin(t), lash, 3)
            continue
        hh = ident.eye_h * pose.eyes_open
        u = np.concatenate([u0 + ident.eye_w * np.cos(t), u0 - ident.eye_w * np.cos(t)])
        v = np.concatenate([v0 - hh * np.sin(t), v0 + 0.7 * hh * np.sin(t)])
        layer = img.copy()
        lp = pen.on(layer)
        lp.poly(u, v, (0.92, 0.9, 0.88))
        gu, gv = u0 + pose.gaze[0] * ident.eye_w * 0.5, v0 + pose.gaze[1] * ident.eye_h * 0.5
        lp.ellipse(gu, gv, ident.eye_h * 0.85 * pen.b / pen.a, ident.eye_h * 0.85, ident.iris, 20)
        lp.ellipse(gu, gv, ident.eye_h * 0.35 * pen.b / pen.a, ident.eye_h * 0.35, (0.02,) * 3, 12)
        lp.ellipse(gu + 0.03, gv - 0.025, 0.012, 0.012, (1, 1, 1), 8)
        mask = Image.new("L", img.size, 0)
        ImageDraw.Draw(mask).polygon(pen.pts(u, v), fill=255)
        img.paste(layer, mask=mask)
        pen.line(u[:12], v[:12], lash, 3)
    return centres


def _draw_features(pen: _Pen, ident: Identity, pose: Pose) -> None:
    shade = np.multiply(ident.skin, 0.72)
    nv = ident.eye_v + ident.nose
    pen.line(
        np.array([-0.06, -0.1, -0.08]), np.array([ident.eye_v + 0.08, nv - 0.08, nv]), shade, 3
    )
    for s in (-1, 1):
        pen.ellipse(s * 0.09, nv + 0.02, 0.045, 0.025, np.multiply(ident.skin, 0.4), 12)
    mv, mw, lh, sm = nv + 0.2, ident.mouth_w, ident.lip_h, pose.smile * 0.06
    u = np.array([-mw, -mw / 2, 0, mw / 2, mw, mw / 2, 0, -mw / 2])
    v = mv + np.array([-sm, -lh, -0.6 * lh, -lh, -sm, 1.1 * lh, 1.3 * lh, 1.1 * lh])
    pen.poly(u, v, ident.lips)
    if pose.mouth_open > 0.15:
        pen.ellipse(0, mv + 0.01, mw * 0.6, lh * min(pose.mouth_open, 1.0), (0.15, 0.05, 0.05), 20)
    pen.line(
        np.array([-mw, 0, mw]), mv + np.array([-sm, sm * 0.3, -sm]), np.multiply(ident.lips, 0.5), 2
    )
    if ident.glasses:
        _draw_glasses(pen, ident)


def _draw_glasses(pen: _Pen, ident: Identity) -> None:
    frame = (0.08, 0.07, 0.07) if ident.glasses == 1 else (0.35, 0.22, 0.1)
    p = 2.0 if ident.glasses == 2 else 8.0  # superellipse exponent: square vs round rims
    t = np.linspace(0, 2 * np.pi, 33)
    cu, su = np.cos(t), np.sin(t)
    ru, rv = ident.eye_w * 1.45, ident.eye_w * 1.1 * pen.a / pen.b
    for s in (-1, 1):
        u = s * ident.eye_dx + ru * np.sign(cu) * np.abs(cu) ** (2 / p)
        v = ident.eye_v + 0.02 + rv * np.sign(su) * np.abs(su) ** (2 / p)
        pen.line(u, v, frame, 4)
        pen.line(
            np.array([s * (ident.eye_dx + ru), s * 1.0]), np.array([ident.eye_v] * 2), frame, 3
        )
    inner = ident.eye_dx - ru
    pen.line(np.array([-inner, inner]), np.array([ident.eye_v - 0.02] * 2), frame, 3)


def _shading(s: int, pen: _Pen, jaw: float, light: Light) -> tuple[np.ndarray, np.ndarray]:
    """Lambert shading (S, S, 1) of an ellipsoidal head, flat ambient light outside it, and an
    additive skin-gloss highlight (S, S, 1). Smooth, so computed on a 4x coarser grid."""
    g = max(16, s // 4)
    y, x = (np.mgrid[0:g, 0:g].astype(np.float32) + 0.5) * (s / g)
    xr, yr = x - pen.cx, y - pen.cy
    u = (xr * pen.cos + yr * pen.sin) / pen.a
    v = (-xr * pen.sin + yr * pen.cos) / pen.b
    u = u / (1 - jaw * np.clip(v, 0, 1) ** 2)  # the same narrowing chin as the outline
    r = np.sqrt(u * u + v * v)
    nz = np.sqrt(1.0 - np.minimum(r, 1.0) ** 2)
    lz = np.sqrt(max(0.0, 1 - light.lx**2 - light.ly**2))
    lambert = np.clip(u * light.lx + v * light.ly + nz * lz, 0, 1)
    inside = np.clip((1.03 - r) / 0.06, 0, 1)
    flat = 1 - 0.3 * light.key
    shade = inside * (1 - light.key + light.key * lambert) + (1 - inside) * flat
    spec = light.gloss * inside * np.exp(-((u - 0.4 * light.lx) ** 2 + (v + 0.35) ** 2) / 0.02)
    both = cv2.resize(np.dstack([shade, spec]), (s, s), interpolation=cv2.INTER_LINEAR)
    return both[..., :1], both[..., 1:]


def render_face(
    ident: Identity, pose: Pose, background: np.ndarray, light: Light, rng: np.random.Generator
) -> tuple[np.ndarray, Landmarks]:
    """Draw ``ident`` in ``pose`` over ``background`` (S, S, 3) -> image (S, S, 3), landmarks."""
    s = background.shape[0]
    img = Image.fromarray((np.clip(background, 0, 1) * 255).astype(np.uint8))
    pen = _Pen(img, ident, pose)
    _draw_head(pen, ident)
    eyes = _draw_eyes(img, pen, ident, pose)
    _draw_features(pen, ident, pose)
    out = np.asarray(img, dtype=np.float32) / 255.0
    shade, spec = _shading(s, pen, ident.jaw, light)
    # Fine surface texture (pores, fabric): real 3-D surfaces are never perfectly smooth.
    tex = 1 + 0.04 * rng.standard_normal((s, s, 1), dtype=np.float32)
    # Cast up front (the shading is float64): numpy's mixed-dtype loops cast in small buffers.
    dt = np.result_type(out, shade, tex, spec)
    shade, tex, spec = (planes(a).astype(dt, copy=False) for a in (shade, tex, spec))
    out = out.astype(dt) * shade * tex + spec
    marks = Landmarks(pen.cx, pen.cy, pen.a, pen.b, pose.roll, tuple(eyes), ident.eye_w * pen.a)
    return out.astype(np.float32, copy=False), marks


def _office(d: ImageDraw.ImageDraw, rng: np.random.Generator, k: float) -> None:
    """Furniture, posters and shelves; some shelves hold book spines (fine vertical texture)."""
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.uniform(-20, 230, 2) * k
        x1, y1 = x0 + rng.uniform(20, 120) * k, y0 + rng.uniform(20, 160) * k
        d.rectangle([x0, y0, x1, y1], fill=_c(rng.uniform(0.05, 0.95, 3)))
        if rng.uniform() < 0.4:
            for xs in np.arange(x0, x1, rng.uniform(3, 7) * k):
                width = max(1, int(2 * k))
                d.line([xs, y0, xs, y1], fill=_c(rng.uniform(0.05, 0.9, 3)), width=width)


def _street(d: ImageDraw.ImageDraw, rng: np.random.Generator, k: float, size: int) -> None:
    """Sky, building blocks and trees."""
    sky = size * rng.uniform(0.2, 0.6)
    d.rectangle([0, 0, size, sky], fill=_c(rng.uniform([0.5, 0.6, 0.75], [0.85, 0.9, 1.0])))
    for _ in range(int(rng.integers(2, 6))):
        x0 = rng.uniform(-40, 230) * k
        box = [x0, sky * rng.uniform(0.2, 1.0), x0 + rng.uniform(40, 110) * k, size]
        d.rectangle(box, fill=_c(rng.uniform(0.2, 0.8, 3)))
    for _ in range(int(rng.integers(0, 4))):
        x, y, r = rng.uniform(0, size), rng.uniform(sky * 0.5, size), rng.uniform(15, 45) * k
        green = _c(rng.uniform([0.1, 0.3, 0.1], [0.3, 0.6, 0.3]))
        d.ellipse([x - r, y - r, x + r, y + r], fill=green)


def render_background(style: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A session background (S, S, 3): plain backdrop, office clutter, kiosk tiles or street."""
    base = rng.uniform(0.25, 0.85, 3) * (rng.uniform(0.5, 1.0) if style != "backdrop" else 1)
    img = Image.new("RGB", (size, size), _c(base))
    d = ImageDraw.Draw(img)
    k = size / 256
    if style == "office":
        _office(d, rng, k)
    elif style == "kiosk":
        step, grout, width = rng.uniform(18, 40) * k, _c(base, 0.8), max(1, int(2 * k))
        for p in np.arange(rng.uniform(0, step), size, step):
            d.line([p, 0, p, size], fill=grout, width=width)
            d.line([0, p, size, p], fill=grout, width=width)
    elif style == "street":
        _street(d, rng, k, size)
    out = np.asarray(img, dtype=np.float32) / 255.0
    yy = np.linspace(-1, 1, size, dtype=np.float32)[:, None, None]
    out = out * (1 + rng.uniform(-0.2, 0.2) * yy)  # light falls off across the wall
    # Depth of field: the background is behind the subject, so it is out of focus; the far
    # street most, the kiosk wall right behind the user least (a plain backdrop shows no blur).
    sigma = {"backdrop": 3.0, "office": 1.5, "kiosk": 0.8, "street": 2.0}[style] * k
    return cv2.GaussianBlur(out, (0, 0), sigma)
