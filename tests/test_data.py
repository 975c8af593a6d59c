"""The data pipeline: decode once, cache, batch, augment, normalise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fascore.data import images as data
from fascore.data.images import (
    MEAN,
    STD,
    Augment,
    FaceBatches,
    ManifestDataset,
    augment_batch,
    denormalize,
    load_images,
)
from fascore.data.manifest import read_manifest, write_manifest
from fascore.errors import FascoreError

SIZE = 16


@pytest.fixture
def manifest(tmp_path: Path) -> pd.DataFrame:
    """20 random 16 px PNGs (one 24 px), row 5 corrupt and row 7 missing."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        label = "spoof" if i % 2 else "live"
        side = 24 if i == 3 else SIZE
        Image.fromarray(rng.integers(0, 200, (side, side, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        attack = "print" if label == "spoof" else "none"
        rows.append((f"{i}.png", label, attack, "D", f"s{i}", f"v{i}", "train"))
    (tmp_path / "5.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "7.png").unlink()
    cols = ["path", "label", "attack", "domain", "subject", "video", "split"]
    write_manifest(pd.DataFrame(rows, columns=cols), tmp_path)
    return read_manifest(tmp_path)


def pil_pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)


def test_load_images_decodes_and_flags_bad_rows(manifest) -> None:
    logged: list[str] = []
    arr = load_images(manifest, SIZE, log=logged.append)
    assert arr.images.shape == (20, 3, SIZE, SIZE) and arr.images.dtype == torch.uint8
    assert arr.ok.tolist() == [i not in (5, 7) for i in range(20)]
    assert np.array_equal(arr.images[0].numpy(), pil_pixels(manifest["abspath"][0]))
    assert arr.images[5].sum() == 0 and arr.images[7].sum() == 0
    assert arr.images[3].shape == (3, SIZE, SIZE)  # the 24 px image was resized
    text = "\n".join(logged)
    assert "skipped 2 of 20" in text and "5.png" in text and "7.png" in text


def test_strict_names_the_file(manifest) -> None:
    with pytest.raises(FascoreError, match=r"5\.png"):
        load_images(manifest, SIZE, strict=True, log=lambda _: None)


def test_cache_reloads_without_decoding_and_notices_changes(
    manifest, tmp_path, monkeypatch
) -> None:
    cache = tmp_path / "cache"
    first = load_images(manifest, SIZE, cache_dir=cache, log=lambda _: None)
    assert len(list(cache.glob("*.npy"))) == 2

    def no_decode(path: str, size: int) -> np.ndarray:
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(data, "_decode", no_decode)
    logged: list[str] = []
    again = load_images(manifest, SIZE, cache_dir=cache, log=logged.append)
    assert "cached" in logged[0]
    assert torch.equal(again.images, first.images) and torch.equal(again.ok, first.ok)
    again.images[0] += 1  # copy-on-write: the cache file is not touched
    assert torch.equal(load_images(manifest, SIZE, cache_dir=cache, log=print).images, first.images)
    with pytest.raises(FascoreError, match=r"5\.png"):
        load_images(manifest, SIZE, cache_dir=cache, strict=True, log=lambda _: None)
    os.utime(manifest["abspath"][0], ns=(1, 1))  # a changed file is a new key: decode again
    with pytest.raises(AssertionError, match="decoded"):
        load_images(manifest, SIZE, cache_dir=cache, log=lambda _: None)
    assert not list(cache.glob("*.tmp"))  # an interrupted decode leaves no half-written file


def test_parallel_decode_matches_serial(manifest, monkeypatch) -> None:
    serial = load_images(manifest, SIZE, log=lambda _: None)
    monkeypatch.setattr(data, "PARALLEL_FROM", 1)
    parallel = load_images(manifest, SIZE, log=lambda _: None)
    assert torch.equal(serial.images, parallel.images) and torch.equal(serial.ok, parallel.ok)


@pytest.fixture
def arr(manifest):
    return load_images(manifest, SIZE, log=lambda _: None)


def test_batches_normalise_exactly_and_denormalise_back(arr, manifest) -> None:
    batches = FaceBatches(arr, manifest["y"], batch_size=8, shuffle=False)
    x, y, idx = next(iter(batches))
    assert x.dtype == torch.float32 and x.shape == (8, 3, SIZE, SIZE) and y.dtype == torch.long
    assert idx.tolist() == [0, 1, 2, 3, 4, 6, 8, 9]  # rows 5 and 7 are unreadable
    expected = arr.images[idx].float() / 255
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    assert torch.allclose(x * std + mean, expected, atol=1e-6)
    assert y.tolist() == manifest["y"][idx.numpy()].tolist()
    back = denormalize(x)
    assert back.shape == (8, SIZE, SIZE, 3) and back.dtype == np.uint8
    assert np.array_equal(back, arr.images[idx].permute(0, 2, 3, 1).numpy())
    assert np.array_equal(denormalize(x[0]), back[0])


def test_one_pass_covers_each_readable_row_once(arr, manifest) -> None:
    rows = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    batches = FaceBatches(arr, manifest["y"], rows, batch_size=4, seed=1)
    seen = torch.cat([idx for _, _, idx in batches]).tolist()
    assert sorted(seen) == [0, 1, 2, 3, 4, 6, 8, 9, 10] and len(batches) == 3
    dropped = FaceBatches(arr, manifest["y"], rows, batch_size=4, drop_last=True)
    sizes = [len(idx) for _, _, idx in dropped]
    assert sizes == [4, 4] and len(dropped) == 2


def test_shuffle_is_seeded(arr, manifest) -> None:
    def order(seed: int) -> list[int]:
        return torch.cat([i for _, _, i in FaceBatches(arr, manifest["y"], seed=seed)]).tolist()

    assert order(3) == order(3) and order(3) != order(4)


def test_infinite_yields_full_batches_over_whole_passes(arr, manifest) -> None:
    rows = [0, 1, 2, 3, 4, 6]  # 6 readable rows, batches of 4: 3 batches = 2 whole passes
    stream = iter(FaceBatches(arr, manifest["y"], rows, batch_size=4, infinite=True))
    got = [next(stream)[2] for _ in range(3)]
    assert all(len(i) == 4 for i in got)
    flat = torch.cat(got).tolist()
    assert sorted(flat[:6]) == rows and sorted(flat[6:]) == rows


def test_flip_only_augmentation_is_an_exact_mirror() -> None:
    x = torch.rand(3, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    flip = Augment(flip=1.0, scale=(1.0, 1.0), shift=0.0, brightness=0.0, contrast=0.0)
    assert torch.allclose(augment_batch(x, flip, gen), x.flip(-1), atol=1e-5)
    same = Augment(flip=0.0, scale=(1.0, 1.0), shift=0.0, brightness=0.0, contrast=0.0)
    assert torch.allclose(augment_batch(x, same, gen), x, atol=1e-5)


def test_brightness_is_one_factor_per_image() -> None:
    x = 0.1 + 0.5 * torch.rand(4, 3, 8, 8)  # at most 0.6: a factor <= 1.5 never clips
    gen = torch.Generator().manual_seed(0)
    aug = Augment(flip=0.0, scale=(1.0, 1.0), shift=0.0, brightness=0.5, contrast=0.0)
    ratio = augment_batch(x, aug, gen) / x
    per_image = ratio.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-4)
    assert ((per_image[:, 0] >= 0.5) & (per_image[:, 0] <= 1.5)).all()
    assert per_image[:, 0].std() > 0  # factors differ between images


def test_default_augmentation_is_seeded_and_changes_pixels(arr, manifest) -> None:
    def first(seed: int) -> torch.Tensor:
        b = FaceBatches(arr, manifest["y"], batch_size=8, shuffle=False, augment=True, seed=seed)
        return next(iter(b))[0]

    plain = next(iter(FaceBatches(arr, manifest["y"], batch_size=8, shuffle=False)))[0]
    a, b = first(0), first(0)
    assert torch.equal(a, b) and not torch.allclose(a, first(1)) and not torch.allclose(a, plain)
    lo = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    hi = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    per_channel = a.transpose(0, 1).flatten(1)
    assert (per_channel.min(1).values >= lo - 1e-5).all()
    assert (per_channel.max(1).values <= hi + 1e-5).all()


def test_no_readable_rows_is_a_readable_error(arr, manifest) -> None:
    with pytest.raises(FascoreError, match="no readable images"):
        FaceBatches(arr, manifest["y"], rows=[5, 7])
    with pytest.raises(ValueError, match="one per row"):
        FaceBatches(arr, manifest["y"][:3], rows=[0, 1])


def test_dataset_matches_face_batches(arr, manifest) -> None:
    ds = ManifestDataset(manifest, SIZE)
    x, y, i = ds[0]
    batch = next(iter(FaceBatches(arr, manifest["y"], batch_size=1, shuffle=False)))[0]
    assert torch.allclose(x, batch[0], atol=1e-6) and int(y) == 0 and int(i) == 0
    aug = ManifestDataset(manifest.iloc[:4].reset_index(drop=True), SIZE, augment=True)
    xb, yb, ib = next(iter(DataLoader(aug, batch_size=4)))
    assert xb.shape == (4, 3, SIZE, SIZE) and yb.tolist() == [0, 1, 0, 1]
    with pytest.raises(FascoreError, match=r"7\.png"):
        ds[7]
