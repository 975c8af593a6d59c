"""Few-shot sampling: whole videos from the train split, seeded, nested, spread over PAI species."""

from __future__ import annotations

import pandas as pd
import pytest

from fascore.data.fewshot import sample_shots
from fascore.errors import FascoreError

#: each train subject's spoof videos (all have one live video); 3 print, 3 replay, 1 mask
SPOOFS = {
    "s0": ["print", "print"],
    "s1": ["print", "replay"],
    "s2": ["replay", "replay"],
    "s3": ["mask"],
    "s4": [],
    "s5": [],
}


def target_rows() -> pd.DataFrame:
    """One domain: 6 train subjects with 3-frame videos (SPOOFS), one video each in dev, test."""
    rows = []
    for s, attacks in SPOOFS.items():
        videos = [("live", "none", f"live-{s}")]
        videos += [("spoof", a, f"{a}-{s}-{j}") for j, a in enumerate(attacks)]
        for label, attack, video in videos:
            rows += [(f"{video}_{f}.png", label, attack, "T", s, video, "train") for f in range(3)]
    for split in ("dev", "test"):
        for label, attack in (("live", "none"), ("spoof", "print")):
            video = f"{split}-{label}"
            rows += [(f"{video}.png", label, attack, "T", f"{split}-s", video, split)]
    cols = ["path", "label", "attack", "domain", "subject", "video", "split"]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture
def df() -> pd.DataFrame:
    return target_rows()


def videos_of(sub: pd.DataFrame, label: str) -> set[str]:
    return set(sub.loc[sub["label"] == label, "video"])


def test_k_videos_per_class_whole_and_from_train(df) -> None:
    sub, rec = sample_shots(df, 2, seed=0)
    assert len(videos_of(sub, "live")) == 2 and len(videos_of(sub, "spoof")) == 2
    assert set(sub["split"]) == {"train"}
    chosen = df[df["video"].isin(sub["video"])]
    assert chosen.index.equals(sub.index)  # every frame of a chosen video, in the original order
    assert rec["unit"] == "video" and rec["k"] == 2 and rec["seed"] == 0
    assert sorted(rec["videos"]) == sorted(set(sub["video"])) and rec["n_frames"] == len(sub) == 12
    assert rec["subjects"] == sorted(set(sub["subject"]))
    assert rec["per_class"] == {"live": 2, "spoof": 2}


@pytest.mark.parametrize("seed", range(4))
def test_spoof_shots_spread_over_species(df, seed) -> None:
    _, rec3 = sample_shots(df, 3, seed=seed)
    assert rec3["attacks"] == {"mask": 1, "print": 1, "replay": 1}
    _, rec5 = sample_shots(df, 5, seed=seed)
    assert rec5["attacks"] == {"mask": 1, "print": 2, "replay": 2}  # only one mask video exists


def test_seeded_order_free_and_nested(df) -> None:
    shuffled = df.sample(frac=1, random_state=7)
    for seed in range(3):
        a, ra = sample_shots(df, 3, seed=seed)
        _, rb = sample_shots(shuffled, 3, seed=seed)
        assert ra["videos"] == rb["videos"]
        _, small = sample_shots(df, 2, seed=seed)
        assert set(small["videos"]) < set(ra["videos"])
    picks = {tuple(sample_shots(df, 1, seed=s)[1]["videos"]) for s in range(8)}
    assert len(picks) > 1


def test_all_and_none(df) -> None:
    sub, rec = sample_shots(df, None)
    assert sub.equals(df[df["split"] == "train"]) and rec["k"] is None
    empty, rec0 = sample_shots(df, 0)
    assert empty.empty and rec0["videos"] == [] and rec0["n_frames"] == 0


def test_too_many_shots_says_what_exists(df) -> None:
    with pytest.raises(FascoreError, match="6 live and 7 spoof"):
        sample_shots(df, 7)
    with pytest.raises(FascoreError, match="has 6"):
        sample_shots(df, 7, unit="subject")


def test_subject_unit_takes_all_their_videos_both_classes_first(df) -> None:
    sub, rec = sample_shots(df, 2, unit="subject", seed=0)
    assert len(rec["subjects"]) == 2
    train = df[df["split"] == "train"]
    assert sub.index.equals(train.index[train["subject"].isin(rec["subjects"])])
    for seed in range(5):  # subjects s0..s3 have both classes and come before s4, s5
        _, r = sample_shots(df, 4, unit="subject", seed=seed)
        assert r["subjects"] == ["s0", "s1", "s2", "s3"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": -1}, ">= 0"),
        ({"k": 1, "unit": "frame"}, "video, subject"),
    ],
)
def test_bad_arguments(df, kwargs, match) -> None:
    with pytest.raises(FascoreError, match=match):
        sample_shots(df, **kwargs)


def test_bad_inputs(df) -> None:
    two = pd.concat([df, df.assign(domain="U", video=df["video"] + "u")])
    with pytest.raises(FascoreError, match="one target domain"):
        sample_shots(two, 1)
    with pytest.raises(FascoreError, match="no train split"):
        sample_shots(df[df["split"] != "train"], 1)
    mixed = df.copy()
    mixed.loc[0, "label"] = "spoof"
    with pytest.raises(FascoreError, match="live-s0"):
        sample_shots(mixed, 1)


def test_episodes_are_independent_seeded_draws(df) -> None:
    """Episode 0 is the seed's own draw; other episodes differ from it and from each other, and
    each is reproducible (every method of a sweep sees the same episode)."""
    draw = lambda e: sample_shots(df, 2, seed=3, episode=e)[1]["videos"]  # noqa: E731
    assert draw(0) == sample_shots(df, 2, seed=3)[1]["videos"]
    assert draw(1) == draw(1) and sample_shots(df, 2, seed=3, episode=1)[1]["episode"] == 1
    assert len({tuple(draw(e)) for e in range(6)}) > 3
