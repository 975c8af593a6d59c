"""SynthFAS: the built-in synthetic cross-domain face anti-spoofing data set.

Procedural faces, presented live or through attack instruments (print, replay, mask), captured by
the cameras of four domains (studio, office, kiosk, phone). See docs/synthfas.md.

The spec and presets (``spec``) and the domains load with the package; the renderer
(``generate``: pandas, cv2) loads on first use of its names, so listing presets stays light.
"""

from fascore.data.synth.domains import ATTACKS, DOMAIN_NAMES, DOMAINS
from fascore.data.synth.spec import PRESETS, SynthSpec, resolve_spec

_RENDERER = ("default_data_dir", "ensure_synth")

__all__ = ["ATTACKS", "DOMAINS", "DOMAIN_NAMES", "PRESETS", "SynthSpec", "resolve_spec", *_RENDERER]


def __getattr__(name: str) -> object:
    """The renderer's names, loaded on first use (PEP 562)."""
    if name not in _RENDERER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # lazy: the renderer loads pandas and cv2 (~2 s), which `synth --help` does not need
    from fascore.data.synth import generate

    return getattr(generate, name)
