"""One SynthFAS video: the session's scene, the presentation (live or an attack instrument held
in front of the camera) and the capture of each frame.

Every random choice comes from a generator seeded by (seed, domain, subject, video, frame, what),
so a frame never depends on which worker renders it or in which order.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from fascore.data.synth import faces, instruments
from fascore.data.synth.camera import capture
from fascore.data.synth.domains import DOMAINS, Domain, MaskKind, Printer, Screen
from fascore.data.synth.faces import planes, tile

SUPERSAMPLE = 4  # scene pixels per output pixel: drawing and instruments are antialiased by it
IMAGES_DIR = "images"


@dataclass(frozen=True)
class VideoTask:
    """One video to render: everything a worker needs, nothing it must share."""

    seed: int
    domain: str
    subject: int  # 1-based index within the domain
    split: str
    attack: str  # "none" for live
    take: int  # 1-based index among this subject's videos of this kind
    session: int
    size: int
    frames: int
    sessions: int = 3

    @property
    def subject_id(self) -> str:
        return f"{self.domain}-s{self.subject:03d}"

    @property
    def kind(self) -> str:
        return "live" if self.attack == "none" else self.attack

    @property
    def video_id(self) -> str:
        return f"{self.subject_id}-{self.kind}-{self.take}"

    def device(self) -> str:
        """The capture camera, plus the attack instrument: ``webcam-720p+office-laser``."""
        dom = DOMAINS[self.domain]
        tool = instrument(self, dom)
        return dom.camera.name if tool is None else f"{dom.camera.name}+{tool.name}"

    def path(self, frame: int) -> str:
        return (
            f"{IMAGES_DIR}/{self.domain}/{self.subject_id}/{self.kind}-{self.take}-f{frame:02d}.png"
        )


def rng_for(task: VideoTask, *keys: int | str) -> np.random.Generator:
    """A generator seeded by (seed, domain, subject, *keys): independent of worker order."""
    words = [task.seed, zlib.crc32(task.domain.encode()), task.subject]
    words += [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def session_rng(seed: int, domain: str, session: int, key: str) -> np.random.Generator:
    """Randomness shared by every subject recorded in one session of one domain."""
    words = [seed, zlib.crc32(domain.encode()), 1000 + session, zlib.crc32(key.encode())]
    return np.random.default_rng(np.random.SeedSequence(words))


def session_scene(task: VideoTask, dom: Domain, session: int, s: int) -> tuple:
    """Background (S, S, 3), light and illuminant (3,) of one capture session (read-only).

    It depends only on (seed, domain, session, S), so each worker renders it once per session."""
    return _session_scene(task.seed, task.domain, dom, session, s)


@functools.lru_cache(maxsize=64)
def _session_scene(seed: int, domain: str, dom: Domain, session: int, s: int) -> tuple:
    rng = session_rng(seed, domain, session, "scene")
    bg = faces.render_background(dom.place.background, rng, s)
    side = rng.uniform(-1, 1) * (1 - dom.place.key_from_above)
    light = faces.Light(lx=0.6 * side, ly=-0.6 * dom.place.key_from_above - 0.1,
                        key=dom.place.key, gloss=rng.uniform(0.03, 0.12))  # fmt: skip
    level = rng.uniform(*dom.place.light_level)
    tint = np.array(dom.place.light_rgb) * (1 + dom.place.light_jitter * rng.standard_normal(3))
    illum = (tint * level).astype(np.float32)
    bg.flags.writeable = illum.flags.writeable = False
    return bg, light, illum


def source_picture_scene(task: VideoTask, dom: Domain, rng: np.random.Generator, s: int) -> tuple:
    """Background and light of the photo or video an attacker presents.

    Mostly a capture of the victim in one of the domain's own sessions (as OULU-NPU made its attack
    media), else a picture taken elsewhere.
    """
    if rng.uniform() < 0.7:
        bg, light, _ = session_scene(task, dom, int(rng.integers(task.sessions)), s)
        return bg, light
    style = str(rng.choice(faces.BACKGROUNDS))
    light = faces.Light(lx=rng.uniform(-0.6, 0.6), ly=rng.uniform(-0.6, 0.0),
                        key=rng.uniform(0.2, 0.6), gloss=rng.uniform(0.03, 0.12))  # fmt: skip
    return faces.render_background(style, rng, s), light


def instrument(task: VideoTask, dom: Domain) -> Printer | Screen | MaskKind | None:
    """The printer, screen or mask kind this attack video uses (None for live)."""
    options = {"print": dom.printers, "replay": dom.screens, "mask": dom.masks}.get(task.attack)
    if not options:
        return None
    return options[int(rng_for(task, task.kind, task.take, "instrument").integers(len(options)))]


def _soften(picture: np.ndarray, blur: float) -> np.ndarray:
    """The attack's source picture at its own quality: ``blur`` is in output pixels."""
    return cv2.GaussianBlur(picture, (0, 0), blur * SUPERSAMPLE) if blur > 0 else picture


def _scaled(pose: faces.Pose, k: float) -> faces.Pose:
    """The pose as drawn inside a picture that the instrument shrinks by ``k``."""
    return replace(pose, dx=pose.dx * k, dy=pose.dy * k, scale=pose.scale * k)


