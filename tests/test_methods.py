"""Every registered method on tiny fake data (after DomainBed's test): one contract for all."""

import math

import pytest
import torch

from fascore.config import RunConfig
from fascore.train.methods import METHODS, Batch
from fascore.train.models import create_model

EXPECTED_TERMS = {
    "source_only": {"ce"},
    "target_only": {"ce"},
    "finetune": {"ce"},
    "kd": {"ce", "kd"},
    "mmd": {"ce", "mmd"},
    "pair": {"ce", "pair"},
    "distill": {"ce", "mmd", "pair"},
}


def _batch(n: int = 8) -> Batch:
    g = torch.Generator().manual_seed(0)
    x = lambda: torch.randn(n, 3, 64, 64, generator=g)  # noqa: E731
    y = torch.tensor([0, 1] * (n // 2))
    return Batch(x(), y, x(), y.flip(0))


def test_every_method_is_covered():
    assert set(METHODS.names()) == set(EXPECTED_TERMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_TERMS))
@pytest.mark.parametrize("pair_mode", ["contrastive", "relational"])
def test_update_and_predict(name, pair_mode):
    torch.manual_seed(0)
    cfg = RunConfig(method=name, pair_mode=pair_mode, data=("x",))
    cls = METHODS.get(name)
    teacher = create_model("alexnet_mini") if cls.needs_teacher else None
    model = create_model("alexnet_mini")
    method = cls(cfg, model, teacher)
    before_t = [p.clone() for p in teacher.parameters()] if teacher is not None else []
    before_m = [p.clone() for p in model.parameters()]
    logs = method.update(_batch())
    assert EXPECTED_TERMS[name] | {"total"} == set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    weighted = sum(v for k, v in logs.items() if k != "total")  # all weights are 1 by default
    assert logs["total"] == pytest.approx(weighted, rel=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(before_m, model.parameters(), strict=True))
    if method.teacher is not None:  # the teacher is frozen
        assert all(
            torch.equal(a, b) for a, b in zip(before_t, method.teacher.parameters(), strict=True)
        )
        assert not method.teacher.training
    assert method.predict(torch.randn(3, 3, 64, 64)).shape == (3, 2)


def test_alignment_features_are_dropout_free_by_default():
    """The MMD and pair terms see the student's features without train-mode dropout (the
    teacher's have none); ``align_features="train"`` keeps the CE's dropout pass."""
    from fascore.train.methods import dropout_off

    torch.manual_seed(0)
    x = torch.randn(6, 3, 64, 64)
    teacher, model = create_model("alexnet_mini"), create_model("alexnet_mini")
    method = METHODS.get("distill")(RunConfig(method="distill", data=("x",)), model, teacher)
    method.train()
    with torch.no_grad():
        aligned = method._aligned(x)
        model.eval()
        reference = model.features(x)
        model.train()
        noisy = model.features(x)  # the CE pass, train mode
    assert model.training and torch.allclose(aligned, reference, atol=1e-6)
    assert not torch.allclose(noisy, reference, atol=1e-3)  # train-mode dropout moves them
    method.cfg = method.cfg.replace(align_features="train")
    with torch.no_grad():
        assert not torch.allclose(method._aligned(x), reference, atol=1e-3)
    with dropout_off(model):
        assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert all(m.training for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_class_conditional_mmd_option_trains():
    torch.manual_seed(0)
    cfg = RunConfig(method="mmd", mmd_classes="conditional", data=("x",))
    method = METHODS.get("mmd")(cfg, create_model("alexnet_mini"), create_model("alexnet_mini"))
    logs = method.update(_batch())
    assert {"ce", "mmd", "total"} == set(logs) and math.isfinite(logs["mmd"])
