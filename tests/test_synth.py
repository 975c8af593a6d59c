"""SynthFAS: the manifest it writes, determinism, the cache, the CLI and gallery, the physics of
its instruments, and that its data carry a learnable signal and a real domain shift."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

from fascore.cli import main
from fascore.data.manifest import read_manifest, read_preprocessing
from fascore.data.synth import DOMAIN_NAMES, PRESETS, SynthSpec, default_data_dir, ensure_synth
from fascore.data.synth.camera import capture, vignette
from fascore.data.synth.domains import DOMAINS
from fascore.data.synth.generate import VERSION, generate, plan, read_state, resolve_spec
from fascore.data.synth.instruments import Placement, _stripe_cover, halftone, screen_emission
from fascore.errors import FascoreError

SMALL = SynthSpec(subjects=(1, 1, 1), frames=2, live_videos=1, domains=("studio", "phone"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny preset, generated once, in a folder named like the per-user cache."""
    out = tmp_path_factory.mktemp("cache") / f"synthfas-tiny-v{VERSION}"
    generate("tiny", out, workers=2)
    return out


@pytest.mark.slow
def test_tiny_manifest_has_every_image_and_column(tiny):
    df = read_manifest(tiny)
    assert len(df) == PRESETS["tiny"].n_images() == 384
    for col in ("frame", "session", "device", "dataset"):
        assert col in df.columns
    assert set(df["domain"]) == set(DOMAIN_NAMES)
    assert set(df["attack"]) == {"none", "print", "replay", "mask"}
    assert ((df["attack"] == "none") == (df["label"] == "live")).all()
    assert (df["label"] == "live").sum() == (df["label"] == "spoof").sum()
    assert (df["dataset"] == "synthfas").all()
    assert all(p.startswith(f"images/{d}/") for p, d in zip(df["path"], df["domain"], strict=True))
    img = Image.open(df["abspath"].iloc[0])
    assert img.format == "PNG" and img.size == (64, 64) and img.mode == "RGB"
    assert all(Path(p).exists() for p in df["abspath"])


@pytest.mark.slow
def test_ids_are_unique_and_splits_subject_disjoint(tiny):
    df = read_manifest(tiny)
    assert all(s.startswith(f"{d}-s") for s, d in zip(df["subject"], df["domain"], strict=True))
    assert all(v.startswith(f"{s}-") for v, s in zip(df["video"], df["subject"], strict=True))
    assert df.groupby("subject")["split"].nunique().max() == 1
    assert df.groupby("video")["subject"].nunique().max() == 1
    for _, part in df.groupby("domain"):
        assert set(part["split"]) == {"train", "dev", "test"}
    assert df.groupby("video")["frame"].apply(lambda f: sorted(f) == [0, 1]).all()
    attack_devices = df.loc[df["attack"] != "none", "device"]
    assert attack_devices.str.contains(r"\+").all()  # camera + instrument


@pytest.mark.slow
def test_preprocessing_record_and_datasheet(tiny):
    rec = read_preprocessing(tiny)
    assert rec["generator"] == "fascore.synth" and rec["preset"] == "tiny" and rec["seed"] == 0
    assert rec["spec"]["image_size"] == 64 and set(rec["domains"]) == set(DOMAIN_NAMES)
    sheet = (tiny / "datasheet.md").read_text()
    assert "| studio | train | 24 | 8 | 8 | 8 | 4 | 24 |" in sheet
    assert "mean RGB" in sheet and "bench.bench_synth --calibrate" in sheet


def _no_rendering(*args, **kwargs):
    raise AssertionError("a fresh cache must not be rendered again")


@pytest.mark.slow
def test_second_call_returns_the_cache_without_rendering(tiny, monkeypatch):
    monkeypatch.setattr(sys.modules["fascore.data.synth.generate"], "render_all", _no_rendering)
    before = (tiny / "manifest.csv").stat().st_mtime_ns
    assert generate("tiny", tiny) == tiny / "manifest.csv"
    assert (tiny / "manifest.csv").stat().st_mtime_ns == before
    assert read_state(tiny)["hash"] == PRESETS["tiny"].digest()


