"""A fake run store for dashboard tests: plausible random results without training, in ~1 s.

``make_fake_store(root)`` writes one teacher run and ``n_students`` student runs of one experiment
(source studio → target phone) following docs/run-folder.md, through ``fascore.store.runs`` only: config,
status, metrics, scores, shots, final, embeddings, embedding_index, epoch_embeddings, projection,
epoch_projection, alignment and errors, plus a small manifest of real PNG images (thumbnails,
uploads). The metrics and analysis files are computed by the real code (``fascore.metrics``,
``fascore.data.fewshot``, ``fascore.eval.analysis``) from random scores and embeddings, so their formats are
the real ones. Students separate the target domain better than the teacher, and their embeddings
show a smaller domain shift, so every page has something to show.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fascore.config import RunConfig
from fascore.data.manifest import write_manifest, write_preprocessing
from fascore.store.runs import Run, RunStore

SOURCE, TARGET = "studio", "phone"
STUDENT_METHODS = ("distill", "mmd", "pair", "kd", "finetune", "target_only")
EXPERIMENT = "studio-to-phone-k5"
EPOCHS = 3
DIM = 16
SCORE_COLUMNS = ["sample", "path", "domain", "role", "split", "label", "y", "attack", "subject",
                 "video", "score"]  # fmt: skip


def _samples(data_dir: Path, n_videos: int, rng: np.random.Generator) -> pd.DataFrame:
    """Manifest rows (train, dev, test of both domains; 2 frames a video) with 32-px PNGs."""
    rows = []
    for domain in (SOURCE, TARGET):
        for split in ("train", "dev", "test"):
            for v in range(n_videos):
                label = "live" if v % 2 == 0 else "spoof"
                attack = "none" if label == "live" else ("print", "replay")[(v // 2) % 2]
                video = f"{domain}-{split}-v{v}"
                subject = f"{domain}-{split}-s{v // 2}"
                rows += [
                    dict(path=f"img/{video}-f{f}.png", label=label, attack=attack, domain=domain,
                         subject=subject, video=video, split=split, frame=f)
                    for f in range(2)
                ]  # fmt: skip
    df = pd.DataFrame(rows)
    (data_dir / "img").mkdir(parents=True, exist_ok=True)
    for rel, label in zip(df["path"], df["label"], strict=True):
        base = (200, 170, 150) if label == "live" else (120, 140, 200)
        pixels = np.clip(rng.normal(base, 25, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(data_dir / rel)
    write_manifest(df, data_dir)
    write_preprocessing({"generator": "tests/fakes.py", "crop": "none", "dropped": 0}, data_dir)
    df["path"] = [str((data_dir / p).resolve()) for p in df["path"]]
    df["y"] = (df["label"] == "spoof").astype(int)
    df["role"] = np.where(df["domain"] == SOURCE, "source", "target")
    return df


def _scores(samples: pd.DataFrame, sep: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """P(spoof) from logit = sep[role] * (2y - 1) + a per-video offset + per-frame noise."""
    video_offset = {v: rng.normal(0, 0.8) for v in samples["video"].unique()}
    logit = samples["role"].map(sep).to_numpy() * (2 * samples["y"].to_numpy() - 1)
    logit = logit + samples["video"].map(video_offset).to_numpy()
    logit = logit + rng.normal(0, 0.5, len(samples))
    return 1.0 / (1.0 + np.exp(-logit))


def _embeddings(samples: pd.DataFrame, shift: float, rng: np.random.Generator) -> np.ndarray:
    """(N, DIM): a class direction plus a domain offset of size ``shift`` plus noise."""
    z = rng.normal(0, 0.6, (len(samples), DIM))
    z[:, 0] += 2.0 * samples["y"].to_numpy()
    z[:, 1] += shift * (samples["role"] == "target").to_numpy()
    return z.astype(np.float32)


def _metrics(run: Run, fraction_done: float = 1.0) -> None:
    """One metrics.jsonl line per finished epoch, with losses falling and dev AUC rising."""
    for e in range(1, max(1, round(EPOCHS * fraction_done)) + 1):
        run.append_metrics({
            "epoch": e, "step": 40 * e, "time_s": 20.0 * e,
            "train": {"ce": 0.7 / e, "mmd": 0.1 / e, "pair": 0.5 / e, "total": 1.3 / e},
            "source_dev": {"auc": 0.9 + 0.02 * e, "eer": 0.12 - 0.02 * e},
            "target_dev": {"auc": 0.7 + 0.06 * e, "eer": 0.3 - 0.05 * e},
            "mmd": 0.2 / e, "selected": e == EPOCHS,
        })  # fmt: skip


def _final(run: Run, cfg: RunConfig, scored: pd.DataFrame, samples: pd.DataFrame) -> dict:
    """final.json (real ``evaluate`` output per role) and the few-shot record (real sampler)."""
    from fascore.data.fewshot import sample_shots
    from fascore.metrics import ScoreSet, evaluate
    from fascore.train import regimes
    from fascore.train.methods import METHODS

    target_train = samples[(samples["role"] == "target") & (samples["split"] == "train")]
    shots = {"unit": cfg.shot_unit, "k": 0, "videos": []}
    if cfg.shots:
        shots = sample_shots(target_train, cfg.shots, unit=cfg.shot_unit, seed=cfg.seed)[1]
    parts = samples.assign(part=samples["role"] + "_" + samples["split"])
    shot_rows = (parts["part"] == "target_train") & parts["video"].isin(shots["videos"])
    parts = parts[(parts["part"] != "target_train") | shot_rows]
    sets = {(r, s): ScoreSet.from_frame(scored[(scored["role"] == r) & (scored["split"] == s)])
            for r in ("source", "target") for s in ("dev", "test")}  # fmt: skip
    uses_target = METHODS.get(cfg.method).uses_target
    results = {}
    for regime in regimes.REGIMES:
        dev = sets[tuple(regimes.THRESHOLD_FROM[regime].split("_"))]
        name = regimes.display_name(regime, cfg.shots, uses_target)
        results[name] = {
            "regime": regime, "selection": regimes.selection_rule(regime, cfg.select),
            "selected_epoch": EPOCHS, "threshold_from": regimes.THRESHOLD_FROM[regime],
            "label_budget": regimes.label_budget(parts, regime, cfg.select, uses_target),
            "target_test": evaluate(dev, sets["target", "test"], level="video", n_boot=50),
            "source_test": evaluate(sets["source", "dev"], sets["source", "test"], level="video",
                                    n_boot=50),
        }  # fmt: skip
    head = next(iter(results))
    final = {"threshold_rule": "EER on the source dev set, applied to the test set",
             "level": "video", "selected_epoch": EPOCHS, "regime": head,
             "label_budget": results[head]["label_budget"],
             "target_test": results[head]["target_test"],
             "source_test": results[head]["source_test"], "regimes": results}  # fmt: skip
    final["shots"] = shots
    run.write_json("shots", shots)
    run.write_json("final", final)
    return final


def _analysis(run: Run, index: pd.DataFrame, emb: dict, scores: dict, rng) -> None:
    """Embedding, alignment, projection and error files through ``fascore.eval.analysis``."""
    from fascore.eval.analysis import finish_epochs
    from fascore.eval.analysis.alignment import domain_statistics
    from fascore.eval.analysis.embed import (
        EPOCH_KEYS,
        INDEX_COLUMNS,
        merge_alignment,
        pack_epochs,
        project_views,
    )
    from fascore.eval.analysis.error_sets import error_counts, error_table, run_thresholds
    from fascore.eval.analysis.projection import META

    run.write_arrays("embeddings", {k: v.astype(np.float16) for k, v in emb.items()})
    run.write_table("embedding_index", index[INDEX_COLUMNS])
    stats = domain_statistics(emb, index, n_per_side=1000, n_perm=200, seed=0)
    table, projection = project_views(emb, index, method="pca", seed=0)
    run.write_table("projection", table)
    thresholds = run_thresholds(run, list(scores))
    errors = error_table(index, scores, thresholds)
    run.write_table("errors", errors)
    stats["sampling"]["projection"] = "pca (fake store)"
    counts = error_counts(errors)
    doc = {
        **stats,
        "projection": projection,
        "errors": {"thresholds": thresholds, "counts": counts},
    }
    merge_alignment(run, doc, keep=EPOCH_KEYS)
    # per-epoch embeddings: the domain offset of the trained model shrinks epoch by epoch
    own = "student" if "student" in emb else "teacher"
    per_epoch = {m: [z + (EPOCHS - e) * 0.4 * rng.normal(0, 1, z.shape[1]) if m == own else z
                     for e in range(1, EPOCHS + 1)] for m, z in emb.items()}  # fmt: skip
    # per-epoch P(spoof): the trained model's scores move from 0.5 to their final values
    per_score = {m: [0.5 + (np.asarray(p) - 0.5) * (e / EPOCHS if m == own else 1.0)
                     for e in range(1, EPOCHS + 1)] for m, p in scores.items()}  # fmt: skip
    epochs = list(range(1, EPOCHS + 1))
    run.write_arrays("epoch_embeddings", pack_epochs(epochs, per_epoch, index[META], per_score))
    finish_epochs(run, umap=False)


def _write_run(
    run: Run,
    cfg: RunConfig,
    samples: pd.DataFrame,
    sep: dict,
    shift: dict,
    teacher: tuple[np.ndarray, np.ndarray] | None,
    rng,
) -> tuple[np.ndarray, np.ndarray]:
    """Every result file of a finished run; returns (scores, embeddings) of its own model on
    the scored samples, which its students use as their teacher's."""  # fmt: skip
    run.write_config(cfg.to_dict())
    _metrics(run)
    scored = samples[samples["split"] != "train"].reset_index(drop=True)
    scored.insert(0, "sample", np.arange(len(scored)))
    own = (_scores(scored, sep, rng), _embeddings(scored, shift["own"], rng))
    run.write_table("scores", scored.assign(score=own[0])[SCORE_COLUMNS])
    _final(run, cfg, scored.assign(score=own[0]), samples)
    if teacher is None:
        scores, emb = {"teacher": own[0]}, {"teacher": own[1]}
    else:
        scores = {"teacher": teacher[0], "student": own[0]}
        emb = {"teacher": teacher[1], "student": own[1]}
    _analysis(run, scored, emb, scores, rng)
    return own


