"""Embed a run's samples with its models and write the analysis files of its run folder.

``analyse_run`` (called once at the end of training, or by ``python -m fascore analyse``) writes
``embeddings``, ``embedding_index``, ``alignment``, ``projection`` and ``errors``.
``EpochTracker`` embeds a small fixed subset at every evaluation (``epoch_embeddings``) and, at
the end, writes the per-epoch MMD into ``alignment`` and the per-epoch maps into
``epoch_projection``. Both merge into ``alignment.json`` key by key, so either may run first.

Per-epoch maps use one joint fit per view over all epochs (PCA + UMAP on the stacked points):
coordinates are then comparable from epoch to epoch, so an animation shows points moving in one
map rather than a sequence of unrelated layouts.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from fascore.data.images import normalize
from fascore.eval.analysis.alignment import (
    KERNEL,
    VIEWS,
    domain_statistics,
    headline_view,
    mmd2,
    sample_sides,
    views_for,
)
from fascore.eval.analysis.epoch_scores import pack_scores, unpack_scores
from fascore.eval.analysis.error_sets import error_counts, error_table, run_thresholds
from fascore.eval.analysis.gradcam import eval_mode, spoof_probability, to_unit
from fascore.eval.analysis.projection import META, projection_table, view_points
from fascore.store.runs import Run

INDEX_COLUMNS = ["sample", "path", "domain", "role", "split", "label", "attack", "video"]
N_PER_SIDE = 1000  # statistics and maps use at most this many source and target rows (seeded)
N_PERM = 200  # permutations per MMD test
BATCH = 256
#: the per-epoch maps show at most this many epochs, evenly spaced, first and last included;
#: the per-epoch MMD² covers every epoch (a joint UMAP's cost grows with its points)
MAP_EPOCHS = 8
#: keys of alignment.json written by the per-epoch tracker (analyse_run keeps them, and back)
EPOCH_KEYS = ("per_epoch", "epoch_sampling", "epoch_projection")


def embed(
    model: nn.Module, images: torch.Tensor, *, batch_size: int = BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, H, W) -> embeddings (N, D) float32 and P(spoof) (N,) as numpy.

    Images are resized to ``model.input_size`` when it differs and normalised as in training;
    the model runs in eval mode without gradients, and each module's mode is restored after.
    """
    device = next(model.parameters()).device
    size = getattr(model, "input_size", None) or int(images.shape[-1])
    zs, ps = [], []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = normalize(to_unit(images[start : start + batch_size], size)).to(device)
            z = model.features(x)
            ps.append(spoof_probability(model.head(z)).cpu())
            zs.append(z.float().cpu())
    if not zs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return torch.cat(zs).numpy(), torch.cat(ps).numpy()


def merge_alignment(run: Run, update: dict, keep: tuple[str, ...]) -> dict:
    """Write ``update`` into alignment.json, keeping the existing values of the ``keep`` keys."""
    old = run.read_json("alignment") or {}
    merged = {**update, **{k: old[k] for k in keep if k in old}}
    run.write_json("alignment", merged)
    return merged


def _check(models: dict, samples: pd.DataFrame, images: torch.Tensor) -> None:
    if not models:
        raise ValueError("analyse_run needs at least one model ('teacher' and/or 'student')")
    if len(samples) != len(images):
        raise ValueError(f"{len(samples)} sample rows but {len(images)} images")
    missing = [c for c in INDEX_COLUMNS + ["y"] if c not in samples.columns]
    if missing:
        raise ValueError(f"samples lack column(s): {', '.join(missing)}")


def project_views(emb: dict, index: pd.DataFrame, *, method: str, seed: int):
    src, tgt = sample_sides(index, N_PER_SIDE, seed)
    tables, infos = [], {}
    for view in views_for(emb):
        z, rows = view_points(emb, index[META], view, src, tgt)
        table, infos[view] = projection_table(z, rows, view, method=method, seed=seed)
        tables.append(table)
    return pd.concat(tables, ignore_index=True), {"n_per_side": N_PER_SIDE, "views": infos}


