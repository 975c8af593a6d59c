"""Grad-CAM on the spoof decision: closed forms on hand-built models, both head types, the
colour overlay, and a trained network that must point at the planted spoof cue."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from fascore.data.images import normalize
from fascore.eval.analysis.gradcam import (
    eval_mode,
    explain_samples,
    gradcam,
    overlay,
    spoof_logit,
    spoof_probability,
)
from fascore.train.models import create_model


class PoolHead(nn.Module):
    """A = ReLU(x) (the Grad-CAM layer); g = spatial mean of A (B, C); spoof evidence g @ w.

    Two logits: ``[shared * g_0, shared * g_0 + g @ w]`` (a term both logits share), or one
    logit ``g @ w``. Grad-CAM of the spoof score is then ``ReLU(sum_k w_k A_k)`` in closed form.
    """

    def __init__(self, w: list[float], logits: int = 2, shared: float = 0.0) -> None:
        super().__init__()
        self.gradcam_layer = nn.ReLU()
        self.lin = nn.Linear(len(w), 1, bias=False)
        self.lin.weight.data = torch.tensor([w])
        self.logits, self.shared = logits, shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gradcam_layer(x).mean(dim=(2, 3))
        spoof = self.lin(g)[:, 0]
        if self.logits == 1:
            return spoof[:, None]
        common = self.shared * g[:, 0]
        return torch.stack([common, common + spoof], dim=1)


def _expected(x: torch.Tensor, w: list[float]) -> np.ndarray:
    cam = F.relu((torch.tensor(w).view(1, -1, 1, 1) * F.relu(x)).sum(1))
    peak = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).numpy()


def test_spoof_score_for_two_logits_one_logit_and_flat():
    two = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    assert spoof_logit(two).tolist() == [2.0, -3.0]
    assert spoof_logit(torch.tensor([[0.5], [-2.0]])).tolist() == [0.5, -2.0]
    assert spoof_logit(torch.tensor([1.5])).tolist() == [1.5]
    # softmax's spoof probability is the sigmoid of the logit difference
    torch.testing.assert_close(spoof_probability(two), torch.softmax(two, 1)[:, 1])
    with pytest.raises(ValueError):
        spoof_logit(torch.zeros(2, 3))


@pytest.mark.parametrize("logits", [1, 2])
def test_gradcam_matches_the_closed_form(logits):
    x = torch.rand(3, 3, 8, 8) - 0.3
    w = [1.0, -0.5, 2.0]
    cam = gradcam(PoolHead(w, logits=logits, shared=5.0), x)
    assert cam.shape == (3, 8, 8) and cam.dtype == np.float32
    np.testing.assert_allclose(cam, _expected(x, w), atol=1e-5)
    assert cam.max() == pytest.approx(1.0)


def test_a_shared_logit_term_does_not_leak_into_the_map():
    # evidence in channel 0 raises both logits equally; only channel 1 changes the decision
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, :4] = 1.0  # top half: shared evidence
    x[0, 1, 4:] = 1.0  # bottom half: spoof evidence
    model = PoolHead([0.0, 1.0], shared=20.0)
    cam = gradcam(model, x)[0]
    assert cam[4:].min() == pytest.approx(1.0) and cam[:4].max() == pytest.approx(0.0)
    # the usual "class index 1" target would point at the shared evidence instead
    naive = LayerGradCam(model, model.gradcam_layer).attribute(x, target=1)[0, 0]
    assert naive[:4].mean() > naive[4:].mean()


def test_no_positive_evidence_gives_an_all_zero_map_not_nan():
    x = torch.rand(2, 2, 6, 6)
    cam = gradcam(PoolHead([-1.0, -1.0]), x)
    assert np.isfinite(cam).all() and (cam == 0).all()


def test_modes_are_restored_module_by_module():
    model = create_model("alexnet_mini").train()
    model.net.features.eval()  # e.g. a frozen trunk kept in eval mode by its trainer
    gradcam(model, torch.randn(2, 3, 64, 64))
    assert all(p.grad is None for p in model.parameters())  # only the layer is differentiated
    assert model.training and model.net.classifier.training
    assert not model.net.features.training
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and not model.net.features.training


def test_overlay_blends_with_a_numpy_jet():
    image = np.full((4, 4, 3), 200, dtype=np.uint8)
    cam = np.array([[0.0, 0.5, 1.0, np.nan]] * 4, dtype=np.float32)
    assert np.array_equal(overlay(image, cam, alpha=0.0), image)
    jet = overlay(image, cam, alpha=1.0)
    assert jet.dtype == np.uint8 and jet.shape == (4, 4, 3)
    assert jet[0, 0].tolist() == [0, 0, 128]  # 0 -> dark blue
    assert jet[0, 1].tolist() == [128, 255, 128]  # 0.5 -> green
    assert jet[0, 2].tolist() == [128, 0, 0]  # 1 -> dark red
    assert jet[0, 3].tolist() == [0, 0, 128]  # NaN reads as no evidence
    half = overlay(image, cam, alpha=0.5)
    assert half[0, 2].tolist() == [164, 100, 100]
    assert overlay(image, cam, colormap="gray", alpha=1.0)[0, 2].tolist() == [255, 255, 255]
    with pytest.raises(ValueError):
        overlay(image, cam, colormap="viridis")
    with pytest.raises(ValueError):
        overlay(image, cam[:2])


def test_explain_samples_gives_maps_scores_and_overlays_per_model():
    torch.manual_seed(0)
    models = {"teacher": create_model("alexnet_mini"), "student": create_model("alexnet_mini")}
    images = torch.randint(0, 256, (3, 3, 80, 80), dtype=torch.uint8)  # resized to 64
    out = explain_samples(models, images)
    assert out["images"].shape == (3, 64, 64, 3) and out["images"].dtype == np.uint8
    for name in models:
        assert out[name]["cam"].shape == (3, 64, 64)
        assert ((out[name]["score"] >= 0) & (out[name]["score"] <= 1)).all()
        assert out[name]["overlay"].shape == (3, 64, 64, 3)
        assert np.isfinite(out[name]["cam"]).all()


def test_scale_maps_shared_divides_both_models_by_the_larger_peak():
    from fascore.eval.analysis.gradcam import scale_maps

    teacher = np.array([[[0.0, 2.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=np.float32)
    student = np.array([[[0.5, 0.0], [0.0, 0.0]], [[0.0, 3.0], [0.0, 1.5]]], dtype=np.float32)
    raw = {"teacher": teacher, "student": student}
    shared, peaks = scale_maps(raw, "shared")
    assert peaks["teacher"].tolist() == peaks["student"].tolist() == [2.0, 3.0]
    np.testing.assert_allclose(shared["teacher"][0], [[0.0, 1.0], [0.5, 0.0]])
    np.testing.assert_allclose(shared["student"][0], [[0.25, 0.0], [0.0, 0.0]])  # weak: cool
    assert (shared["teacher"][1] == 0).all()  # no evidence stays zero, never NaN
    own, peaks = scale_maps(raw, "per-map")
    assert own["student"][0].max() == 1.0 and peaks["student"].tolist() == [0.5, 3.0]
    assert (own["teacher"][1] == 0).all() and np.isfinite(own["teacher"]).all()
    with pytest.raises(ValueError):
        scale_maps(raw, "log")


def test_explain_samples_puts_teacher_and_student_on_one_scale_by_default():
    from fascore.eval.analysis.gradcam import to_unit

    torch.manual_seed(1)
    models = {"teacher": create_model("alexnet_mini"), "student": create_model("alexnet_mini")}
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    out = explain_samples(models, images)
    peaks = np.maximum(out["teacher"]["cam"].max((1, 2)), out["student"]["cam"].max((1, 2)))
    assert peaks == pytest.approx(1.0)  # the stronger model reaches 1 on each image, not both
    np.testing.assert_array_equal(out["teacher"]["scale"], out["student"]["scale"])
    raw = gradcam(models["student"], normalize(to_unit(images, 64)), normalise=False)
    np.testing.assert_allclose(out["student"]["peak"], raw.max((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(
        out["student"]["cam"] * out["student"]["scale"][:, None, None], raw, rtol=1e-4, atol=1e-6
    )


SIZE, CUE = 64, 12


def _cue_images(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise plus large bright/dark blocks anywhere; spoofs (odd rows) also carry a fine
    checkerboard (period 2 px) somewhere inside the top-left quadrant, and only there."""
    x = rng.normal(128, 20, (n, 3, SIZE, SIZE))
    y = np.arange(n) % 2
    yy, xx = np.mgrid[0:CUE, 0:CUE]
    checker = 70.0 * (((yy + xx) % 2) * 2 - 1)
    for i in range(n):
        for _ in range(3):
            r, c = rng.integers(0, SIZE - 12, 2)
            h = int(rng.integers(6, 12))
            x[i, :, r : r + h, c : c + h] += rng.choice([-60.0, 60.0])
        if y[i]:
            r, c = rng.integers(0, SIZE // 2 - CUE + 1, 2)
            x[i, :, r : r + CUE, c : c + CUE] += checker
    return torch.from_numpy(np.clip(x, 0, 255).astype(np.uint8)), torch.from_numpy(y)


@pytest.mark.slow
def test_gradcam_points_at_the_spoof_cue():
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = _cue_images(384, rng), _cue_images(64, rng)
    x_train, x_test = normalize(x_train / 255.0), normalize(x_test / 255.0)
    torch.manual_seed(0)
    model = create_model("alexnet_mini")
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(8):  # ~1 s on 2 cores; over seeds 0-5 the cue's mass ranged 0.65-0.86
        model.train()
        for idx in torch.randperm(len(x_train)).split(32):
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad(), eval_mode(model):
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy >= 0.95
    cam = gradcam(model, x_test[y_test == 1])
    mass = cam[:, : SIZE // 2, : SIZE // 2].sum((1, 2)) / cam.sum((1, 2)).clip(1e-9)
    assert mass.mean() > 0.5  # chance (a map spread evenly) is 0.25
