"""The data of one run: manifests -> protocol parts -> decoded images.

Parts (column ``part``): ``source_train``, ``source_dev``, ``source_test`` (the source domains'
splits), ``target_train`` (only the k sampled shots), ``target_dev`` and ``target_test``. The
target's unsampled training rows are never loaded, so a method cannot see more than its shots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fascore.config import RunConfig
from fascore.data.fewshot import sample_shots
from fascore.data.images import FaceBatches, ImageArray, load_images
from fascore.data.protocols import load_manifests
from fascore.data.synth.cache import ensure_preset_data
from fascore.errors import FascoreError
from fascore.store.runs import Run
from fascore.train.methods import METHODS


def protocol_parts(df: pd.DataFrame, cfg: RunConfig) -> tuple[pd.DataFrame, dict]:
    """Label each row with its part of the protocol; sample the target shots by seed."""
    domains = sorted(df["domain"].unique())
    for dom in (*cfg.source_domains, cfg.target_domain):
        if dom not in domains:
            raise FascoreError(f"domain {dom!r} is not in the data; found: {', '.join(domains)}")
    src = df[df["domain"].isin(cfg.source_domains)].copy()
    src["part"], src["role"] = "source_" + src["split"], "source"
    tgt = df[df["domain"] == cfg.target_domain]
    shots, record = (tgt.iloc[:0], {"unit": cfg.shot_unit, "k": 0, "videos": []})
    if cfg.shots != 0:
        shots, record = sample_shots(
            tgt, cfg.shots, unit=cfg.shot_unit, seed=cfg.seed, episode=cfg.episode
        )
    shots = shots.assign(part="target_train")
    rest = tgt[tgt["split"] != "train"].assign(part=lambda d: "target_" + d["split"])
    tgt = pd.concat([shots, rest]).assign(role="target")
    out = pd.concat([src, tgt], ignore_index=True)
    check_subjects(out)
    method = METHODS.get(cfg.method)
    needed = ["target_test"] + ["source_train"] * method.uses_source
    needed += ["target_train"] * method.uses_target
    for part in needed:
        if not (out["part"] == part).any():
            raise FascoreError(
                f"the protocol has no {part.replace('_', ' ')} rows: check the manifest's splits "
                f"and --shots (run `python -m fascore validate`)"
            )
    return out, record


def check_subjects(parts: pd.DataFrame) -> None:
    """A subject in more than one split (train, dev, test) of the rows a run uses is an error:
    the model would be selected or tested on identities it trained on."""
    spread = parts.groupby("subject")["split"].nunique()
    shared = spread.index[spread > 1].astype(str).tolist()
    if shared:
        splits = parts[parts["subject"].isin(shared[:3])].groupby("subject")["split"].unique()
        named = ", ".join(f"{s} ({'/'.join(sorted(splits[s]))})" for s in shared[:3])
        raise FascoreError(
            f"{len(shared)} subject(s) appear in more than one split of this run's data: {named}"
            "; splits must be subject-disjoint (`python -m fascore validate` lists them all)"
        )


@dataclass
class TrainData:
    frame: pd.DataFrame
    images: ImageArray
    shots: dict

    def rows(self, part: str) -> np.ndarray:
        """Positions (into ``frame`` and ``images``) of the readable rows of one part."""
        mask = (self.frame["part"] == part).to_numpy() & self.images.ok.numpy()
        return np.flatnonzero(mask)

    def analysis_samples(self) -> tuple[pd.DataFrame, object]:
        """The source and target test rows, with their decoded images, for the analysis."""
        rows = np.concatenate([self.rows("source_test"), self.rows("target_test")])
        samples = self.frame.iloc[rows].assign(sample=rows, path=lambda d: d["abspath"])
        cols = ["sample", "path", "domain", "role", "split", "label", "y", "attack", "video",
                "subject"]  # fmt: skip
        return samples[cols].reset_index(drop=True), self.images.images[rows]


def load_train_data(cfg: RunConfig, run: Run) -> TrainData:
    """Read, split, sample shots and decode the images (cached in the store's ``.cache``)."""
    run.update_status(message="preparing the data")
    ensure_preset_data(cfg.data)
    frame, shots = protocol_parts(load_manifests([Path(p) for p in cfg.data]), cfg)
    run.write_json("shots", shots)
    cache = run.path.parent / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    images = load_images(frame, cfg.image_size, cache_dir=cache, log=run.log)
    counts = frame.groupby("part").size().to_dict()
    run.log("data: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    data = TrainData(frame, images, shots)
    warnings = data_warnings(data)
    for text in warnings:
        run.log(f"warning: {text}")
    run.update_status(warnings=warnings)
    _check_target_test(data)
    return data


def clamp_batch(cfg: RunConfig, data: TrainData, log) -> RunConfig:
    """The config with its batch size clamped to the larger training part (a batch larger than
    the data only repeats images and costs memory); the clamp is logged."""
    n = max(len(data.rows("source_train")), len(data.rows("target_train")))
    if n == 0 or cfg.batch_size <= n:
        return cfg
    log(f"batch size {cfg.batch_size} exceeds the {n} training images: using {max(2, n)}")
    return cfg.replace(batch_size=max(2, n))


def data_warnings(data: TrainData) -> list[str]:
    """What makes this run's results weaker without stopping it: repeated training images and
    images that are missing or unreadable (skipped)."""
    out = []
    train = data.frame["part"].isin(["source_train", "target_train"]).to_numpy()
    repeats = int(data.frame.loc[train, "abspath"].duplicated().sum())
    if repeats:
        out.append(
            f"{repeats} training row(s) repeat an image listed earlier, so it weighs more; "
            "run `python -m fascore validate` on the manifest"
        )
    skipped = int((~data.images.ok).sum())
    if skipped:
        out.append(
            f"{skipped} of {len(data.frame)} image(s) are missing or unreadable and were skipped; "
            "run `python -m fascore validate` on the manifest"
        )
    return out


def _check_target_test(data: TrainData) -> None:
    """Stop before training when the target test split cannot give metrics."""
    labels = set(data.frame["label"].iloc[data.rows("target_test")])
    if len(labels) < 2:
        have = f"{'/'.join(sorted(labels))} images only" if labels else "no readable image"
        raise FascoreError(
            f"the target domain's test split has {have}: its metrics need live and spoof images."
            " Nothing was trained; fix the manifest (`python -m fascore validate`)"
        )


def target_metrics_problem(run: Run) -> str | None:
    """Why a finished run has no target-test metrics (so it must not read ``done``), or None."""
    final = run.read_json("final")
    if isinstance(final, dict) and isinstance(final.get("target_test"), dict):
        return None
    scores = run.read_table("scores")
    if scores is None:
        return "no target metrics: the run wrote no scores"
    missing = []
    for role, split in (("target", "test"), ("target", "dev"), ("source", "dev")):
        sub = scores[(scores["role"] == role) & (scores["split"] == split)]
        if sub["label"].nunique() < 2:
            got = "/".join(sorted(sub["label"].unique())) or "no"
            missing.append(f"the {role} {split} split has {got} scored images")
    reason = "; ".join(missing) or "the metrics could not be computed"
    return (
        f"no target metrics: {reason}, and the threshold's dev split and the test split need "
        "live and spoof images. Fix the manifest's splits (`python -m fascore validate`)"
    )


def batch_streams(
    cfg: RunConfig, method, data: TrainData, device, shard: tuple[int, int] = (0, 1)
) -> list:
    """Infinite seeded batch streams: [source or None, target or None]; on CUDA the uint8 cache
    moves to the GPU once (when it fits) and batches come in ``channels_last``; with several
    processes each rank takes its ``shard`` (rank, world) of every global batch."""
    images = data.images.on_device(device)

    def stream(part: str, salt: int) -> FaceBatches:
        return FaceBatches(
            images,
            data.frame["y"].to_numpy(),
            data.rows(part),
            batch_size=cfg.batch_size,
            augment=cfg.augment,
            infinite=True,
            seed=cfg.seed * 1000 + salt,
            device=device,
            shard=shard,
            channels_last=device.type == "cuda",
        )

    return [
        stream("source_train", 1) if method.uses_source else None,
        stream("target_train", 2) if method.uses_target else None,
    ]


def steps_per_epoch(cfg: RunConfig, data: TrainData) -> int:
    """One pass over the larger training stream, so every method gets the same step budget."""
    if cfg.steps_per_epoch:
        return cfg.steps_per_epoch
    n = max(len(data.rows("source_train")), len(data.rows("target_train")))
    return max(1, math.ceil(n / cfg.batch_size))