def _write_errors(run: Run, models: dict, index: pd.DataFrame, scores: dict, threshold) -> dict:
    """Write the error sets; return their thresholds and counts for alignment.json."""
    thresholds = run_thresholds(run, models, threshold)
    errors = error_table(index, scores, thresholds)
    run.write_table("errors", errors)
    return {"thresholds": thresholds, "counts": error_counts(errors)}


def analyse_run(
    run: Run,
    models: dict[str, nn.Module],
    samples: pd.DataFrame,
    images: torch.Tensor,
    *,
    device: str = "cpu",
    umap: bool = True,
    seed: int = 0,
    threshold: float | None = None,
) -> dict:
    """Embeddings, alignment statistics, 2-D maps and error sets of a finished run.

    ``models``: "teacher" and, for a student run, "student" (``FASModel``s). ``samples``: one row
    per image (sample, path, domain, role, split, label, y, attack, video); ``images`` uint8
    (N, 3, H, W) aligned with it. ``threshold`` overrides the run model's target threshold from
    final.json. Statistics run on ``device``. Returns the alignment document as written.
    """
    _check(models, samples, images)
    t0 = time.perf_counter()
    index = samples.reset_index(drop=True)
    emb, scores = {}, {}
    for name, model in models.items():
        emb[name], scores[name] = embed(model, images)
    run.write_arrays("embeddings", {k: v.astype(np.float16) for k, v in emb.items()})
    run.write_table("embedding_index", index[INDEX_COLUMNS])
    t1 = time.perf_counter()
    stats = domain_statistics(
        emb, index, n_per_side=N_PER_SIDE, n_perm=N_PERM, seed=seed, device=device
    )
    t2 = time.perf_counter()
    table, projection = project_views(emb, index, method="umap" if umap else "pca", seed=seed)
    run.write_table("projection", table)
    t3 = time.perf_counter()
    stats["sampling"]["projection"] = "umap" if umap else "pca (umap off)"
    doc = {
        **stats,
        "projection": projection,
        "errors": _write_errors(run, models, index, scores, threshold),
        "timing_s": {
            "embed": round(t1 - t0, 3),
            "statistics": round(t2 - t1, 3),
            "projection": round(t3 - t2, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    return merge_alignment(run, doc, keep=EPOCH_KEYS)


def balanced_subset(samples: pd.DataFrame, n_per_domain: int, seed: int = 0) -> np.ndarray:
    """Sorted row positions: per role (source, target) up to ``n_per_domain // 2`` live and as
    many spoof rows, seeded; a group with fewer rows gives all it has."""
    rng = np.random.default_rng(seed)
    picked = []
    for role in ("source", "target"):
        for label in ("live", "spoof"):
            rows = np.flatnonzero(
                (samples["role"].to_numpy() == role) & (samples["label"].to_numpy() == label)
            )
            k = min(len(rows), n_per_domain // 2)
            picked.append(rng.choice(rows, k, replace=False) if k < len(rows) else rows)
    return np.sort(np.concatenate(picked)).astype(int)


def _epoch_mmd(emb: dict[str, np.ndarray], roles: np.ndarray, views: list[str]) -> dict:
    """{view: MMD²} of one epoch's embeddings (n, D) per model; None where a side is too small."""
    src, tgt = roles == "source", roles == "target"
    out = {}
    for view in views:
        a, b = VIEWS[view]
        ok = src.sum() >= 2 and tgt.sum() >= 2
        out[view] = mmd2(emb[a][src], emb[b][tgt]) if ok else None
    return out


def pack_epochs(
    epochs: list[int],
    arrays: dict[str, list[np.ndarray]],
    meta: pd.DataFrame,
    scores: dict[str, list[np.ndarray]] | None = None,
) -> dict:
    """The epoch_embeddings file: ``epochs`` (E,), one (E, n, D) float16 array per model, the
    models' P(spoof) as ``score_<model>`` (E, n) float32 when ``scores`` are given
    (``epoch_scores``) and the subset's metadata as ``meta_<column>`` (n,) arrays (plain
    strings: no pickles)."""
    out = {"epochs": np.asarray(epochs, dtype=np.int64)}
    out.update({m: np.stack(v).astype(np.float16) for m, v in arrays.items()})
    out.update(pack_scores(scores or {}))
    out["meta_sample"] = meta["sample"].to_numpy().astype(np.int64)
    out.update({f"meta_{c}": meta[c].astype(str).to_numpy().astype(str) for c in META[1:]})
    return out


def unpack_epochs(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict, pd.DataFrame]:
    """Inverse of ``pack_epochs``: epochs (E,), {model: (E, n, D) float32}, metadata frame."""
    meta = pd.DataFrame({c: arrays[f"meta_{c}"] for c in META})
    models = {k: v.astype(np.float32) for k, v in arrays.items() if k in ("teacher", "student")}
    return arrays["epochs"], models, meta


class EpochTracker:
    """Embeds a fixed, seeded, balanced subset of the analysis samples at every evaluation.

    The subset holds up to ``n_per_domain`` rows per role (half live, half spoof). ``update``
    stores the embeddings and each model's P(spoof) (``epoch_embeddings``) and returns the headline MMD² (``aligned``:
    teacher on source vs student on target; ``shift`` for a teacher-only run) for the log.
    A tracker built for a resumed run keeps the epochs already stored before the resumed one.
    """

    def __init__(
        self,
        run: Run,
        samples: pd.DataFrame,
        images: torch.Tensor,
        *,
        n_per_domain: int = 128,
        seed: int = 0,
    ) -> None:
        rows = balanced_subset(samples.reset_index(drop=True), n_per_domain, seed)
        self.run, self.seed = run, seed
        self.meta = samples.reset_index(drop=True).iloc[rows][META].reset_index(drop=True)
        self.images = torch.as_tensor(images)[torch.as_tensor(rows, dtype=torch.long)]
        self.epochs: list[int] = []
        self.arrays: dict[str, list[np.ndarray]] = {}
        self.scores: dict[str, list[np.ndarray]] = {}
        self._frozen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        old = run.read_arrays("epoch_embeddings")
        if old is not None and np.array_equal(old.get("meta_sample"), self.meta["sample"]):
            epochs, models, _ = unpack_epochs(old)
            self.epochs = [int(e) for e in epochs]
            self.arrays = {m: list(v) for m, v in models.items()}
            stored = unpack_scores(old)  # a file from before per-epoch scores: NaN (unknown)
            blank = np.full((len(epochs), len(self.meta)), np.nan, np.float32)
            self.scores = {m: list(stored.get(m, blank)) for m in models}

    def update(self, epoch: int, models: dict[str, nn.Module]) -> float | None:
        """Embed the subset with ``models`` (eval mode, no grad, modes restored) after ``epoch``."""
        keep = [i for i, e in enumerate(self.epochs) if e < epoch]
        if set(self.arrays) != set(models):
            keep, self.arrays, self.scores = [], {m: [] for m in models}, {m: [] for m in models}
        self.epochs = [self.epochs[i] for i in keep] + [int(epoch)]
        # rounded as stored, so the value logged now equals the one finish() recomputes
        out = {name: self._embed(name, model) for name, model in models.items()}
        emb = {name: z for name, (z, _) in out.items()}
        for name, (z, p) in out.items():
            self.arrays[name] = [self.arrays[name][i] for i in keep] + [z]
            self.scores[name] = [self.scores[name][i] for i in keep] + [p]
        # uncompressed: rewritten every epoch, and float16 features barely compress (~2x slower
        # than the whole evaluation for ~1.8x the bytes)
        self.run.write_arrays(
            "epoch_embeddings",
            pack_epochs(self.epochs, self.arrays, self.meta, self.scores),
            compress=False,
        )
        view = headline_view(views_for(emb))
        return _epoch_mmd(emb, self.meta["role"].to_numpy(), [view])[view] if view else None

    def _embed(self, name: str, model: nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """The subset's embeddings by ``model``, rounded to float16 as stored, and its P(spoof)
        (n,) float32. A frozen model (no parameter that trains: a student's teacher) is
        embedded once per process."""
        frozen = not any(p.requires_grad for p in model.parameters())
        if frozen and name in self._frozen:
            return self._frozen[name]
        z, p = embed(model, self.images)
        out = (z.astype(np.float16).astype(np.float32), p.astype(np.float32))
        if frozen:
            self._frozen[name] = out
        return out

    def finish(self, umap: bool = True) -> dict | None:
        """Per-epoch MMD into alignment.json and per-epoch maps into ``epoch_projection``."""
        return finish_epochs(self.run, umap=umap, seed=self.seed)


def map_epochs(n: int, most: int = MAP_EPOCHS) -> np.ndarray:
    """Indices of the epochs (of ``n`` tracked) the per-epoch maps show: all when ``n <= most``,
    else ``most`` evenly spaced ones, the first and the last included."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, most)).astype(int))


def _epoch_maps(
    emb: dict[str, np.ndarray], meta: pd.DataFrame, epochs: np.ndarray, src, tgt, *, method, seed
) -> tuple[pd.DataFrame, dict]:
    """One joint map per view over every epoch's points; emb {model: (E, n, D)}."""
    tables, infos = [], {}
    for view in views_for(emb):
        parts = [
            view_points({m: v[i] for m, v in emb.items()}, meta, view, src, tgt)
            for i in range(len(epochs))
        ]
        z = np.concatenate([p[0] for p in parts])
        rows = pd.concat([p[1].assign(epoch=int(e)) for p, e in zip(parts, epochs, strict=True)])
        table, infos[view] = projection_table(z, rows, view, method=method, seed=seed)
        tables.append(table)
    return pd.concat(tables, ignore_index=True), infos


def finish_epochs(run: Run, *, umap: bool = True, seed: int = 0) -> dict | None:
    """From a run's ``epoch_embeddings``: the MMD² of every view per epoch (``per_epoch`` in
    alignment.json, ``mmd2`` = the headline view) and one joint map per view over all epochs
    (``epoch_projection``, with an ``epoch`` column). Returns the alignment document, or None
    when nothing was tracked."""
    arrays = run.read_arrays("epoch_embeddings")
    if not arrays or len(arrays.get("epochs", ())) == 0:
        return None
    epochs, emb, meta = unpack_epochs(arrays)
    views, roles = views_for(emb), meta["role"].to_numpy()
    headline = headline_view(views)
    per_epoch = []
    for i, e in enumerate(epochs):
        rec = _epoch_mmd({m: v[i] for m, v in emb.items()}, roles, views)
        per_epoch.append({"epoch": int(e), "mmd2": rec.get(headline), **rec})
    src, tgt = np.flatnonzero(roles == "source"), np.flatnonzero(roles == "target")
    shown = map_epochs(len(epochs))
    table, infos = _epoch_maps(
        {m: v[shown] for m, v in emb.items()}, meta, epochs[shown], src, tgt,
        method="umap" if umap else "pca", seed=seed,
    )  # fmt: skip
    run.write_table("epoch_projection", table)
    doc = {
        "per_epoch": per_epoch,
        "epoch_sampling": {
            "n_source": len(src),
            "n_target": len(tgt),
            "seed": seed,
            "headline": headline,
            "kernel": KERNEL["rule"],
            "balanced": "per role, half live and half spoof",
        },
        "epoch_projection": {
            "fit": f"joint over the mapped epochs (at most {MAP_EPOCHS}, evenly spaced, first "
            "and last included), one per view",
            "epochs": [int(e) for e in epochs[shown]],
            "views": infos,
        },
    }
    old = run.read_json("alignment") or {}
    return merge_alignment(run, {**old, **doc}, keep=())
