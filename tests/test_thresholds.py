"""Threshold rules recorded with every result, and teachers that are source-only in every sense."""

import numpy as np
import pandas as pd
import pytest
import torch

from fascore import metrics
from fascore.config import RunConfig
from fascore.jobs.plan import plan_runs
from fascore.store.runs import RunStore
from fascore.train import loop as training
from fascore.train import regimes
from fascore.train.checkpoint import save_best
from fascore.train.methods import METHODS
from fascore.train.models import create_model
from fascore.train.teacher import load_teacher
from tests.helpers import stripe_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return str(stripe_manifest(tmp_path_factory.mktemp("stripes")))


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


def _cfg(manifest, **kw):
    base = dict(data=(manifest,), epochs=2, batch_size=16, analysis=False, n_boot=20, device="cpu")
    return RunConfig(**{**base, **kw})


def test_midpoint_threshold_is_the_mean_of_the_class_means():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.9, 0.7])
    assert metrics.midpoint_threshold(y, s) == pytest.approx((0.2 + 0.8) / 2)
    # k = 1: one live and one spoof score, the threshold halfway between them
    assert metrics.midpoint_threshold(np.array([0, 1]), np.array([0.3, 0.5])) == pytest.approx(0.4)
    assert np.isnan(metrics.midpoint_threshold(np.array([1, 1]), np.array([0.3, 0.5])))


def test_evaluate_at_a_given_threshold_matches_error_rates():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    test = metrics.ScoreSet(y, rng.random(200) * 0.5 + 0.5 * y)
    out = metrics.evaluate(None, test, n_boot=0, threshold=0.6)
    assert out["threshold"] == 0.6
    assert out["hter"] == metrics.error_rates(test, 0.6)["hter"]
    assert out["auc"] == metrics.auc(test.y, test.score)


def test_label_budget_of_each_rule():
    frame = pd.DataFrame({
        "part": ["target_train"] * 4 + ["target_dev"] * 6 + ["target_test"] * 8,
        "video": [f"v{i // 2}" for i in range(18)],
    })  # fmt: skip
    few = {
        r: regimes.label_budget(frame, "few-shot", "last", True, r) for r in regimes.THRESHOLD_RULES
    }
    assert few["shots"]["threshold"] == {"images": 4, "videos": 2}
    assert few["shots"]["extra"] == {"images": 0, "videos": 0}  # the shots are already counted
    assert few["source_dev"]["threshold"] == few["fixed"]["threshold"] == {"images": 0, "videos": 0}
    assert few["target_dev"]["extra"] == {"images": 6, "videos": 3}
    assert few["oracle"]["extra"] == {"images": 8, "videos": 4}
    assert regimes.threshold_rule("few-shot", "shots", has_shots=False) == "source_dev"
    assert regimes.threshold_rule("target-dev", "shots", has_shots=True) == "target_dev"


@pytest.mark.slow
def test_every_run_records_each_threshold_rule_beside_its_budget(manifest, store):
    teacher = training.train(
        _cfg(manifest, method="source_only", shots=0, select="source_dev"), store, progress=False
    )
    zero = teacher.read_json("final")["regimes"]["zero-shot"]
    assert zero["threshold_rule"] == "source_dev"  # no shots: the shots rule falls back
    student = training.train(
        _cfg(manifest, method="finetune", teacher=teacher.id, shots=1), store, progress=False
    )
    final = student.read_json("final")
    few = final["regimes"]["few-shot"]
    assert few["threshold_rule"] == "shots"
    assert set(few["thresholds"]) == set(regimes.THRESHOLD_RULES)
    assert few["thresholds"]["fixed"]["threshold"] == 0.5
    assert few["target_test"]["hter"] == few["thresholds"]["shots"]["hter"]
    assert few["target_test"]["threshold"] == few["thresholds"]["shots"]["threshold"]
    assert few["label_budget"]["extra"]["videos"] == 0
    assert few["thresholds"]["oracle"]["label_budget"]["extra"]["videos"] > 0
    assert final["regimes"]["target-dev"]["threshold_rule"] == "target_dev"
    assert "midpoint" in final["threshold_rule"]
    # the source-dev rule is still reported and can be made the headline
    other = training.train(
        _cfg(manifest, method="finetune", teacher=teacher.id, shots=1, threshold_rule="source_dev"),
        store, progress=False,
    )  # fmt: skip
    head = other.read_json("final")["regimes"]["few-shot"]
    assert head["target_test"]["hter"] == few["thresholds"]["source_dev"]["hter"]


def _fake_teacher(store, manifest, regime: str):
    """A finished teacher whose headline weights (best) differ from its source-selected ones."""
    cfg = _cfg(manifest, method="source_only", shots=0, select="source_dev", regime=regime)
    run = store.run(cfg.run_id())
    run.write_config(cfg.to_dict())
    nets = {}
    for key, fill in (("best", 1.0), ("best_alt", -1.0)):
        net = create_model(cfg.model, input_size=cfg.image_size)
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(fill)
        save_best(run, net, 1, key)
        nets[key] = net
    run.update_status(state="done")
    run.mark_done()
    return run, cfg


def test_a_target_dev_selected_teacher_never_reaches_a_few_shot_row(manifest, store):
    """A teacher whose headline is target-dev keeps its target-dev-selected weights in best.pt;
    students must load its few-shot (source-selected) weights, best_alt.pt, instead."""
    teacher, _ = _fake_teacher(store, manifest, "target-dev")
    student = _cfg(manifest, method="finetune", teacher=teacher.id, shots=1)
    model, frozen = training.build_model(student, teacher)
    method = METHODS.get(student.method)(student, model, frozen)  # starts from the teacher
    for net in (method.model, method.teacher):  # the student's initialisation and the teacher
        assert all((p == -1.0).all() for p in net.parameters())
    assert all((p == -1.0).all() for p in load_teacher(teacher).parameters())


def test_planned_teachers_are_selected_on_source_data_only(manifest):
    base = _cfg(manifest, regime="target-dev", episode=3)
    configs = plan_runs(base, ["finetune"], [0])
    teacher = next(c for c in configs if c.method == "source_only")
    assert teacher.regime == "few-shot" and teacher.select == "source_dev"
    assert teacher.episode == 0 and teacher.shots == 0
