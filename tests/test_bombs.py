"""Issue 22.1: one pixel limit in every reader, checked before decoding.

A few-KB PNG whose header claims 50000 x 50000 (or 30000 x 30000, or 9000 x 9000: under PIL's
own bomb limit) pixels goes through every reader in a subprocess whose address space is capped
at 1 GB above what its imports take; each reader must report a skip (or one readable refusal)
and the process must end normally. Videos are checked by their stream's frame size.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fascore.data import manifest as mf
from fascore.data.decode import MAX_PIXELS_ENV, TooManyPixels, check_pixels, max_pixels
from fascore.data.importers import ImportOptions, run_import
from fascore.data.importers.base import Video
from fascore.data.importers.crops import process_video
from fascore.data.importers.frames import count_frames
from fascore.data.manifest import read_preprocessing
from tests.fake_datasets import celeba_spoof, celeba_vector, write_video

ROOT = Path(__file__).resolve().parent.parent
SIZES = (50000, 30000, 9000)  # 9000^2 = 81 MP: below PIL's warning, above our 25 MP


def bomb_png(side: int) -> bytes:
    """A PNG header claiming side x side 8-bit RGB pixels, with a few rows of zlib-compressed
    zeros as its data (a few KB on disk, side^2 * 3 bytes decoded)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * side) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


READERS = """
import json, resource, sys
from pathlib import Path
import pandas as pd
from fascore.data.images import load_images
from fascore.data.importers import ImportOptions, run_import
from fascore.data.uploads import read_upload
from fascore.data.validate import validate_manifest
from fascore.errors import FascoreError
from fascore.share.samples import open_image

def cap(extra_gb=1.0):  # the imports are done: allow 1 GB more address space than they took
    kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
    limit = kb * 1024 + int(extra_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

def run(reader, path, work):  # a path for the image readers, the work folder for the others
    if reader == "training":
        logs = []
        arr = load_images(pd.DataFrame({"path": [path]}), 32, log=logs.append)
        return {"ok": bool(arr.ok[0]), "said": " ".join(logs)}
    if reader == "validate":
        report = validate_manifest(work / "celeba")
        return {"ok": report.ok, "said": " ".join(i.message for i in report.errors)}
    if reader == "upload":
        try:
            read_upload("bomb.png", Path(path).read_bytes())
        except FascoreError as err:
            return {"ok": False, "said": str(err)}
        return {"ok": True, "said": ""}
    if reader == "gradcam-sample":
        try:
            open_image(path)
        except FascoreError as err:
            return {"ok": False, "said": str(err)}
        return {"ok": True, "said": ""}
    if reader == "import":
        res = run_import("celeba-spoof", work / "celeba", work / "out", ImportOptions(detector="haar"))
        said = [s["reason"] for s in res.record["skipped"] if "bomb" in s["path"]]
        return {"ok": not said, "said": " ".join(said)}

reader, work, paths = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
cap()
print(json.dumps([run(reader, path, work) for path in paths]), flush=True)
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A fake CelebA-Spoof holding one bomb per size (each with its _BB.txt), and a manifest of
    the bombs."""
    work = tmp_path_factory.mktemp("bombs")
    root = celeba_spoof(work / "celeba")
    labels_file = root / "metas" / "intra_test" / "train_label.json"
    labels = json.loads(labels_file.read_text())
    for side in SIZES:
        key = f"Data/train/1/spoof/bomb{side}.png"
        (root / key).write_bytes(bomb_png(side))
        (root / key).with_name(f"bomb{side}_BB.txt").write_text("60 60 100 100 0.99\n")
        labels[key] = celeba_vector(1, 1, 1)
    labels_file.write_text(json.dumps(labels))
    rows = [{"path": f"Data/train/1/spoof/bomb{s}.png"} for s in SIZES]
    df = pd.DataFrame(rows).assign(
        label="spoof", attack="print", domain="d", subject="s", video="v", split="train"
    )
    df.to_csv(root / mf.MANIFEST_NAME, index=False)
    return work


def _read_capped(reader: str, work: Path, *paths: Path) -> list[dict]:
    # Arrow's own allocator reserves address space in large arenas: use malloc under the cap
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARROW_DEFAULT_MEMORY_POOL": "system"}
    env.pop(MAX_PIXELS_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-c", READERS, reader, str(work), *map(str, paths)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


slow = pytest.mark.slow  # a subprocess each, importing torch or the importers (~5 s)


@slow
@pytest.mark.parametrize("reader", ["training", "upload", "gradcam-sample"])
def test_every_image_reader_refuses_a_bomb_under_a_memory_cap(work, reader):
    folder = work / "celeba" / "Data" / "train" / "1" / "spoof"
    got = _read_capped(reader, work, *(folder / f"bomb{side}.png" for side in SIZES))
    for side, one in zip(SIZES, got, strict=True):
        assert not one["ok"], (side, one)
        if reader != "gradcam-sample":  # that page says only that the file cannot be read
            assert "megapixels" in one["said"] or "exceeds limit" in one["said"], (side, one)


@slow
def test_validate_reports_every_bomb_under_a_memory_cap(work):
    (got,) = _read_capped("validate", work, work)
    assert not got["ok"] and got["said"].count("TooManyPixels") >= 1, got
    for side in SIZES:
        assert f"bomb{side}.png" in got["said"], got


@slow
def test_the_import_skips_and_reports_every_bomb_under_a_memory_cap(work):
    (got,) = _read_capped("import", work, work)
    assert not got["ok"], got
    assert got["said"].count("TooManyPixels") == len(SIZES), got


def test_a_video_over_the_pixel_limit_is_skipped_and_reported(tmp_path, monkeypatch):
    path = write_video(tmp_path / "v.avi")
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")  # below the fake video's frame size
    with pytest.raises(TooManyPixels, match="video frame"):
        count_frames(path)
    video = Video(path=path, rel="v", label="live", attack="none", subject="s", split="train")
    rec = process_video(video, ImportOptions(detector="haar"), tmp_path / "out")
    assert "TooManyPixels" in rec["error"] and "FASCORE_MAX_PIXELS" in rec["error"]


def test_the_limit_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_pixels() == 25_000_000
    check_pixels(5000, 5000)
    with pytest.raises(TooManyPixels, match="25 MP"):
        check_pixels(5001, 5000)
    monkeypatch.setenv(MAX_PIXELS_ENV, "30000000")
    check_pixels(5001, 5000)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")  # not a number: the default holds
    assert max_pixels() == 25_000_000


def test_the_import_drops_and_reports_a_truncated_jpeg(tmp_path):
    root = celeba_spoof(tmp_path / "celeba")
    image = root / "Data" / "train" / "3" / "live" / "000000.jpg"
    image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])
    result = run_import("celeba-spoof", root, tmp_path / "out", ImportOptions(detector="haar"))
    skipped = {s["path"]: s["reason"] for s in read_preprocessing(tmp_path / "out")["skipped"]}
    assert "truncated" in skipped["Data/train/3/live/000000.jpg"], skipped
    kept = set(mf.read_manifest(result.manifest)["path"])
    assert not any("train/3/live" in p for p in kept)
    assert np.all([(tmp_path / "out" / p).is_file() for p in kept])
