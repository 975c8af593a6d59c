"""SynthFAS: the built-in synthetic cross-domain face anti-spoofing data set.

Procedural faces, presented live or through attack instruments (print, replay, mask), captured by
the cameras of four domains (studio, office, kiosk, phone). See docs/synthfas.md.
"""

from fascore.data.synth.domains import ATTACKS, DOMAIN_NAMES, DOMAINS
from fascore.data.synth.generate import (
    PRESETS,
    SynthSpec,
    default_data_dir,
    ensure_synth,
    generate,
    resolve_spec,
)

__all__ = [
    "ATTACKS",
    "DOMAINS",
    "DOMAIN_NAMES",
    "PRESETS",
    "SynthSpec",
    "default_data_dir",
    "ensure_synth",
    "generate",
    "resolve_spec",
]
