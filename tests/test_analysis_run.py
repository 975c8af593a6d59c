"""The trainer's analysis hooks end to end: ``analyse_run``, ``EpochTracker``, the error sets and
``python -m fascore analyse``, on small stand-in runs and on the real tiny demo store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fascore.cli import main
from fascore.eval.analysis import EpochTracker, analyse_run
from fascore.eval.analysis.embed import (
    INDEX_COLUMNS,
    MAP_EPOCHS,
    balanced_subset,
    embed,
    finish_epochs,
    map_epochs,
    pack_epochs,
    unpack_epochs,
)
from fascore.eval.analysis.epoch_scores import unpack_scores
from fascore.eval.analysis.error_sets import error_table, run_thresholds
from fascore.eval.analysis.projection import COLUMNS
from fascore.store.runs import Run, RunStore
from fascore.train.models import create_model

N = 96


def _samples(n: int = N) -> pd.DataFrame:
    role = np.where(np.arange(n) < n // 2, "source", "target")
    label = np.where(np.arange(n) % 2 == 0, "live", "spoof")
    return pd.DataFrame(
        {
            "sample": np.arange(100, 100 + n),
            "path": [f"/img/{i}.png" for i in range(n)],
            "domain": np.where(role == "source", "studio", "phone"),
            "role": role,
            "split": "test",
            "label": label,
            "y": (label == "spoof").astype(int),
            "attack": np.where(label == "spoof", "print", "none"),
            "video": [f"v{i // 4}" for i in range(n)],
        }
    )


def _images(n: int = N) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8)
    x[n // 2 :] //= 3  # a darker target domain
    return x


def _models(student: bool = True) -> dict:
    torch.manual_seed(0)
    models = {"teacher": create_model("alexnet_mini")}
    if student:
        models["student"] = create_model("alexnet_mini")
    return models


def _run(tmp_path, run_id: str, teacher: str | None = None, thresholds=(0.5, 0.45)) -> Run:
    run = RunStore(tmp_path).run(run_id)
    run.write_config({"seed": 0, "teacher": teacher, "image_size": 64})
    run.write_json(
        "final",
        {"source_test": {"threshold": thresholds[0]}, "target_test": {"threshold": thresholds[1]}},
    )
    return run


def test_analyse_run_writes_every_file(tmp_path):
    _run(tmp_path, "teacher-run", thresholds=(0.49, 0.51))
    run = _run(tmp_path, "student-run", teacher="teacher-run")
    samples, images, models = _samples(), _images(), _models()
    doc = analyse_run(run, models, samples, images, umap=False, seed=0)
    emb = run.read_arrays("embeddings")
    assert set(emb) == {"teacher", "student"}
    assert emb["student"].shape == (N, 256) and emb["student"].dtype == np.float16
    index = run.read_table("embedding_index")
    assert list(index.columns) == INDEX_COLUMNS and index["sample"].tolist() == list(
        range(100, 196)
    )
    proj = run.read_table("projection")
    assert list(proj.columns) == COLUMNS
    assert proj.groupby("view").size().to_dict() == {"shift": N, "aligned": N, "student": N}
    aligned = proj[proj["view"] == "aligned"]
    assert set(aligned.loc[aligned["role"] == "target", "model"]) == {"student"}
    assert run.read_json("alignment") == doc
    assert list(doc["views"]) == ["shift", "aligned", "student"]
    for stats in doc["views"].values():
        assert stats["mmd2"] >= 0 and 0 < stats["p_value"] <= 1
        assert set(stats["per_class"]) == {"live", "spoof"}
        assert 0 <= stats["proxy_a_distance"] <= 2
    assert doc["sampling"]["projection"] == "pca (umap off)"
    assert doc["projection"]["views"]["shift"]["method"] == "pca"
    assert doc["errors"]["thresholds"] == {
        "student": {"source": 0.5, "target": 0.45},
        "teacher": {"source": 0.49, "target": 0.51},
    }


def test_error_sets_follow_the_thresholds(tmp_path):
    _run(tmp_path, "teacher-run", thresholds=(0.49, 0.51))
    run = _run(tmp_path, "student-run", teacher="teacher-run")
    samples, images, models = _samples(), _images(), _models()
    analyse_run(run, models, samples, images, umap=False, threshold=0.5)
    errors = run.read_table("errors")
    score = {m: embed(models[m], images)[1] for m in models}
    t = {
        "student": np.full(N, 0.5),  # source 0.5 from final.json; the argument overrides 0.45
        "teacher": np.where(samples["role"] == "source", 0.49, 0.51),
    }
    y = samples["y"].to_numpy()
    for m in models:
        fa = samples["sample"][(y == 1) & (score[m] < t[m])]
        fr = samples["sample"][(y == 0) & (score[m] >= t[m])]
        rows = errors[errors["model"] == m]
        assert sorted(rows.loc[rows["kind"] == "false_accept", "sample"]) == sorted(fa)
        assert sorted(rows.loc[rows["kind"] == "false_reject", "sample"]) == sorted(fr)
    dis = samples["sample"][
        (score["teacher"] >= t["teacher"]) != (score["student"] >= t["student"])
    ]
    assert sorted(errors.loc[errors["kind"] == "disagree", "sample"]) == sorted(dis)
    assert {"teacher_score", "student_score", "attack", "domain", "video"} <= set(errors.columns)


def test_error_table_closed_form():
    samples = _samples(8)
    scores = {"teacher": np.array([0.1, 0.9, 0.6, 0.2, 0.3, 0.8, 0.7, 0.1])}
    thresholds = {"teacher": {"source": 0.5, "target": 0.75}}
    table = error_table(samples, scores, thresholds)
    # rows 0-3 source (t=0.5), 4-7 target (t=0.75); odd rows are spoof
    assert table.set_index("sample")["kind"].to_dict() == {
        103: "false_accept",  # spoof at 0.2 < 0.5
        102: "false_reject",  # live at 0.6 >= 0.5
        107: "false_accept",  # spoof at 0.1 < 0.75
    }
    assert table.loc[table["sample"] == 107, "threshold"].item() == 0.75
    assert error_table(samples, scores, {"teacher": {}}).empty  # no threshold, no verdict


def test_teacher_only_run(tmp_path):
    run = _run(tmp_path, "teacher-run")
    doc = analyse_run(run, _models(student=False), _samples(), _images(), umap=False)
    assert list(doc["views"]) == ["shift"]
    assert set(run.read_table("projection")["view"]) == {"shift"}
    assert set(run.read_table("errors")["model"]) <= {"teacher"}
    assert run_thresholds(run, ["teacher"]) == {"teacher": {"source": 0.5, "target": 0.45}}


def test_epoch_tracker_subset_update_and_mode_restore(tmp_path):
    run = _run(tmp_path, "student-run")
    samples, images, models = _samples(), _images(), _models()
    models["teacher"].eval()
    models["student"].train()
    tracker = EpochTracker(run, samples, images, n_per_domain=16, seed=0)
    assert len(tracker.meta) == 32
    assert tracker.meta.groupby(["role", "label"]).size().tolist() == [8, 8, 8, 8]
    value = tracker.update(1, models)
    assert value > 0 and models["student"].training and not models["teacher"].training
    tracker.update(2, models)
    stored = run.read_arrays("epoch_embeddings")
    assert stored["epochs"].tolist() == [1, 2] and stored["student"].shape == (2, 32, 256)
    # a resumed run builds a new tracker: earlier epochs stay, a re-done epoch replaces its own
    again = EpochTracker(run, samples, images, n_per_domain=16, seed=0)
    assert again.epochs == [1, 2]
    again.update(2, models)
    again.update(3, models)
    assert run.read_arrays("epoch_embeddings")["epochs"].tolist() == [1, 2, 3]


def test_epoch_tracker_stores_each_models_scores_per_epoch(tmp_path):
    run = _run(tmp_path, "student-run")
    samples, images, models = _samples(), _images(), _models()
    tracker = EpochTracker(run, samples, images, n_per_domain=16, seed=0)
    for epoch in (1, 2):
        tracker.update(epoch, models)
    scores = unpack_scores(run.read_arrays("epoch_embeddings"))
    assert set(scores) == {"teacher", "student"} and scores["student"].shape == (2, 32)
    rows = np.flatnonzero(np.isin(samples["sample"], tracker.meta["sample"]))
    p = embed(models["student"], images[torch.as_tensor(rows)])[1]
    assert np.allclose(scores["student"][1], p, atol=1e-6)  # P(spoof) of the tracked rows
    assert ((scores["teacher"] >= 0) & (scores["teacher"] <= 1)).all()


def test_epoch_file_without_scores_still_reads_and_resumes(tmp_path):
    run = _run(tmp_path, "student-run")
    samples, images, models = _samples(), _images(), _models()
    tracker = EpochTracker(run, samples, images, n_per_domain=16, seed=0)
    tracker.update(1, models)
    old = {k: v for k, v in run.read_arrays("epoch_embeddings").items() if "score" not in k}
    run.write_arrays("epoch_embeddings", old, compress=False)  # as written before scores
    assert unpack_scores(run.read_arrays("epoch_embeddings")) == {}
    epochs, emb, meta = unpack_epochs(run.read_arrays("epoch_embeddings"))
    assert epochs.tolist() == [1] and emb["student"].shape == (1, 32, 256) and len(meta) == 32
    assert finish_epochs(run, umap=False)["per_epoch"][0]["epoch"] == 1
    again = EpochTracker(run, samples, images, n_per_domain=16, seed=0)  # resumed
    again.update(2, models)
    scores = unpack_scores(run.read_arrays("epoch_embeddings"))["student"]
    assert np.isnan(scores[0]).all() and not np.isnan(scores[1]).any()  # epoch 1: unknown
    assert (
        pack_epochs([1], {"student": [np.zeros((2, 3))]}, meta.head(2))
        .keys()
        .isdisjoint({"score_student"})
    )


def test_balanced_subset_when_a_group_is_short():
    samples = _samples()
    samples.loc[samples["role"] == "target", "label"] = "live"
    rows = balanced_subset(samples, 20, seed=1)
    picked = samples.iloc[rows].groupby(["role", "label"]).size().to_dict()
    assert picked == {("source", "live"): 10, ("source", "spoof"): 10, ("target", "live"): 10}


@pytest.mark.parametrize("tracker_first", [True, False])
def test_epoch_part_and_run_part_merge_in_either_order(tmp_path, tracker_first):
    run = _run(tmp_path, "student-run")
    samples, images, models = _samples(), _images(), _models()
    tracker = EpochTracker(run, samples, images, n_per_domain=16)
    logged = [tracker.update(epoch, models) for epoch in (1, 2)]
    if tracker_first:
        tracker.finish(umap=False)
        doc = analyse_run(run, models, samples, images, umap=False)
    else:
        analyse_run(run, models, samples, images, umap=False)
        doc = tracker.finish(umap=False)
    assert set(doc["views"]) == {"shift", "aligned", "student"}
    assert [r["epoch"] for r in doc["per_epoch"]] == [1, 2]
    assert doc["per_epoch"][0]["mmd2"] == doc["per_epoch"][0]["aligned"]
    assert [r["mmd2"] for r in doc["per_epoch"]] == pytest.approx(logged, rel=1e-5)
    assert run.read_json("alignment") == doc
    table = run.read_table("epoch_projection")
    assert list(table.columns) == COLUMNS + ["epoch"]
    assert table.groupby(["view", "epoch"]).size().unique().tolist() == [32]
    # the frozen teacher embeds identically at both epochs: one point, one place in the map
    shift = table[table["view"] == "shift"].sort_values(["epoch", "sample"])
    assert np.allclose(
        shift[shift["epoch"] == 1][["x", "y"]], shift[shift["epoch"] == 2][["x", "y"]]
    )


@pytest.mark.slow
def test_maps_show_at_most_map_epochs_but_mmd_covers_every_epoch(tmp_path):
    assert map_epochs(3).tolist() == [0, 1, 2]
    picked = map_epochs(15)
    assert len(picked) == MAP_EPOCHS and picked[0] == 0 and picked[-1] == 14
    assert len(set(np.diff(picked))) <= 2  # evenly spaced, up to rounding
    run = _run(tmp_path, "student-run")
    models = _models()
    models["teacher"].requires_grad_(False)  # a student's teacher is frozen
    tracker = EpochTracker(run, _samples(), _images(), n_per_domain=8)
    calls = []
    teacher_features = models["teacher"].features
    models["teacher"].features = lambda x: calls.append(len(x)) or teacher_features(x)
    n = MAP_EPOCHS + 4
    for epoch in range(1, n + 1):
        tracker.update(epoch, models)
    assert len(calls) == 1  # the frozen teacher is embedded once, then reused
    doc = tracker.finish(umap=False)
    assert [r["epoch"] for r in doc["per_epoch"]] == list(range(1, n + 1))
    shown = doc["epoch_projection"]["epochs"]
    assert len(shown) == MAP_EPOCHS and shown[0] == 1 and shown[-1] == n
    assert sorted(run.read_table("epoch_projection")["epoch"].unique().tolist()) == shown


def test_finish_without_tracked_epochs_is_a_no_op(tmp_path):
    run = _run(tmp_path, "student-run")
    assert finish_epochs(run) is None and not run.has("epoch_projection")


def test_cli_refuses_unfinished_and_unknown_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path))
    run = _run(tmp_path, "student-run")
    run.update_status(state="failed")
    assert main(["analyse", "student-run"]) == 1
    assert "is failed, not done" in capsys.readouterr().err
    assert main(["analyse", "no-such-run"]) == 1
    assert "python -m fascore runs" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_store_runs_are_analysed_and_reanalysable(tiny_store, monkeypatch, capsys):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tiny_store))
    runs = RunStore(tiny_store).runs()
    student = next(r for r in runs if r.config().get("teacher"))
    for run in runs:
        for key in ("embeddings", "embedding_index", "projection", "alignment", "errors"):
            assert run.has(key), (run.id, key)
    doc = student.read_json("alignment")
    assert set(doc["views"]) == {"shift", "aligned", "student"}
    assert len(doc["per_epoch"]) == student.config()["epochs"]
    assert main(["analyse", student.id, "--no-umap"]) == 0
    out = capsys.readouterr().out
    assert "aligned" in out and "MMD²" in out
    assert student.read_json("alignment")["sampling"]["projection"] == "pca (umap off)"
