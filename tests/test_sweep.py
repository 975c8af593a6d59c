"""``python -m fascore sweep`` end to end on a tiny manifest the test builds (not SynthFAS):
teachers then students through the local job launcher, reuse by config hash, continuing after an
interruption, and the results files with their columns and label budgets."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from fascore.cli import main
from fascore.errors import FascoreError
from fascore.eval.results.frame import COLUMNS
from fascore.store.runs import RunStore
from tests.helpers import stripe_manifest

FLAGS = ["--epochs", "2", "--batch-size", "16", "--no-analysis", "--n-boot", "20",
         "--device", "cpu"]  # fmt: skip


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SLOTS_CPU", raising=False)
    return RunStore()


def _sweep(manifest, out, *extra: str) -> int:
    return main(["sweep", "--data", str(manifest), "--source-domains", "studio",
                 "--target-domain", "phone", "--methods", "finetune", "target_only",
                 "--seeds", "0", "1", "--shots", "1", "--out", str(out), *FLAGS, *extra])  # fmt: skip


@pytest.mark.slow
def test_sweep_trains_reuses_continues_and_writes_results(tmp_path, store):
    manifest = stripe_manifest(tmp_path / "data")
    out = tmp_path / "exp"
    assert _sweep(manifest, out) == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns) == list(COLUMNS)
    runs = {r.id: r for r in store}
    assert len(runs) == 6  # 2 teachers (one per seed) + 2 methods x 2 seeds
    assert set(df["run"]) == set(runs)
    # every run reports both regimes; the teacher's first one is zero-shot
    assert set(df.loc[df["method"] == "source_only", "regime"]) == {"zero-shot", "target-dev"}
    assert set(df.loc[df["method"] == "finetune", "regime"]) == {"few-shot", "target-dev"}
    few = df[(df["regime"] == "few-shot") & df["threshold_rule"].isin(["shots", "source_dev"])]
    dev = df[(df["regime"] == "target-dev") & (df["threshold_rule"] == "target_dev")]
    # k = 1: one live and one spoof shot video of 3 frames; the few-shot regime uses nothing else
    assert (few["train_videos"] == 2).all() and (few["train_images"] == 6).all()
    assert (few["extra_videos"] == 0).all() and (few["selection_videos"] == 0).all()
    n_dev = 3  # one target dev subject: a live, a print and a replay video
    assert (dev["extra_videos"] == n_dev).all() and (dev["threshold_videos"] == n_dev).all()
    teacher = df[df["method"] == "source_only"]
    assert (teacher["train_videos"] == 0).all()
    oracle = df[(df["regime"] == "few-shot") & (df["threshold_rule"] == "oracle")]
    assert (oracle["extra_videos"] > 0).all()  # the oracle's labels are counted, not hidden
    text = (out / "results.md").read_text()
    assert "HTER % (few-shot, shots threshold)" in text and "HTER % (target-dev)" in text
    assert set(df.loc[df["regime"] == "few-shot", "threshold_rule"]) >= {"shots", "source_dev"}
    assert set(df["episode"]) == {0}
    assert "Paired differences against `finetune`" in text and "target_only" in text
    assert (out / "hter_vs_shots.png").stat().st_size > 0

    # a rerun reuses every finished run; an interrupted one resumes from its checkpoint
    student = next(r for r in store if r.config()["method"] == "target_only")
    stamps = {r.id: r.file("final").stat().st_mtime_ns for r in store if r.id != student.id}
    student.file("done").unlink()
    student.file("final").unlink()
    student.update_status(state="running", pid=2**22 + 12345)  # a pid that is not alive
    assert student.state() == "interrupted"
    time.sleep(0.01)
    assert _sweep(manifest, out) == 0
    assert student.state() == "done" and "resumed after epoch 2" in student.log_tail()
    assert {r.id: r.file("final").stat().st_mtime_ns for r in store if r.id != student.id} == stamps
    assert len(pd.read_csv(out / "results.csv")) == len(df)


def test_sweep_refuses_bad_input_with_one_message(tmp_path, store, capsys):
    manifest = stripe_manifest(tmp_path / "data")
    assert _sweep(manifest, tmp_path / "exp", "--baseline", "kd") == 1
    assert "baseline 'kd' is not one of the sweep's methods" in capsys.readouterr().err
    assert main(["sweep", "--data", str(manifest), "--source-domains", "studio",
                 "--target-domain", "nowhere", "--methods", "finetune",
                 "--out", str(tmp_path / "e")]) == 1  # fmt: skip
    assert "domain(s) nowhere not in the data" in capsys.readouterr().err
    assert not list(RunStore().root.glob("*/config.json"))  # nothing was started


@pytest.mark.slow
def test_sweep_on_the_synthfas_tiny_preset(tiny_manifest, tmp_path, store):
    out = tmp_path / "synth"
    code = main(["sweep", "--data", str(tiny_manifest), "--source-domains", "studio",
                 "--target-domain", "phone", "--methods", "finetune", "mmd", "--seeds", "0",
                 "--shots", "2", "--out", str(out), "--epochs", "1", "--batch-size", "16",
                 "--no-analysis", "--n-boot", "20", "--device", "cpu"])  # fmt: skip
    assert code == 0
    df = pd.read_csv(out / "results.csv")
    assert list(df.columns) == list(COLUMNS)
    assert df.groupby("run")["regime"].nunique().eq(2).all() and df["run"].nunique() == 3
    few = df[(df["regime"] == "few-shot") & (df["threshold_rule"] == "shots")]
    assert (few["train_videos"] == 4).all() and (few["extra_videos"] == 0).all()
    assert df["hter"].between(0, 1).all() and df["auc"].between(0, 1).all()


def test_the_plan_goes_to_one_launcher_call_teachers_first(tmp_path, store, monkeypatch):
    from fascore.cli import build_parser
    from fascore.commands.sweep import base_config
    from fascore.jobs import sweep

    manifest = stripe_manifest(tmp_path / "data")
    calls = []
    monkeypatch.setitem(sweep.PLAN_LAUNCHERS._items, "recorder",
                        lambda configs, store, **kw: calls.append(configs) or [])  # fmt: skip
    args = build_parser().parse_args(["sweep", "--data", str(manifest), "--methods", "finetune",
                                      "distill", "--seeds", "0", "1", "--shots", "1", "2",
                                      "--out", str(tmp_path / "o")])  # fmt: skip
    plan = sweep.plan_sweep(base_config(args), args.methods, args.seeds, args.shots)
    sweep.submit_plan(plan, launcher="recorder")
    (configs,) = calls
    assert len(configs) == 2 + 2 * 2 * 2  # a teacher per seed, shared by both k
    ids = [c.run_id() for c in configs]
    for i, cfg in enumerate(configs):  # every student's teacher is earlier in the plan
        assert cfg.teacher is None or ids.index(cfg.teacher) < i
    assert {c.shots for c in configs if c.teacher} == {1, 2}
    with pytest.raises(FascoreError, match="unknown launcher"):
        sweep.submit_plan(plan, launcher="nowhere")


def test_episodes_plan_one_teacher_per_seed_and_the_same_draws_for_every_method(tmp_path, store):
    from fascore.cli import build_parser
    from fascore.commands.sweep import base_config
    from fascore.jobs import sweep

    manifest = stripe_manifest(tmp_path / "data")
    args = build_parser().parse_args(["sweep", "--data", str(manifest), "--methods", "finetune",
                                      "distill", "--seeds", "0", "--shots", "1", "--episodes",
                                      "3", "--out", str(tmp_path / "o")])  # fmt: skip
    plan = sweep.plan_sweep(base_config(args), args.methods, args.seeds, args.shots, args.episodes)
    teachers = [c for c in plan if c.method == "source_only"]
    assert len(teachers) == 1 and teachers[0].episode == 0
    for method in ("finetune", "distill"):
        assert sorted(c.episode for c in plan if c.method == method) == [0, 1, 2]
    assert "--episode" not in sweep.sweep_argv(plan[-1], ["finetune"], [0], [1], tmp_path)
    with pytest.raises(FascoreError, match="at least 1"):
        sweep.plan_sweep(base_config(args), args.methods, args.seeds, args.shots, 0)


@pytest.mark.slow
def test_inprocess_launcher_trains_teachers_first_then_students_in_workers(tmp_path, store):
    from fascore.cli import build_parser
    from fascore.commands.sweep import base_config
    from fascore.jobs import sweep

    manifest = stripe_manifest(tmp_path / "data")
    args = build_parser().parse_args(["sweep", "--data", str(manifest), "--methods", "finetune",
                                      "target_only", "--seeds", "0", "--shots", "1",
                                      "--episodes", "2", "--out", str(tmp_path / "o"), *FLAGS])  # fmt: skip
    plan = sweep.plan_sweep(base_config(args), args.methods, args.seeds, args.shots, 2)
    runs = sweep.submit_plan(plan, store, launcher="inprocess", workers=2)
    assert [r.state() for r in runs] == ["done"] * len(plan) == ["done"] * 5
    shots = {r.read_json("shots")["episode"]: r.read_json("shots")["videos"] for r in runs
             if r.config()["method"] == "finetune"}  # fmt: skip
    assert set(shots) == {0, 1} and shots[0] != shots[1]