def _write_status(run: Run, state: str, fraction: float, created: float) -> None:
    epoch = max(1, round(EPOCHS * fraction))
    run.update_status(
        state=state, pid=os.getpid() if state == "running" else None, started=created,
        finished=None if state == "running" else created + 60, message="",
        progress={"epoch": epoch, "epochs": EPOCHS, "step": int(40 * fraction), "steps": 40,
                  "fraction": fraction, "eta_s": 60 * (1 - fraction), "images_per_s": 850.0,
                  "loss": {"ce": 0.3, "mmd": 0.05, "pair": 0.2}, "mmd": 0.04},
    )  # fmt: skip


def _write_weights(run: Run, cfg: RunConfig, seed: int) -> None:
    """Seeded random weights in the trainer's ``best`` format, so Grad-CAM has a model to load."""
    import torch

    from fascore.train.models import create_model

    torch.manual_seed(seed)
    model = create_model(cfg.model, input_size=cfg.image_size, embed_layer=cfg.embed_layer)
    torch.save({"model": model.state_dict(), "epoch": EPOCHS}, run.file("best"))


def _finish(run: Run, cfg: RunConfig, weights: bool, seed: int) -> Run:
    _write_status(run, "done", 1.0, cfg.created)
    if weights:
        _write_weights(run, cfg, seed)
    run.mark_done()
    return run


