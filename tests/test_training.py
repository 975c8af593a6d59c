"""The training loop end to end on a tiny planted-cue data set (CPU, analysis off: fast)."""

import json

import numpy as np
import pytest
import torch

from fascore.commands.train import config_from_args
from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.store.runs import RunStore
from fascore.train import loop as training
from fascore.train.checkpoint import load_models
from tests.helpers import stripe_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return str(stripe_manifest(tmp_path_factory.mktemp("stripes")))


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


def _cfg(manifest, **kw):
    base = dict(data=(manifest,), epochs=2, batch_size=16, analysis=False, n_boot=50, device="cpu")
    return RunConfig(**{**base, **kw})


def _teacher(manifest, store):
    cfg = _cfg(manifest, method="source_only", shots=0, select="source_dev")
    return training.train(cfg, store, progress=False)


@pytest.mark.slow
def test_teacher_then_student_write_complete_run_folders(manifest, store):
    teacher = _teacher(manifest, store)
    assert teacher.state() == "done" and teacher.has("done")
    student = training.train(
        _cfg(manifest, method="distill", teacher=teacher.id, shots=2), store, progress=False
    )
    assert student.state() == "done"
    metrics = student.metrics()
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"ce", "mmd", "pair", "total"} <= set(metrics[0]["train"])
    final = student.read_json("final")
    test = final["target_test"]
    for key in ("hter", "apcer", "bpcer", "acer", "auc", "hter_oracle", "threshold"):
        assert key in test
    assert final["shots"]["k"] == 2 and len(final["shots"]["videos"]) == 4
    scores = student.read_table("scores")
    assert set(scores["split"]) == {"dev", "test"} and set(scores["role"]) == {"source", "target"}
    assert scores["score"].between(0, 1).all()
    models = load_models(student)
    assert set(models) == {"teacher", "student"}
    assert not models["student"].training


@pytest.mark.slow
def test_the_planted_cue_is_learned(manifest, store):
    run = training.train(
        _cfg(manifest, method="source_only", shots=0, select="source_dev", epochs=4),
        store,
        progress=False,
    )
    assert run.read_json("final")["source_test"]["auc"] > 0.9


@pytest.mark.slow
def test_same_seed_same_scores_on_cpu(manifest, store, tmp_path):
    a = _teacher(manifest, store).read_table("scores")
    other = RunStore(tmp_path / "other")
    b = training.train(
        _cfg(manifest, method="source_only", shots=0, select="source_dev"), other, progress=False
    ).read_table("scores")
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_resume_continues_after_a_crash(manifest, store, monkeypatch):
    cfg = _cfg(manifest, method="source_only", shots=0, select="source_dev", epochs=3)
    real = training._evaluate

    def crash_after_epoch_2(*args, **kw):
        record = real(*args, **kw)
        if record["epoch"] == 2:
            raise RuntimeError("simulated crash")
        return record

    monkeypatch.setattr(training, "_evaluate", crash_after_epoch_2)
    with pytest.raises(RuntimeError):
        training.train(cfg, store, progress=False)
    run = store.run(cfg.run_id())
    assert run.state() == "failed"
    # the checkpoint of epoch 2 was not written (the crash came first): resume from epoch 1
    state = torch.load(run.file("checkpoint"), weights_only=True)
    assert state["epoch"] == 1
    monkeypatch.setattr(training, "_evaluate", real)
    training.train(cfg, store, resume=True, progress=False)
    assert run.state() == "done"
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3]  # one record per epoch (issue 13)
    assert "resumed after epoch 1" in run.log_tail()


def test_student_without_teacher_is_a_clear_error(manifest, store):
    with pytest.raises(FascoreError, match="needs a teacher"):
        training.train(_cfg(manifest, method="mmd"), store, progress=False)


def test_unknown_domain_is_a_clear_error(manifest, store):
    with pytest.raises(FascoreError, match="not in the data"):
        training.train(_cfg(manifest, method="source_only", target_domain="mars"), store)


def test_cli_flags_build_the_config(manifest):
    from fascore.cli import build_parser

    args = build_parser().parse_args(
        [
            "train",
            "--method",
            "distill",
            "--data",
            manifest,
            "--shots",
            "all",
            "--w-mmd",
            "0.5",
            "--no-augment",
            "--source-domains",
            "studio",
            "office",
            "--teacher",
            "t1",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.shots is None and cfg.w_mmd == 0.5 and cfg.augment is False
    assert cfg.source_domains == ("studio", "office") and cfg.teacher == "t1"
    assert json.loads(json.dumps(cfg.to_dict()))["method"] == "distill"


def test_the_trainer_turns_mixed_precision_on_only_on_cuda(manifest):
    from fascore.train.build import make_method
    from fascore.train.models import create_model

    cfg = _cfg(manifest, method="source_only")
    method = make_method(
        cfg, create_model("alexnet_mini", input_size=32), None, torch.device("cpu")
    )
    assert not method.amp and not method.scaler.is_enabled()
