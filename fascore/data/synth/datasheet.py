"""The datasheet written beside a SynthFAS manifest: composition, domains, and difficulty.

Every number in it is computed from the generated data (counts, the mean-colour baseline) or
written by a command named beside it (``python -m bench.bench_synth --calibrate`` adds the
small-CNN calibration to the datasheet of the folder it calibrates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pandas as pd

from fascore.atomic import atomic_write_text
from fascore.data.synth.domains import DOMAINS

DATASHEET_NAME = "datasheet.md"
MEAN_RGB = ["mean_r", "mean_g", "mean_b"]


class SpecLike(Protocol):
    """What the datasheet reads of a ``generate.SynthSpec`` (no import: generate imports us)."""

    image_size: int
    domains: tuple[str, ...]


def counts_table(df: pd.DataFrame) -> str:
    """Markdown table of images per domain x split x PAI species (live = ``none``)."""
    species = ["none"] + [a for a in df["attack"].unique() if a != "none"]
    order = pd.MultiIndex.from_product([df["domain"].unique(), ["train", "dev", "test"]])
    tab = df.pivot_table(index=["domain", "split"], columns="attack", values="path",
                         aggfunc="count", fill_value=0)  # fmt: skip
    tab = tab.reindex(index=order, columns=species, fill_value=0)
    heads = ["live"] + [f"spoof: {a}" for a in species[1:]]
    lines = ["| domain | split | " + " | ".join(heads) + " | subjects | videos |"]
    lines.append("|" + "---|" * (len(heads) + 4))
    for (domain, split), row in tab.iterrows():
        part = df[(df["domain"] == domain) & (df["split"] == split)]
        cells = " | ".join(str(int(row[a])) for a in species)
        lines.append(f"| {domain} | {split} | {cells} | {part['subject'].nunique()} | "
                     f"{part['video'].nunique()} |")  # fmt: skip
    return "\n".join(lines)


def colour_baseline(df: pd.DataFrame) -> dict[str, float]:
    """Per domain: test AUC of a logistic regression on the per-image mean RGB (train split).

    Near 0.5 means the mean colour alone does not tell live from spoof; the images must be read.
    """
    from sklearn.linear_model import LogisticRegression  # start-up cost: scikit-learn ~2 s
    from sklearn.metrics import roc_auc_score

    out = {}
    for domain, part in df.groupby("domain", sort=False):
        train, test = part[part["split"] == "train"], part[part["split"] == "test"]
        y_train, y_test = train["label"] == "spoof", test["label"] == "spoof"
        if y_train.nunique() < 2 or y_test.nunique() < 2:
            continue
        model = LogisticRegression(max_iter=1000).fit(train[MEAN_RGB], y_train)
        out[str(domain)] = float(roc_auc_score(y_test, model.predict_proba(test[MEAN_RGB])[:, 1]))
    return out


def domains_section(names: list[str]) -> str:
    """One line per domain: what it is and which instruments it holds."""
    lines = []
    for name in names:
        d = DOMAINS[name]
        tools = ", ".join(t.name for t in (*d.printers, *d.screens, *d.masks))
        lines.append(f"- **{name}**: {d.summary}. Camera `{d.camera.name}` (JPEG q{d.camera.jpeg_quality}, "
                     f"{d.camera.sensor_scale:g} sensor px per output px); instruments: {tools}.")  # fmt: skip
    return "\n".join(lines)


def write(out: Path, df: pd.DataFrame, spec: SpecLike, key: dict) -> Path:
    """Write ``datasheet.md`` in ``out`` from the generated rows (with their mean RGB)."""
    base = colour_baseline(df)
    base_md = ", ".join(f"{d} {auc:.2f}" for d, auc in base.items()) or "n/a (one class only)"
    worst = max(base.values(), default=float("nan"))
    labels = df["label"].value_counts()
    text = f"""# SynthFAS datasheet

Procedurally rendered face anti-spoofing data (no real person appears). Generator
`fascore.data.synth`, spec hash `{key["hash"]}`, seed {key["seed"]}: {len(df)} images of
{spec.image_size} px, {df["video"].nunique()} videos, {df["subject"].nunique()} subjects
({int(labels.get("live", 0))} live, {int(labels.get("spoof", 0))} spoof). Splits are subject-disjoint;
subjects differ between domains. `preprocessing.json` holds the full spec and every domain parameter.

## Composition (images)

{counts_table(df)}

## Domains

{domains_section(list(spec.domains))}

## Difficulty calibration

The cues were tuned so that a small CNN learns live vs spoof within a domain without it being
trivial, a model of one domain loses clearly on another, and nothing simpler gives it away.
On this data, a logistic regression on the per-image mean RGB (train split -> test AUC) reaches:
{base_md} (worst case {worst:.2f}; 0.5 is chance). The small-CNN calibration (within- and
cross-domain AUC, first- and last-epoch) is written by `python -m bench.bench_synth --calibrate`
into docs/synthfas.md and below, when run on this folder.
"""
    target = out / DATASHEET_NAME
    atomic_write_text(target, text)
    return target
