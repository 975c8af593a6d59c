"""Model registry: shapes, the features/head split, Grad-CAM layer, pretrained loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from fascore.errors import FascoreError
from fascore.train.models import MODELS, create_model, imagenet_file, model_summary

NAMES = MODELS.names()
TORCHVISION = {  # alexnet_mini has no torchvision twin: its own trunk stands in
    "alexnet": tvm.alexnet,
    "alexnet_mini": lambda: create_model("alexnet_mini").net,
    "resnet18": tvm.resnet18,
    "mobilenet_v3_small": tvm.mobilenet_v3_small,
}
EMBED_DIM = {"alexnet": 4096, "alexnet_mini": 256, "resnet18": 512, "mobilenet_v3_small": 1024}


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    """One seeded instance per registered model (AlexNet takes ~1 s to build)."""
    torch.manual_seed(0)
    return {name: create_model(name, num_classes=3) for name in NAMES}


def test_expected_models_are_registered() -> None:
    assert set(NAMES) == set(EMBED_DIM)


@pytest.mark.parametrize("size", [64, 112])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_split(models, name: str, size: int) -> None:
    model = models[name].eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        z = model.features(x)
        logits = model(x)
        assert z.shape == (2, EMBED_DIM[name]) == (2, model.embed_dim)
        assert logits.shape == (2, 3)
        torch.testing.assert_close(model.head(z), logits)


@pytest.mark.parametrize("name", NAMES)
def test_head_leaves_embedding_untouched_in_training(models, name: str) -> None:
    model = models[name].train()
    z = model.features(torch.randn(4, 3, 64, 64))
    before = z.detach().clone()
    model.head(z)
    assert torch.equal(z.detach(), before)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_first_conv_and_gradcam_layer(models, name: str) -> None:
    model = models[name].train()
    model.zero_grad()
    assert any(m is model.gradcam_layer for m in model.modules())
    acts: list[torch.Tensor] = []
    hook = model.gradcam_layer.register_forward_hook(lambda m, i, out: acts.append(out))
    try:
        logits = model(torch.randn(2, 3, 64, 64))
    finally:
        hook.remove()
    assert len(acts) == 1 and acts[0].dim() == 4 and acts[0].shape[0] == 2
    # Grad-CAM differentiates a logit w.r.t. the hooked activation: it must be in the graph.
    (grad,) = torch.autograd.grad(logits[:, 1].sum(), acts[0], retain_graph=True)
    assert grad.shape == acts[0].shape and grad.abs().sum() > 0
    logits.sum().backward()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_smallest_accepted_input_runs(models, name: str) -> None:
    model = models[name].eval()
    size = type(model).min_input
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 3)
    with pytest.raises(FascoreError, match=f"input-size {size} or more"):
        create_model(name, input_size=size - 1)


def test_fc6_embedding_moves_the_split_not_the_architecture() -> None:
    fc7 = create_model("alexnet_mini", num_classes=3).eval()
    fc6 = create_model("alexnet_mini", num_classes=3, embed_layer="fc6").eval()
    fc6.load_state_dict(fc7.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        z6 = fc6.features(x)
        assert z6.shape == (2, 256) and (z6 >= 0).all()  # after fc6's ReLU
        assert not torch.allclose(z6, fc7.features(x))
        torch.testing.assert_close(fc6.head(z6), fc7(x))


def test_same_seed_same_init_and_bad_embed_layer() -> None:
    torch.manual_seed(5)
    a = create_model("alexnet_mini")
    torch.manual_seed(5)
    b = create_model("alexnet_mini")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    with pytest.raises(FascoreError, match="fc6, fc7|fc7, fc6"):
        create_model("alexnet_mini", embed_layer="conv5")


@pytest.mark.parametrize("name", NAMES)
def test_loads_torchvision_state_dict(models, name: str, tmp_path) -> None:
    torch.manual_seed(1)
    source = TORCHVISION[name]()
    path = tmp_path / f"{name}.pth"
    torch.save(source.state_dict(), path)
    model = create_model(name, num_classes=3, pretrained=str(path))
    saved = source.state_dict()
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, saved[key]), key
    fresh = models[name].net.state_dict()
    assert any(not torch.equal(v, fresh[k]) for k, v in model.net.state_dict().items())
    assert model.classifier.out_features == 3 and model.pretrained == str(path)


def test_imagenet_file_is_read_from_hub_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = create_model("resnet18")
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert imagenet_file(model) == expected
    with pytest.raises(FascoreError) as err:  # offline (conftest: tests never download)
        create_model("resnet18", pretrained="imagenet")
    msg = str(err.value)
    assert str(expected) in msg and "--pretrained none" in msg and "TORCH_HOME" in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    torch.manual_seed(2)
    source = tvm.resnet18()
    expected.parent.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), expected)
    loaded = create_model("resnet18", pretrained="imagenet")
    torch.testing.assert_close(loaded.net.conv1.weight, source.conv1.weight)


def test_imagenet_is_downloaded_into_torchvisions_cache(tmp_path, monkeypatch) -> None:
    """torchvision's weights API fetches the file (mocked here) into the hub cache, hash
    prefix from the file name, then it loads; a second call reads the cache, no download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(3)
    source = tvm.mobilenet_v3_small()
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, Path(dst).name, hash_prefix))
        torch.save(source.state_dict(), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = create_model("mobilenet_v3_small", pretrained="imagenet")
    name = tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    assert calls == [(tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1.url, name, name[-12:-4])]
    assert imagenet_file(model) == tmp_path / "hub" / "checkpoints" / name
    torch.testing.assert_close(model.net.features[0][0].weight, source.features[0][0].weight)
    create_model("mobilenet_v3_small", pretrained="imagenet")
    assert len(calls) == 1


def test_missing_and_bad_files_raise_readable_errors(tmp_path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(FascoreError, match=str(missing)):
        create_model("alexnet_mini", pretrained=str(missing))
    with pytest.raises(FascoreError, match="no ImageNet weights"):
        create_model("alexnet_mini", pretrained="imagenet")
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(FascoreError, match="not a readable PyTorch state dict"):
        create_model("alexnet_mini", pretrained=str(text))
    resnet = tmp_path / "resnet.pth"
    torch.save(tvm.resnet18().state_dict(), resnet)
    with pytest.raises(FascoreError, match=r"missing: features\.0\.weight.*unexpected: conv1"):
        create_model("alexnet_mini", pretrained=str(resnet))
    state = create_model("alexnet_mini").net.state_dict()
    state["features.3.weight"] = torch.zeros(1, 16, 5, 5)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(FascoreError, match=r"shape: features\.3\.weight \(1, 16, 5, 5\)"):
        create_model("alexnet_mini", pretrained=str(tmp_path / "shape.pth"))


def test_unknown_model_and_none_string() -> None:
    with pytest.raises(FascoreError, match="unknown model 'vgg'.*alexnet"):
        create_model("vgg")
    assert create_model("alexnet_mini", pretrained="none").pretrained is None


def test_model_summary_is_json(models) -> None:
    summary = model_summary(models["resnet18"])
    json.dumps(summary)
    expected_params = sum(p.numel() for p in tvm.resnet18().parameters()) - (512 * 1000 + 1000)
    assert summary["params"] == expected_params + 512 * 3 + 3
    assert summary["embed_dim"] == 512 and summary["gradcam_layer"] == "net.layer4"
