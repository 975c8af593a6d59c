"""Small data the core tests build themselves: random PNG manifests with a planted spoof cue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fascore.data.manifest import write_manifest


def stripe_manifest(
    out: Path, domains=("studio", "phone"), subjects: int = 6, size: int = 40
) -> Path:
    """A two-domain manifest: spoof images carry horizontal stripes whose level shifts by domain.

    Splits are subject-disjoint (train, dev, test = half, a quarter, a quarter of the subjects);
    each subject has one live, one print and one replay video of 3 frames.
    """
    rng = np.random.default_rng(0)
    (out / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    split_of = ["train"] * (subjects // 2) + ["dev"] * (subjects // 4)
    split_of += ["test"] * (subjects - len(split_of))
    for d, dom in enumerate(domains):
        for s in range(subjects):
            for kind in ("live", "print", "replay"):
                for f in range(3):
                    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                    if kind != "live":
                        img[:: 2 + d] = 40 + 80 * d
                    rel = f"img/{dom}_{s}_{kind}_{f}.png"
                    Image.fromarray(img).save(out / rel)
                    rows.append(
                        {
                            "path": rel,
                            "label": "live" if kind == "live" else "spoof",
                            "attack": "none" if kind == "live" else kind,
                            "domain": dom,
                            "subject": f"{dom}-{s}",
                            "video": f"{dom}-{s}-{kind}",
                            "split": split_of[s],
                            "frame": f,
                        }
                    )
    return write_manifest(pd.DataFrame(rows), out)
