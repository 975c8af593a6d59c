"""SynthFAS presets named by their cache location: a config may point at data not generated yet.

This lets the dashboard submit the demo at once: the first job that needs a preset generates it
(under a lock, so jobs starting together wait for one generation) while the page already shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fascore.data.manifest import MANIFEST_NAME
from fascore.data.synth.generate import PRESETS, default_data_dir, ensure_synth


def preset_manifest(preset: str) -> Path:
    """Where a SynthFAS preset's manifest lives in the user's cache (it may not exist yet)."""
    return default_data_dir(preset) / MANIFEST_NAME


def ensure_preset_data(paths: Iterable[str]) -> None:
    """Generate any SynthFAS preset that ``paths`` name by its cache location and that is missing."""
    for path in paths:
        for preset in PRESETS:
            if Path(path) == preset_manifest(preset) and not Path(path).exists():
                ensure_synth(preset)
