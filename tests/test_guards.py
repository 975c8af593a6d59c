"""Training guards and label budgets (issue 9): subject-disjoint splits, a diverged loss stops
the run, selection at the reported scoring level, exact labels, and both regimes per run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fascore import metrics
from fascore.config import RunConfig
from fascore.data.manifest import read_manifest
from fascore.errors import FascoreError
from fascore.store.runs import RunStore
from fascore.train import loop as training
from fascore.train.build import build_model
from fascore.train.methods import METHODS
from fascore.train.scoring import dev_summary, predict_scores
from fascore.train.trainset import load_train_data
from tests.helpers import stripe_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return stripe_manifest(tmp_path_factory.mktemp("stripes"))


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


def _cfg(manifest, **kw) -> RunConfig:
    base = dict(data=(str(manifest),), epochs=2, batch_size=16, analysis=False, n_boot=20,
                device="cpu", method="source_only", shots=0, select="source_dev")  # fmt: skip
    return RunConfig(**{**base, **kw})


def _edited(manifest, tmp_path, edit) -> str:
    """An edited copy of the manifest beside it (image paths must stay inside its folder)."""
    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    out = manifest.parent / f"edited-{tmp_path.parent.name}-{tmp_path.name}.csv"
    edit(df).to_csv(out, index=False)
    return str(out)


def test_a_subject_in_two_splits_is_an_error(manifest, store, tmp_path):
    def leak(df):  # a source test subject also in the source train split
        train_subject = df.loc[(df["domain"] == "studio") & (df["split"] == "train"), "subject"]
        df.loc[(df["domain"] == "studio") & (df["split"] == "test"), "subject"] = (
            train_subject.iloc[0]
        )
        return df

    cfg = _cfg(manifest, data=(_edited(manifest, tmp_path, leak),))
    with pytest.raises(
        FascoreError, match="subject.*more than one split.*studio-0 \\(test/train\\)"
    ):
        training.train(cfg, store, progress=False)
    assert store.run(cfg.run_id()).state() == "failed"


@pytest.mark.slow
def test_a_non_finite_loss_stops_the_run_and_keeps_its_checkpoints(manifest, store, monkeypatch):
    cls = METHODS.get("source_only")
    real, calls = cls.update, {"n": 0}
    steps = 2

    def diverge_in_epoch_2(self, batch):
        calls["n"] += 1
        logs = real(self, batch)
        return {**logs, "ce": math.nan} if calls["n"] > steps else logs

    monkeypatch.setattr(cls, "update", diverge_in_epoch_2)
    cfg = _cfg(manifest, epochs=3, steps_per_epoch=steps)
    with pytest.raises(FascoreError, match="diverged at epoch 2, step 1: ce = nan"):
        training.train(cfg, store, progress=False)
    run = store.run(cfg.run_id())
    assert run.state() == "failed" and "diverged" in run.status()["message"]
    assert run.has("checkpoint") and run.has("best") and not run.has("final")
    assert [m["epoch"] for m in run.metrics()] == [1]


@pytest.mark.parametrize("level", ["video", "frame"])
def test_selection_uses_the_reported_scoring_level(manifest, store, level):
    cfg = _cfg(manifest, level=level)
    run = store.run(cfg.run_id())
    run.write_config(cfg.to_dict())
    data = load_train_data(cfg, run)
    model, _ = build_model(cfg, None)
    summary = dev_summary(model, data, "source_dev", "cpu", level)
    rows = data.rows("source_dev")
    frames = data.frame.iloc[rows]
    units = metrics.ScoreSet(frames["y"].to_numpy(),
                             predict_scores(model, data, rows, "cpu"),
                             video=frames["video"].to_numpy())  # fmt: skip
    if level == "video":
        units = metrics.video_scores(units)
        assert len(units) == frames["video"].nunique() < len(frames)
    assert summary["level"] == level
    assert summary["eer"] == pytest.approx(metrics.eer(units.y, units.score)[0])


def test_labels_are_exactly_live_spoof_or_0_1(manifest, tmp_path):
    def codes(df):
        df["label"] = df["label"].map({"live": "0", "spoof": "1"})
        return df

    df = read_manifest(_edited(manifest, tmp_path / "a", codes))
    assert (
        set(df["label"]) == {"live", "spoof"}
        and df["y"].tolist() == (df["label"] == "spoof").tolist()
    )

    def floats(df):
        df["label"] = df["label"].map({"live": "0.0", "spoof": "1.0"})
        return df

    with pytest.raises(FascoreError, match="unknown label"):
        read_manifest(_edited(manifest, tmp_path / "b", floats))
    with pytest.raises(FascoreError, match="integers 1 \\(spoof\\) and 0 \\(live\\)"):
        metrics.ScoreSet(np.array([0.0, 1.0, 0.7]), np.array([0.1, 0.9, 0.5]))


@pytest.mark.slow
def test_every_run_reports_both_regimes_with_their_label_budgets(manifest, store):
    teacher = training.train(_cfg(manifest), store, progress=False)
    student = training.train(
        _cfg(manifest, method="finetune", teacher=teacher.id, shots=1, select="last"),
        store, progress=False,
    )  # fmt: skip
    final = student.read_json("final")
    assert final["regime"] == "few-shot" and set(final["regimes"]) == {"few-shot", "target-dev"}
    few, dev = final["regimes"]["few-shot"], final["regimes"]["target-dev"]
    assert few["label_budget"]["train"] == {"images": 6, "videos": 2}  # 1 live + 1 spoof video
    assert few["label_budget"]["extra"] == {"images": 0, "videos": 0}
    assert dev["label_budget"]["extra"] == {"images": 9, "videos": 3}
    assert few["selection"] == "last" and few["selected_epoch"] == 2
    assert dev["selection"] == "target_dev"
    # the few-shot headline uses the shots' midpoint; the source dev EER threshold of the same
    # (video-level) scores is reported beside it
    scores = student.read_table("scores")
    src_dev = metrics.video_scores(
        scores[(scores["role"] == "source") & (scores["split"] == "dev")]
    )
    assert few["thresholds"]["source_dev"]["threshold"] == pytest.approx(
        metrics.eer(src_dev.y, src_dev.score)[1]
    )
    assert few["threshold_rule"] == "shots"
    assert final["target_test"] == few["target_test"]
    assert teacher.read_json("final")["regime"] == "zero-shot"