@pytest.mark.slow
def test_ensure_synth_uses_the_per_user_cache(tiny, monkeypatch):
    monkeypatch.setenv("FASCORE_DATA_DIR", str(tiny.parent))
    monkeypatch.setattr(sys.modules["fascore.data.synth.generate"], "render_all", _no_rendering)
    assert default_data_dir("tiny") == tiny
    assert ensure_synth("tiny") == tiny / "manifest.csv"
    monkeypatch.delenv("FASCORE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert default_data_dir("demo") == Path(f"/somewhere/fascore/synthfas-demo-v{VERSION}")


def test_demo_preset_sizes_give_the_target_test_split_300_videos():
    """Issue 9: the demo's target test split holds >= 300 videos (bootstrap CIs of a few points);
    the target domain has twice the train subjects."""
    spec = PRESETS["demo"]
    tasks = pd.DataFrame([(t.domain, t.split, t.attack) for t in plan(spec, 0)],
                         columns=["domain", "split", "attack"])  # fmt: skip
    phone = tasks[tasks["domain"] == "phone"]
    assert (phone["split"] == "test").sum() == 300
    # the target's train split (the shot pool and the headroom ceiling's data) is twice the
    # other domains': 48 subjects x 12 videos
    assert (phone["split"] == "dev").sum() == 96 and (phone["split"] == "train").sum() == 576
    studio = tasks[tasks["domain"] == "studio"]
    assert (studio["split"] == "train").sum() == 288 and (studio["split"] == "test").sum() == 300
    assert (phone["attack"] == "none").sum() == (phone["attack"] != "none").sum()
    assert spec.n_images() == 6048 == 2 * len(tasks) and spec.image_size == 64


def test_domain_subjects_override_one_domain_and_round_trip():
    from fascore.data.synth.generate import spec_from_dict

    spec = SynthSpec(subjects=(2, 1, 1), domains=("studio", "phone"),
                     domain_subjects=(("phone", (3, 1, 2)),))  # fmt: skip
    assert spec.subjects_of("studio") == (2, 1, 1) and spec.subjects_of("phone") == (3, 1, 2)
    subjects = {(t.domain, t.split): set() for t in plan(spec, 0)}
    for t in plan(spec, 0):
        subjects[(t.domain, t.split)].add(t.subject_id)
    assert {k: len(v) for k, v in subjects.items()} == {
        ("studio", "train"): 2, ("studio", "dev"): 1, ("studio", "test"): 1,
        ("phone", "train"): 3, ("phone", "dev"): 1, ("phone", "test"): 2,
    }  # fmt: skip
    assert spec_from_dict(asdict(spec)) == spec
    assert spec.digest() != SynthSpec(subjects=(2, 1, 1), domains=("studio", "phone")).digest()
    with pytest.raises(FascoreError, match="kiosk"):
        SynthSpec(domains=("studio",), domain_subjects=(("kiosk", (1, 1, 1)),))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.mark.slow
def test_same_spec_and_seed_give_identical_bytes_with_any_worker_count(tmp_path):
    one = _files(generate(SMALL, tmp_path / "a", seed=3, workers=1).parent)
    two = _files(generate(SMALL, tmp_path / "b", seed=3, workers=2).parent)
    assert one.keys() == two.keys() and len(one) == SMALL.n_images() == 48
    assert all(one[k] == two[k] for k in one)
    assert (tmp_path / "a/manifest.csv").read_bytes() == (tmp_path / "b/manifest.csv").read_bytes()
    other = _files(generate(SMALL, tmp_path / "c", seed=4, workers=1).parent)
    assert sum(one[k] != other[k] for k in one) == len(one)


def test_another_spec_clears_only_its_own_files(tmp_path):
    out = tmp_path / "data"
    generate(SMALL, out, workers=1)
    (out / "notes.txt").write_text("mine")
    smaller = SynthSpec(
        subjects=(1, 1, 1), frames=1, live_videos=1, attacks=("print",), domains=("phone",)
    )
    generate(smaller, out, workers=1)
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(pngs) == smaller.n_images() == 6
    assert not (out / "images/studio").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert len(read_manifest(out)) == 6


def test_a_foreign_folder_is_refused_with_a_readable_error(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(FascoreError, match="not empty"):
        generate(SMALL, tmp_path)
    assert main(["synth", "--preset", "tiny", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_bad_specs_raise_readable_errors():
    with pytest.raises(FascoreError, match="moon"):
        SynthSpec(domains=("moon",))
    with pytest.raises(FascoreError, match="tiny"):
        resolve_spec("huge")
    with pytest.raises(FascoreError, match="deepfake"):
        SynthSpec(attacks=("deepfake",))
    with pytest.raises(FascoreError):
        SynthSpec(image_size=8)


@pytest.mark.slow
def test_cli_synth_prints_counts_and_gallery_writes_a_labelled_grid(tiny, tmp_path, capsys):
    assert main(["synth", "--preset", "tiny", "--out", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "384 images (192 live, 192 spoof)" in out and str(tiny / "manifest.csv") in out
    png = tmp_path / "gallery.png"
    assert main(["gallery", str(tiny), "--out", str(png), "--per-cell", "2", "--tile", "64"]) == 0
    grid = np.asarray(Image.open(png).convert("RGB"))
    assert grid.shape == (16 + 4 * 68, 64 + 4 * (2 * 64 + 2 + 4), 3)
    assert grid[:16].min() < 100 and grid[:16].mean() > 200  # a white header with dark labels
    assert png.stat().st_size < 400_000


def test_halftone_inks_the_share_of_the_tone():
    v, u = np.mgrid[0:128, 0:128].astype(np.float32) / 8  # 16 x 16 halftone cells
    for tone in (0.1, 0.5, 0.8):
        ink = np.full((128, 128, 3), tone, np.float32)
        crisp = halftone(ink, u, v, bleed=0.0, px=1 / 8)
        assert abs(crisp.mean() - tone) < 0.02
        assert crisp.std() > 0.7 * np.sqrt(tone * (1 - tone))  # nearly binary dots, not a tint
        assert np.allclose(halftone(ink, u, v, bleed=1.0, px=1 / 8), tone)  # continuous tone


def test_stripe_cover_is_a_box_filtered_pulse():
    x = np.linspace(0, 5, 101)
    assert np.allclose(_stripe_cover(x, 0.2, 0.3, 1.0), 0.3)  # a whole period: the duty cycle
    assert np.allclose(_stripe_cover(np.array([0.35]), 0.2, 0.3, 0.1), 1.0)
    assert np.allclose(_stripe_cover(np.array([0.8]), 0.2, 0.3, 0.1), 0.0)


def test_screen_emits_the_picture_through_its_gamma_and_tint():
    screen = DOMAINS["studio"].screens[0]
    grey = np.full((256, 256, 3), 0.4, np.float32)
    emit, inside, device = screen_emission(grey, screen, Placement(0.5, 0.5, 1.5, 0.0, 0.0), 4.2)
    expected = (0.4 ** (screen.gamma / 2.2) * (1 - screen.black) + screen.black) * np.array(
        screen.tint
    )
    assert np.allclose(emit.reshape(-1, 3).mean(0), expected * screen.brightness, rtol=0.03)
    assert inside.min() == 1.0 and device.min() == 1.0  # a large screen fills the view
    assert emit[..., 0].std() > 0.2  # RGB stripes


def test_vignette_and_capture_shapes():
    v = vignette(65, 0.4)
    assert v[32, 32, 0] == pytest.approx(1.0) and v[0, 0, 0] == pytest.approx(0.6)
    radiance = np.full((128, 128, 3), 0.3, np.float32)
    a = capture(radiance, DOMAINS["phone"].camera, 32, np.random.default_rng(0))
    b = capture(radiance, DOMAINS["phone"].camera, 32, np.random.default_rng(0))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)


# --- the data carry a signal and a shift -------------------------------------------------------


def small_cnn() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                         *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))  # fmt: skip


def _load(manifest: Path, split: str) -> tuple[torch.Tensor, np.ndarray]:
    df = read_manifest(manifest)
    df = df[df["split"] == split]
    x = np.stack([np.asarray(Image.open(p)) for p in df["abspath"]])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, (df["label"] == "spoof").to_numpy(
        np.float32
    )


def _auc(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        return roc_auc_score(y, model(x).squeeze(1).numpy())


@pytest.mark.slow
def test_a_small_cnn_learns_studio_and_loses_on_phone(tmp_path):
    studio = generate(SynthSpec(subjects=(24, 1, 8), frames=3, domains=("studio",)), tmp_path / "s")
    phone = generate(SynthSpec(subjects=(1, 1, 8), frames=3, domains=("phone",)), tmp_path / "p")
    (x, y), (xt, yt), (xp, yp) = _load(studio, "train"), _load(studio, "test"), _load(phone, "test")
    torch.manual_seed(0)
    model, epochs = small_cnn(), 8
    opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, 3e-3, total_steps=epochs * ((len(x) + 31) // 32)
    )
    first = None
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(32):
            xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, x[idx].flip(3), x[idx])
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(xb).squeeze(1), torch.from_numpy(y[idx]).float()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        first = _auc(model, xt, yt) if epoch == 0 else first
    within, across = _auc(model, xt, yt), _auc(model, xp, yp)
    colour = LogisticRegression(max_iter=1000).fit(x.mean((2, 3)).numpy(), y)
    colour_auc = roc_auc_score(yt, colour.predict_proba(xt.mean((2, 3)).numpy())[:, 1])
    assert within >= 0.85, f"studio -> studio AUC {within:.3f}: the attack cues are too weak"
    assert first < 0.97, f"AUC {first:.3f} after one epoch: the attack cues are too loud"
    assert within - across >= 0.10, f"studio {within:.3f} vs phone {across:.3f}: no domain shift"
    assert colour_auc <= within - 0.15, f"mean colour alone reaches AUC {colour_auc:.3f}"