def _live(
    task: VideoTask, dom: Domain, ident: faces.Identity, scene: tuple
) -> Iterator[np.ndarray]:
    bg, light, illum = scene
    s = bg.shape[0]
    for f in range(task.frames):
        rng = rng_for(task, task.kind, task.take, f, "frame")
        img, _ = faces.render_face(ident, faces.sample_pose(rng), bg, light, rng)
        yield img * tile(illum, s)


def _print(
    task: VideoTask, dom: Domain, ident: faces.Identity, scene: tuple
) -> Iterator[np.ndarray]:
    bg, _, illum = scene
    s = bg.shape[0]
    vr = rng_for(task, task.kind, task.take, "video")
    printer = instrument(task, dom)
    pitch = printer.dot_pitch * SUPERSAMPLE * vr.uniform(0.9, 1.1)
    edges = vr.uniform() < dom.edge_prob
    place0 = instruments.sample_placement(vr, edges, margin=0.07)
    pbg, plight = source_picture_scene(task, dom, vr, s)
    pose = _scaled(faces.sample_pose(vr, blink_prob=0.0), place0.picture_scale())
    picture, _ = faces.render_face(ident, pose, pbg, plight, vr)
    picture = _soften(picture, printer.picture_blur)
    hand = np.array(faces.sample_identity(vr).skin, np.float32)
    for f in range(task.frames):
        fr = rng_for(task, task.kind, task.take, f, "frame")
        place = instruments.tremor(place0, fr)
        refl, m = instruments.print_sheet(picture, printer, place, pitch, fr)
        # The same sheet and the same hand in every frame: re-seed them per video.
        shade, spec = instruments.sheet_light(
            place, printer, rng_for(task, task.kind, task.take, "bend"), s
        )
        m3 = planes(m)
        img = bg * (1 - m3) + refl * planes(shade) * m3
        if edges:
            col, fm = instruments.fingers(
                place, hand, rng_for(task, task.kind, task.take, "hand"), s
            )
            fm3 = planes(fm)
            img = img * (1 - fm3) + col * fm3
            m = m * (1 - fm)
        yield (img + planes(spec * m)) * tile(illum, s)


def _replay(
    task: VideoTask, dom: Domain, ident: faces.Identity, scene: tuple
) -> Iterator[np.ndarray]:
    bg, _, illum = scene
    s = bg.shape[0]
    vr = rng_for(task, task.kind, task.take, "video")
    screen = instrument(task, dom)
    # Users set their own white point (night mode, true tone): the panel tint varies per video.
    screen = replace(screen, tint=tuple(np.multiply(screen.tint, 1 + 0.03 * vr.standard_normal(3))))
    pitch = screen.pixel_pitch * SUPERSAMPLE * vr.uniform(0.9, 1.1)
    edges = vr.uniform() < dom.edge_prob
    place0 = instruments.sample_placement(vr, edges, margin=0.05)
    pbg, plight = source_picture_scene(task, dom, vr, s)
    glare = instruments.glare(s, screen.glare, vr)
    bezel = 0.04  # black plastic or glass around the panel
    for f in range(task.frames):
        fr = rng_for(task, task.kind, task.take, f, "frame")
        pose = _scaled(faces.sample_pose(fr), place0.picture_scale())
        content, _ = faces.render_face(ident, pose, pbg, plight, fr)  # a replayed video moves
        content = _soften(content, screen.picture_blur)
        place = instruments.tremor(place0, fr)
        emit, sm, dm = instruments.screen_emission(content, screen, place, pitch)
        lit = bg * (1 - planes(dm)) + planes(bezel * (dm - sm)) + planes(glare * dm)
        yield lit * tile(illum, s) + emit * planes(sm) * 0.9


def _mask(
    task: VideoTask, dom: Domain, ident: faces.Identity, scene: tuple
) -> Iterator[np.ndarray]:
    bg, light, illum = scene
    vr = rng_for(task, task.kind, task.take, "video")
    kind = instrument(task, dom)
    wearer = faces.disguise(ident, vr)
    flat = replace(light, key=kind.relief * light.key + (1 - kind.relief) * 0.1, gloss=0.0)
    smile = vr.uniform(-0.1, 0.5)
    for f in range(task.frames):
        fr = rng_for(task, task.kind, task.take, f, "frame")
        pose = faces.sample_pose(fr)
        worn, marks = faces.render_face(wearer, pose, bg, light, fr)
        # A mask does not blink, look around or move its mouth.
        still = replace(
            pose, eyes_open=1.0, gaze=(0.0, 0.0), smile=smile, mouth_open=0.0, brow_raise=0.0
        )
        face, _ = faces.render_face(ident, still, bg, flat, fr)
        out = instruments.wear_mask(
            worn, face, marks, kind, rng_for(task, task.kind, task.take, "mask")
        )
        yield out * tile(illum, bg.shape[0])


PRESENTERS = {"live": _live, "print": _print, "replay": _replay, "mask": _mask}


def render_video(task: VideoTask) -> list[np.ndarray]:
    """The frames (size, size, 3) uint8 of one video, as the domain's camera stores them."""
    dom = DOMAINS[task.domain]
    s = task.size * SUPERSAMPLE
    ident = faces.sample_identity(rng_for(task, "identity"))
    scene = session_scene(task, dom, task.session, s)
    radiances = PRESENTERS[task.kind](task, dom, ident, scene)
    return [
        capture(radiance, dom.camera, task.size, rng_for(task, task.kind, task.take, f, "camera"))
        for f, radiance in enumerate(radiances)
    ]
