"""SynthFAS benchmarks: generation time, and the difficulty calibration of the data.

``python -m bench.bench_synth`` times a cold ``demo`` generation (fresh folder, every core) and
a cached second call, into docs/benchmarks.md. ``python -m bench.bench_synth --calibrate`` trains a
small CNN on each domain of the ``demo`` data and tests it on every domain (plus the mean-colour
baseline), into docs/synthfas.md and the datasheet of the calibrated folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

from bench._report import write_section
from fascore.data.manifest import read_manifest
from fascore.data.synth import default_data_dir, generate

SYNTH_DOC = Path(__file__).resolve().parent.parent / "docs" / "synthfas.md"


def time_generation(preset: str = "demo") -> str:
    """Markdown: seconds for a cold generation into a fresh folder and for the cached call."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = generate(preset, Path(tmp) / preset)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        generate(preset, Path(tmp) / preset)
        cached = time.perf_counter() - start
        n = len(read_manifest(manifest))
    return (
        "| preset | images | workers | cold generation (s) | images / s | cached call (s) |\n"
        "|---|---|---|---|---|---|\n"
        f"| {preset} | {n} | {os.cpu_count()} | {cold:.1f} | {n / cold:.0f} | {cached:.3f} |\n"
    )


def small_cnn() -> nn.Module:
    """Three conv blocks and a linear head: the probe of how learnable the cues are."""

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                         *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))  # fmt: skip


def load(df: pd.DataFrame) -> tuple[torch.Tensor, np.ndarray]:
    """Images (N, 3, H, W) in [0, 1] and labels (N,) with spoof = 1."""
    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in df["abspath"]])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, (df["label"] == "spoof").to_numpy(
        np.float32
    )


def train(
    x: torch.Tensor, y: np.ndarray, epochs: int, probe: tuple | None = None, seed: int = 0
) -> tuple[nn.Module, float]:
    """AdamW with a one-cycle schedule, batch 32, horizontal flips -> model, AUC on ``probe``
    (images, labels) after the first epoch (nan without a probe)."""
    torch.manual_seed(seed)
    model, target = small_cnn(), torch.from_numpy(y).float()
    opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-4)
    first = float("nan")
    steps = epochs * ((len(x) + 31) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(32):
            xb = x[idx]
            xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, xb.flip(3), xb)
            loss = nn.functional.binary_cross_entropy_with_logits(model(xb).squeeze(1), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch == 0 and probe is not None:
            first = float(roc_auc_score(probe[1], scores(model, probe[0])))
    return model, first


@torch.no_grad()
def scores(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model(b).squeeze(1) for b in x.split(256)]).numpy()


def mean_colour_auc(train_x: torch.Tensor, y_train, test_x: torch.Tensor, y_test) -> float:
    """Test AUC of a logistic regression on per-image mean RGB: the cue must not be colour."""
    lr = LogisticRegression(max_iter=1000).fit(train_x.mean((2, 3)).numpy(), y_train)
    return float(roc_auc_score(y_test, lr.predict_proba(test_x.mean((2, 3)).numpy())[:, 1]))


def calibrate(manifest: Path, epochs: int = 8) -> str:
    """Markdown: within/cross-domain test AUC of the small CNN, first-epoch AUC, colour baseline."""
    df = read_manifest(manifest)
    domains = list(df["domain"].unique())
    data = {
        (d, s): load(df[(df["domain"] == d) & (df["split"] == s)])
        for d in domains
        for s in ("train", "test")
    }
    head = (
        "| trained on | " + " | ".join(f"test {d}" for d in domains) + " | epoch 1 | mean-RGB LR |"
    )
    rows = [head, "|" + "---|" * (len(domains) + 3)]
    for d in domains:
        (xtr, ytr), (xte, yte) = data[d, "train"], data[d, "test"]
        model, first = train(xtr, ytr, epochs, probe=(xte, yte))
        aucs = [
            roc_auc_score(data[o, "test"][1], scores(model, data[o, "test"][0])) for o in domains
        ]
        cells = " | ".join(
            f"**{a:.2f}**" if o == d else f"{a:.2f}" for o, a in zip(domains, aucs, strict=True)
        )
        rows.append(f"| {d} | {cells} | {first:.2f} | {mean_colour_auc(xtr, ytr, xte, yte):.2f} |")
    sizes = df[df["split"] == "train"].groupby("domain").size()
    n_train = ", ".join(f"{d} {sizes[d]}" for d in domains)
    return (
        f"Small CNN (3 conv blocks 16-32-64, BatchNorm, global average pooling; AdamW 3e-3 one-cycle, "
        f"batch 32, flips, {epochs} epochs) trained on each domain's train split (images: {n_train}; "
        "frame level) and scored on every domain's test split: ROC AUC, spoof positive. Bold = "
        "within domain. *epoch 1* = within-domain AUC after one epoch (not trivially separable); "
        "*mean-RGB LR* = logistic regression on the per-image mean colour (0.5 = chance).\n\n"
        + "\n".join(rows)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="run the CNN calibration instead")
    parser.add_argument("--data", type=Path, help="demo data folder (default: the per-user cache)")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    if not args.calibrate:
        body = time_generation("demo")
        write_section("synth", "SynthFAS generation", "python -m bench.bench_synth", body)
        print(body)
        return
    manifest = generate("demo", args.data or default_data_dir("demo"))
    body = calibrate(manifest, args.epochs)
    command = "python -m bench.bench_synth --calibrate"
    write_section("calibration", "Calibration (demo preset)", command, body, doc=SYNTH_DOC)
    write_section("calibration", "Calibration", command, body, doc=manifest.parent / "datasheet.md")
    print(body)


if __name__ == "__main__":
    main()
