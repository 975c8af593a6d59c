"""Few-shot sampling of the target domain's labelled training presentations.

The paper's setting: the target domain offers only a few labelled *presentations* (videos), so
shots are whole videos (all their frames), never single frames, and they come from the target's
train split only. Choices depend on the seed alone, not on row order, and are nested: for one
seed, the k shots are a subset of the k + 1 shots, so learning curves over k compare like with like.
"""

from __future__ import annotations

from itertools import zip_longest

import numpy as np
import pandas as pd

from fascore.data.manifest import LABELS
from fascore.errors import FascoreError

UNITS = ("video", "subject")


def _shuffled(items: list[str], rng: np.random.Generator) -> list[str]:
    """A seeded permutation of ``sorted(items)`` (sorting makes it independent of row order)."""
    ordered = sorted(items)
    return [ordered[i] for i in rng.permutation(len(ordered))]


def _video_table(train: pd.DataFrame) -> pd.DataFrame:
    """One row per video: label, attack, subject; a video with several labels is an error."""
    g = train.groupby("video", sort=True)
    mixed = g["label"].nunique()
    if (mixed > 1).any():
        names = ", ".join(map(str, mixed[mixed > 1].index[:5]))
        raise FascoreError(
            f"video(s) {names} mix live and spoof rows; run `python -m fascore validate`"
        )
    return g[["label", "attack", "subject"]].first()


def _round_robin(videos: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    """Spoof videos ordered so that any prefix spreads over PAI species as evenly as possible:
    one video of each species (in a seeded species order), then a second of each, and so on."""
    species = _shuffled(videos["attack"].unique().tolist(), rng)
    queues = [_shuffled(videos.index[videos["attack"] == s].tolist(), rng) for s in species]
    return [v for round_ in zip_longest(*queues) for v in round_ if v is not None]


def _pick_videos(table: pd.DataFrame, k: int, rng: np.random.Generator) -> list[str]:
    """k videos per class: live at random, spoof round-robin over PAI species."""
    live = table.index[table["label"] == "live"].tolist()
    spoof = table[table["label"] == "spoof"]
    if k > len(live) or k > len(spoof):
        raise FascoreError(
            f"asked for {k} video(s) per class but the target's train split has "
            f"{len(live)} live and {len(spoof)} spoof video(s); use --shots "
            f"{min(len(live), len(spoof))} or fewer"
        )
    return _shuffled(live, rng)[:k] + _round_robin(spoof, rng)[:k]


def _pick_subjects(table: pd.DataFrame, k: int, rng: np.random.Generator) -> list[str]:
    """Every video of k subjects; subjects with both live and spoof videos come first, as a
    real enrolment would record both, then the rest (each group in seeded order)."""
    n_labels = table.groupby("subject")["label"].nunique()
    both = _shuffled(n_labels.index[n_labels == len(LABELS)].astype(str).tolist(), rng)
    rest = _shuffled(n_labels.index[n_labels < len(LABELS)].astype(str).tolist(), rng)
    if k > len(both) + len(rest):
        raise FascoreError(
            f"asked for {k} subject(s) but the target's train split has {len(n_labels)}; "
            f"use --shots {len(n_labels)} or fewer"
        )
    chosen = set((both + rest)[:k])
    return table.index[table["subject"].astype(str).isin(chosen)].tolist()


def shot_rng(seed: int, episode: int = 0) -> np.random.Generator:
    """The generator of one shot draw: the seed's own for episode 0 (the draw every run made
    before episodes existed), an independent stream per ``(seed, episode)`` otherwise."""
    return np.random.default_rng(seed if episode == 0 else [seed, episode])


def sample_shots(
    df: pd.DataFrame, k: int | None, *, unit: str = "video", seed: int = 0, episode: int = 0
) -> tuple[pd.DataFrame, dict]:
    """The target domain's labelled shots: rows of whole videos from its train split.

    ``unit="video"``: k presentations per class (live, spoof); ``unit="subject"``: all videos of
    k subjects; ``k=None``: the whole train split; ``k=0``: none. ``episode`` picks one of the
    seed's independent draws (``shot_rng``): a sweep's episodes are such draws, the same for every
    method. Returns the rows (original order and index) and a record {unit, k, seed, episode,
    videos, subjects, n_frames, per_class, attacks}.
    """
    if unit not in UNITS:
        raise FascoreError(f"shot unit must be one of {', '.join(UNITS)}, not {unit!r}")
    if k is not None and k < 0:
        raise FascoreError(f"the number of shots must be >= 0 (or all), not {k}")
    domains = sorted(df["domain"].unique())
    if len(domains) > 1:
        raise FascoreError(
            f"few-shot sampling takes one target domain's rows, got {', '.join(domains)}"
        )
    train = df[df["split"] == "train"]
    if train.empty:
        raise FascoreError("the target domain has no train split to draw labelled shots from")
    table = _video_table(train)
    rng = shot_rng(seed, episode)
    if k is None:
        videos = table.index.tolist()
    elif unit == "video":
        videos = _pick_videos(table, k, rng)
    else:
        videos = _pick_subjects(table, k, rng)
    subset = train[train["video"].isin(videos)]
    record = _record(subset, table.loc[sorted(videos)], unit, k, seed)
    return subset, {**record, "episode": episode}


def _record(
    subset: pd.DataFrame, chosen: pd.DataFrame, unit: str, k: int | None, seed: int
) -> dict:
    """What was sampled, JSON-friendly, for the run folder."""
    spoof = chosen[chosen["label"] == "spoof"]
    return {
        "unit": unit,
        "k": k,
        "seed": seed,
        "videos": [str(v) for v in chosen.index],
        "subjects": sorted({str(s) for s in chosen["subject"]}),
        "n_frames": len(subset),
        "per_class": {lab: int((chosen["label"] == lab).sum()) for lab in LABELS},
        "attacks": {str(a): int(n) for a, n in spoof["attack"].value_counts().sort_index().items()},
    }
