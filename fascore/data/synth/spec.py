"""What SynthFAS generates: ``SynthSpec`` (counts, size, domains, species) and the named presets.

Kept apart from the renderer so the CLI can list the presets without loading it (pandas, cv2).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from fascore.data.synth.domains import ATTACKS, DOMAIN_NAMES, DOMAINS, get_domain
from fascore.errors import FascoreError

VERSION = "2.2"  # names the cache folder too: a new version never reuses old data


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Counts are per domain; every subject records every video kind."""

    image_size: int = 64  # side of the stored face crop (pixels)
    subjects: tuple[int, int, int] = (8, 4, 4)  # subjects per domain in train, dev, test
    live_videos: int = 3  # live videos per subject (3 = as many as attack videos of 3 species)
    attack_videos: int = 1  # videos per subject and PAI species
    frames: int = 4  # frames per video
    sessions: int = 3  # capture sessions per domain (background and light)
    domains: tuple[str, ...] = DOMAIN_NAMES
    attacks: tuple[str, ...] = ATTACKS
    #: per-domain (train, dev, test) subject counts replacing ``subjects`` for those domains
    domain_subjects: tuple[tuple[str, tuple[int, int, int]], ...] = ()

    def __post_init__(self) -> None:
        for name in self.domains:
            get_domain(name)
        for name, counts in self.domain_subjects:
            if name not in self.domains:
                raise FascoreError(f"domain_subjects names {name!r}, not one of {self.domains}")
            if len(counts) != 3 or min(counts) < 1:
                raise FascoreError(f"domain_subjects[{name!r}] needs >= 1 subject per split")
        unknown = sorted(set(self.attacks) - set(ATTACKS))
        if unknown:
            raise FascoreError(f"unknown PAI species {unknown}; SynthFAS renders {list(ATTACKS)}")
        counts = (*self.subjects, self.live_videos, self.frames, self.sessions)
        if len(self.subjects) != 3 or min(counts) < 1 or self.attack_videos < 0:
            raise FascoreError("SynthSpec needs >= 1 subject per split, live video, frame, session")
        if not 32 <= self.image_size <= 256:
            raise FascoreError(f"image_size {self.image_size} is outside 32..256 pixels")

    def digest(self) -> str:
        """Hash of the spec, the generator version and the parameters of its domains: names a
        cache entry, so retuning the domain table invalidates data made with the old one."""
        params = {d: asdict(DOMAINS[d]) for d in self.domains}
        spec = asdict(self)
        if not self.domain_subjects:  # specs without overrides keep the digests they had
            spec.pop("domain_subjects")
        text = json.dumps({"spec": spec, "version": VERSION, "domains": params}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def n_images(self) -> int:
        videos = self.live_videos + self.attack_videos * len(self.attacks)
        return sum(sum(self.subjects_of(d)) for d in self.domains) * videos * self.frames

    def subjects_of(self, domain: str) -> tuple[int, int, int]:
        """Subjects of ``domain`` in train, dev and test."""
        return tuple(dict(self.domain_subjects).get(domain, self.subjects))


PRESETS: dict[str, SynthSpec] = {
    "tiny": SynthSpec(image_size=64, subjects=(4, 2, 2), frames=2),  # tests: 384 images
    # dashboard demo, 6,048 images: 300 test videos per domain (25 subjects x 12 videos), so
    # video-level bootstrap intervals on the target test set are a few points wide. The target
    # (phone) has twice the train subjects: its train split is only the pool the k shots are
    # drawn from (students see no other target image), and the headroom ceiling's training set,
    # which 24 subjects left at the edge of learnable (docs/synthfas.md, "Headroom")
    "demo": SynthSpec(
        image_size=64,
        subjects=(24, 8, 25),
        live_videos=6,
        attack_videos=2,
        frames=2,
        domain_subjects=(("phone", (48, 8, 25)),),
    ),  # fmt: skip
    "full": SynthSpec(image_size=112, subjects=(30, 10, 15), frames=6),  # benchmarks: 7,920
}


def resolve_spec(preset: str | SynthSpec) -> SynthSpec:
    """A preset name or a spec -> the spec."""
    if isinstance(preset, SynthSpec):
        return preset
    if preset not in PRESETS:
        raise FascoreError(
            f"unknown SynthFAS preset {preset!r}; choose one of {', '.join(PRESETS)}"
        )
    return PRESETS[preset]
