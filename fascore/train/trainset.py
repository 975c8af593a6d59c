"""The data of one run: manifests -> protocol parts -> decoded images, and the PAD evaluation.

Parts (column ``part``): ``source_train``, ``source_dev``, ``source_test`` (the source domains'
splits), ``target_train`` (only the k sampled shots), ``target_dev`` and ``target_test``. The
target's unsampled training rows are never loaded, so a method cannot see more than its shots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fascore.config import RunConfig
from fascore.data.fewshot import sample_shots
from fascore.data.images import ImageArray, load_images
from fascore.data.protocols import load_manifests
from fascore.errors import FascoreError
from fascore.eval import metrics
from fascore.runs import CancelRequested, Run, RunStore
from fascore.train import regimes
from fascore.train.methods import METHODS

#: Columns of the per-sample scores table (see docs/run-folder.md).
SCORE_COLUMNS = [
    "sample",
    "path",
    "domain",
    "role",
    "split",
    "label",
    "y",
    "attack",
    "subject",
    "video",
    "score",
]
TEACHER_WAIT_S = 2.0


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
        shots, record = sample_shots(tgt, cfg.shots, unit=cfg.shot_unit, seed=cfg.seed)
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

    def epoch_tracker(self, run: Run):
        from fascore.eval.analysis import EpochTracker

        samples, images = self.analysis_samples()
        return EpochTracker(run, samples, images, seed=int(run.config().get("seed", 0)))

    def analysis_samples(self) -> tuple[pd.DataFrame, object]:
        """The source and target test rows, with their decoded images, for the analysis."""
        rows = np.concatenate([self.rows("source_test"), self.rows("target_test")])
        samples = self.frame.iloc[rows].assign(sample=rows, path=lambda d: d["abspath"])
        cols = ["sample", "path", "domain", "role", "split", "label", "y", "attack", "video",
                "subject"]  # fmt: skip
        return samples[cols].reset_index(drop=True), self.images.images[rows]

    def evaluate(self, scores: pd.DataFrame, cfg: RunConfig, regime: str) -> dict:
        """PAD metrics of one regime (see ``fascore.train.regimes``) from one set of scores.

        The target test set is scored at the EER threshold of the regime's dev split (source dev
        for few-shot, target dev for target-dev); the source test set at the source dev's.
        Returns ``{"target_test", "source_test", "label_budget", "threshold_from"}`` (a test
        entry is missing where its dev or test split lacks a class).
        """

        def part(role: str, split: str) -> metrics.ScoreSet | None:
            sub = scores[(scores["role"] == role) & (scores["split"] == split)]
            return metrics.ScoreSet.from_frame(sub) if sub["y"].nunique() == 2 else None

        uses_target = METHODS.get(cfg.method).uses_target
        source_from = regimes.THRESHOLD_FROM[regime]
        out = {
            "threshold_from": source_from,
            "label_budget": regimes.label_budget(self.frame, regime, cfg.select, uses_target),
        }
        pairs = {
            "target_test": (part(*source_from.split("_")), part("target", "test")),
            "source_test": (part("source", "dev"), part("source", "test")),
        }
        for key, (dev, test) in pairs.items():
            if dev is not None and test is not None:
                out[key] = metrics.evaluate(
                    dev, test, level=cfg.level, n_boot=cfg.n_boot, seed=cfg.seed
                )
        return out


def load_train_data(cfg: RunConfig, run: Run) -> TrainData:
    """Read, split, sample shots and decode the images (cached in the store's ``.cache``)."""
    from fascore.jobs.demo import ensure_demo_data

    run.update_status(message="preparing the data")
    ensure_demo_data(cfg.data)
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


def score_frame(data: TrainData, predict) -> pd.DataFrame:
    """Scores of every dev and test row (source and target) from ``predict(rows) -> scores``."""
    rows = np.concatenate(
        [data.rows(p) for p in ("source_dev", "source_test", "target_dev", "target_test")]
    )
    df = data.frame.iloc[rows].assign(sample=rows, path=lambda d: d["abspath"])
    df["score"] = predict(rows) if len(rows) else []
    return df[SCORE_COLUMNS].reset_index(drop=True)


def check_teacher(cfg: RunConfig, teacher: Run) -> None:
    """Refuse a teacher run that cannot teach ``cfg``: unreadable, itself a student, trained on
    other source domains or at another image size (the CLI, ``plan_runs`` and the dashboard all
    come through here)."""
    if why := teacher.problem():
        raise FascoreError(f"teacher run {teacher.id} is unreadable: {why}")
    tcfg = teacher.config()
    method = tcfg.get("method")
    if method not in METHODS or METHODS.get(method).role != "teacher":
        raise FascoreError(
            f"run {teacher.id} ({method}) is not a teacher: pick a source_only run as --teacher"
        )
    sources = tuple(tcfg.get("source_domains") or ())
    if sources != tuple(cfg.source_domains):
        raise FascoreError(
            f"teacher {teacher.id} was trained on {'+'.join(sources) or 'nothing'}, not "
            f"{'+'.join(cfg.source_domains)}; pick a matching teacher or train a new one"
        )
    if tcfg.get("image_size") != cfg.image_size:
        raise FascoreError(
            f"teacher {teacher.id} takes {tcfg.get('image_size')}px images, this run "
            f"{cfg.image_size}px; use --image-size {tcfg.get('image_size')} or a matching teacher"
        )


def wait_for_teacher(run: Run, cfg: RunConfig, store: RunStore) -> Run | None:
    """A student waits (state queued) until its teacher run is done; None for teacher-less runs."""
    if not METHODS.get(cfg.method).needs_teacher:
        return None
    if not cfg.teacher:
        raise FascoreError(f"method {cfg.method!r} needs a teacher run: pass --teacher RUN_ID")
    teacher = store.get(cfg.teacher)
    check_teacher(cfg, teacher)
    while (state := teacher.state()) != "done":
        if state in ("failed", "cancelled", "interrupted"):
            raise FascoreError(f"teacher run {teacher.id} is {state}; resume or retrain it first")
        if run.cancel_requested():
            raise CancelRequested()
        run.update_status(state="queued", message=f"waiting for teacher {teacher.id}")
        time.sleep(TEACHER_WAIT_S)
    return teacher