def _build(
    root: Path,
    data_dir: Path,
    n_students: int,
    running: bool,
    weights: bool,
    n_videos: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    store = RunStore(root)
    store.root.mkdir(parents=True, exist_ok=True)
    samples = _samples(data_dir, n_videos, rng)
    base = RunConfig(
        data=(str(data_dir / "manifest.csv"),),
        source_domains=(SOURCE,),
        target_domain=TARGET,
        shots=5,
        epochs=EPOCHS,
        experiment=EXPERIMENT,
        n_boot=50,
        created=time.time() - 3600,
    )
    cfg = base.replace(method="source_only", shots=0, select="source_dev")
    teacher = store.run(cfg.run_id())
    taught = _write_run(
        teacher, cfg, samples, {"source": 2.5, "target": 0.4}, {"own": 2.0}, None, rng
    )
    _finish(teacher, cfg, weights, seed)
    for i, method in enumerate(STUDENT_METHODS[:n_students]):
        cfg = base.replace(method=method, teacher=teacher.id, created=base.created + 60 * (i + 1))
        sep = {"source": 2.2, "target": 1.0 + 0.3 * (method == "distill")}
        run = store.run(cfg.run_id())
        _write_run(run, cfg, samples, sep, {"own": 0.5}, taught, rng)
        _finish(run, cfg, weights, seed + i + 1)
    if running:
        _write_running(store, base.replace(method="distill", teacher=teacher.id, seed=1))


def _write_running(store: RunStore, cfg: RunConfig) -> None:
    """A student 40 % through training, its status owned by this (live) process."""
    cfg = cfg.replace(created=time.time())
    run = store.run(cfg.run_id())
    run.write_config(cfg.to_dict())
    _metrics(run, fraction_done=0.4)
    _write_status(run, "running", 0.4, cfg.created)
    run.log("epoch 1/3 ce 0.600 mmd 0.120")


_CACHE: dict[tuple, Path] = {}


def _cache_dir() -> Path:
    """This process's folder of built stores and their images (removed when it exits)."""
    if not _CACHE:
        folder = Path(tempfile.mkdtemp(prefix=f"fascore-fakes-{os.getpid()}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _CACHE[()] = folder
    return _CACHE[()]


_HELD: list = []  # the running fake runs' locks, held for the life of the test process


def make_fake_store(
    root: str | Path,
    n_students: int = 3,
    *,
    running: bool = False,
    weights: bool = False,
    n_videos: int = 10,
    seed: int = 0,
) -> list[Run]:
    """A run store at ``root``: a done teacher, ``n_students`` done students (methods from
    ``STUDENT_METHODS``), and with ``running=True`` one more student still running (its pid is
    this process, so it reads as alive). ``weights=True`` adds random ``best`` weights to every
    done run (for Grad-CAM). ``n_videos`` per domain and split. Returns the runs, teacher first.

    Each kind of store is built once per process and copied: the copies' runs point at one
    shared image folder (in the process's temporary folder), so a test may change its copy
    but not the images.
    """
    key = (n_students, running, weights, n_videos, seed)
    if key not in _CACHE:
        folder = _cache_dir()
        template = folder / f"store-{len(_CACHE)}"
        _build(template, folder / f"data-{n_videos}-{seed}", *key)
        _CACHE[key] = template
    shutil.copytree(_CACHE[key], root, dirs_exist_ok=True)
    runs = sorted(RunStore(root).runs(), key=lambda r: r.config()["created"])
    for run in runs:
        if run.status().get("state") == "running":
            _HELD.append(held := run.hold())  # this process owns it (its lock), so it is alive
            held.__enter__()
            run.update_status(pid=os.getpid())
    return runs
