"""Importers on tiny fake copies of the four data sets (tests/fake_datasets.py): labels, PAI
species, subjects, splits, face boxes, dropped frames, skipped files, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fascore import cli
from fascore.data.importers import IMPORTERS, ImportOptions, run_import
from fascore.data.importers.base import Video, carve_dev, frame_indices
from fascore.data.importers.crops import read_bob_face_file as read_replay_face
from fascore.data.importers.detect import square_crop
from fascore.data.importers.msu_mfsd import read_face_file as read_msu_face
from fascore.data.importers.oulu_npu import eyes_to_box, parse_protocol, read_eye_file
from fascore.data.manifest import read_manifest, read_preprocessing
from fascore.data.validate import validate_manifest
from fascore.errors import FascoreError
from tests.fake_datasets import (
    BUILDERS,
    EYE_FRAMES,
    FACE_FRAMES,
    N_FRAMES,
    replay_attack,
    write_video,
)

KEPT = [i for i in frame_indices(N_FRAMES, 10, None) if i in FACE_FRAMES]  # 7 of the 10 chosen


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("datasets")
    return {name: build(base / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def imported(trees, tmp_path_factory):
    """Each data set imported once with the defaults: {name: (result, manifest frame)}."""
    out = tmp_path_factory.mktemp("imported")
    results = {}
    for name, root in trees.items():
        result = run_import(name, root, out / name, ImportOptions(detector="haar"))
        results[name] = (result, read_manifest(result.manifest))
    return results


def per_video(df: pd.DataFrame, column: str) -> dict[str, str]:
    return df.groupby("video")[column].first().to_dict()


# -- pure pieces ------------------------------------------------------------------------------


def test_frame_rule_evenly_spaced_or_every_k():
    assert frame_indices(12, 10, None) == [0, 1, 2, 4, 5, 6, 7, 9, 10, 11]
    assert frame_indices(100, 3, None) == [0, 50, 99]  # round(49.5) = 50 (to even)
    assert frame_indices(5, 10, None) == [0, 1, 2, 3, 4]  # fewer frames than asked: all
    assert frame_indices(12, None, 5) == [0, 5, 10]
    assert frame_indices(0, 10, None) == []


def test_square_crop_is_centred_square_with_margin_and_zero_outside():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:60, 50:90] = 255  # a 40x40 "face"
    assert (square_crop(frame, (50, 20, 40, 40), 0.0, 40) == 255).all()
    crop = square_crop(frame, (50, 20, 40, 40), 0.5, 80)  # side 80: 20 px of margin each side
    assert crop.shape == (80, 80, 3)
    assert (crop[20:60, 20:60] == 255).all() and crop[:20].max() == 0 and crop[60:].max() == 0
    corner = square_crop(frame, (0, 0, 20, 20), 0.5, 40)  # half of the square is off the frame
    assert corner[:10].max() == 0 and corner[:, :10].max() == 0 and (corner[10:, 10:] == 0).all()


def test_eyes_give_a_face_box_around_them():
    x, y, w, h = eyes_to_box(40, 50, 60, 50)  # eye distance 20
    assert (w, h) == (44, 44) and x == 28 and y == round(50 - 0.4 * 44)
    assert eyes_to_box(5, 5, 5, 5) is None


def test_annotation_parsers(tmp_path):
    replay = tmp_path / "a.face"
    replay.write_text("0 10 20 30 40\n1 0 0 0 0\n2 11 21 31 41\n")
    assert read_replay_face(replay) == {0: (10, 20, 30, 40), 2: (11, 21, 31, 41)}
    msu = tmp_path / "b.face"
    msu.write_text("0,10,20,40,60\n3, 5, 5, 5, 9\n")  # corners; an empty box is skipped
    assert read_msu_face(msu) == {0: (10, 20, 30, 40)}
    oulu = tmp_path / "c.txt"  # absolute frame numbers; any zero coordinate = no detection
    oulu.write_text("3, 40, 50, 60, 50\n4, 0, 50, 61, 50\n5, 41, 50, 61, 50\n6, 0, 0, 0, 0\n")
    boxes = read_eye_file(oulu)
    assert set(boxes) == {3, 5} and boxes[3] == eyes_to_box(40, 50, 60, 50)


def test_oulu_protocol_names():
    assert parse_protocol("1") == ("Protocol_1", "")
    assert parse_protocol("Protocol_3_2") == ("Protocol_3", "_2")
    assert parse_protocol("4-6") == ("Protocol_4", "_6")
    for bad in ("3", "5", "1_2", "x"):
        with pytest.raises(FascoreError, match="3_1 ... 3_6"):
            parse_protocol(bad)


def test_dev_carve_out_is_seeded_and_subject_disjoint(tmp_path):
    def video(subject: str, split: str = "train") -> Video:
        return Video(tmp_path, subject, "live", "none", subject, split)

    videos = [video(f"s{i:02d}") for i in range(10)] + [video("t", "test")]
    moved, dev = carve_dev(videos, seed=0)
    assert len(dev) == 2 and carve_dev(videos, seed=0)[1] == dev
    assert {v.subject for v in moved if v.split == "dev"} == set(dev)
    assert next(v for v in moved if v.subject == "t").split == "test"
    assert len({tuple(carve_dev(videos, seed=s)[1]) for s in range(6)}) > 1
    assert carve_dev(videos[::-1], seed=0)[1] == dev  # file order does not matter


# -- the four data sets ------------------------------------------------------------------------


def test_every_importer_is_registered_and_has_a_fake_tree():
    assert sorted(IMPORTERS.names()) == sorted(BUILDERS)


def test_replay_attack(imported):
    result, df = imported["replay-attack"]
    assert df["video"].nunique() == 16 and not df["video"].str.contains("enroll").any()
    assert set(df["attack"]) == {"none", "print", "replay-mobile", "replay-highdef"}
    assert (df["label"] == np.where(df["attack"] == "none", "live", "spoof")).all()
    split = per_video(df, "split")
    subject = per_video(df, "subject")
    assert {subject[v] for v in split if split[v] == "dev"} == {"replay-attack:003"}
    assert {subject[v] for v in split if split[v] == "test"} == {"replay-attack:004"}
    assert set(df["session"]) == {"controlled", "adverse"} and set(df["device"]) == {"webcam"}
    assert set(df["domain"]) == set(df["dataset"]) == {"replay-attack"}
    assert sorted(set(df["frame"])) == KEPT
    for entry in result.record["videos"].values():  # the .face boxes are used; empty frames drop
        assert entry["from_annotation"] == 7 and entry["dropped"] == {
            "no_face": 3,
            "not_decoded": 0,
        }
    image = Image.open(df["abspath"].iloc[0])
    assert image.size == (128, 128) and image.format == "PNG"


def test_casia_fasd_uses_the_detector_and_carves_dev(imported):
    result, df = imported["casia-fasd"]
    assert set(df["attack"]) == {"none", "print-warped", "print-cut", "replay"}
    assert set(df["device"]) == {"normal", "low", "high"}
    by_split = df.groupby("split")["subject"].unique().apply(set).to_dict()
    assert by_split["test"] == {"casia-fasd:21", "casia-fasd:22"}
    assert len(by_split["dev"]) == 1 and not by_split["dev"] & by_split["train"]
    assert by_split["dev"] | by_split["train"] == {f"casia-fasd:0{i}" for i in (1, 2, 3)}
    entries = result.record["videos"].values()
    assert all(e["from_detector"] == 7 and e["dropped"]["no_face"] == 3 for e in entries)


def test_msu_mfsd(imported):
    result, df = imported["msu-mfsd"]
    assert set(df["attack"]) == {"none", "print", "replay-ipad"}
    assert set(df["device"]) == {"laptop", "android"}
    subjects = df.groupby("split")["subject"].unique().apply(set).to_dict()
    assert subjects["test"] == {"msu-mfsd:001", "msu-mfsd:013"}
    assert subjects["train"] | subjects["dev"] == {"msu-mfsd:002", "msu-mfsd:003", "msu-mfsd:005"}
    assert all(e["from_annotation"] == 7 for e in result.record["videos"].values())


def test_oulu_npu_folders_and_eye_annotations(imported):
    result, df = imported["oulu-npu"]
    assert df["video"].nunique() == 24
    assert set(df["attack"]) == {"none", "print", "replay"}
    assert set(df["device"]) == {"phone1", "phone2"} and set(df["session"]) == {"session1"}
    split, subject = per_video(df, "split"), per_video(df, "subject")
    assert {subject[v] for v in split if split[v] == "test"} == {"oulu-npu:36"}
    # eye lines from frame 3 (absolute): of the 7 kept face frames, 4 and 5 .. 7 come from the
    # eyes and 0 .. 2 from the detector; the zero rows (frames 9-11) give no box: dropped
    annotated = [i for i in KEPT if i in EYE_FRAMES]
    for entry in result.record["videos"].values():
        assert entry["from_annotation"] == len(annotated) == 4
        assert entry["from_detector"] == 3 and entry["dropped"]["no_face"] == 3


def test_oulu_npu_protocol_lists(trees, tmp_path):
    result = run_import(
        "oulu-npu", trees["oulu-npu"], tmp_path, ImportOptions(detector="haar", protocol="1")
    )
    df = read_manifest(result.manifest)
    assert df["video"].nunique() == 12 and set(df["device"]) == {"phone1"}
    assert set(df["split"]) == {"train", "dev", "test"}
    reasons = {s["path"]: s["reason"] for s in result.record["skipped"]}
    assert reasons["Protocols/Protocol_1/Train.txt: +1,1_1_02_2"] == "label and name disagree"
    assert "not found" in reasons["1_1_03_2.avi"]
    with pytest.raises(FascoreError, match="Protocol_2"):
        run_import(
            "oulu-npu", trees["oulu-npu"], tmp_path, ImportOptions(detector="haar", protocol="2")
        )


def test_manifests_pass_validation(imported):
    for name in ("replay-attack", "casia-fasd"):
        report = validate_manifest(imported[name][0].manifest)
        assert report.ok, [i.message for i in report.errors]


def test_preprocessing_record(imported):
    record = read_preprocessing(imported["casia-fasd"][0].manifest)
    assert record["decoder"]["name"] == "PyAV" and record["decoder"]["version"]
    assert record["detector"]["name"] == "haar" and record["detector"]["opencv"]
    assert record["frame_rule"]["frames"] == 10 and record["crop"]["size"] == 128
    assert record["totals"]["frames_dropped"]["no_face"] == 20 * 3
    assert any("dev split" in note for note in record["notes"])


# -- damaged trees, resume, errors ---------------------------------------------------------------


def test_corrupt_video_and_stray_files_are_reported_and_import_finishes(tmp_path, capsys):
    root = tmp_path / "replay"
    write_video(root / "train/real/client001_session01_webcam_authenticate_adverse_1.mov")
    bad = root / "train/real/client002_session01_webcam_authenticate_adverse_1.mov"
    bad.write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "train/real/notes.txt").write_text("stray")
    write_video(
        root / "test/attack/fixed/attack_laser_client003_session01_mobile_photo_adverse.mov"
    )
    out = tmp_path / "out"
    args = ["import", "replay-attack", str(root), "--out", str(out), "--workers", "1"]
    args += ["--detector", "haar"]  # the drawn faces are Haar's (docs/benchmarks.md)
    assert cli.main(args) == 1  # half of train lost: over --max-lost, everything still written
    captured = capsys.readouterr()
    printed = captured.out
    assert "imported 1 video(s), 7 face crop(s)" in printed and "3 file(s) skipped" in printed
    assert "split train lost 1 of 2 video(s)" in captured.err
    reasons = {s["path"]: s["reason"] for s in read_preprocessing(out)["skipped"]}
    assert reasons[bad.relative_to(root).as_posix()].startswith("cannot decode")
    assert "not a Replay-Attack video" in reasons["train/real/notes.txt"]
    assert (
        "naming"
        in reasons["test/attack/fixed/attack_laser_client003_session01_mobile_photo_adverse.mov"]
    )
    assert "face-locations/ not found" in printed
    assert cli.main([*args, "--max-lost", "0.5"]) == 0


@pytest.mark.slow
def test_resume_skips_finished_videos(tmp_path):
    root = replay_attack(tmp_path / "replay")
    out = tmp_path / "out"
    first = run_import("replay-attack", root, out, ImportOptions(detector="haar", workers=2))
    text, image = first.manifest.read_text(), next((out / "images").rglob("*.png"))
    stamp = image.stat().st_mtime_ns
    again = run_import("replay-attack", root, out, ImportOptions(detector="haar", workers=1))
    assert again.resumed == 16 and again.manifest.read_text() == text
    assert image.stat().st_mtime_ns == stamp
    next((out / ".import").rglob("*.json")).unlink()  # as if interrupted on that video
    assert run_import("replay-attack", root, out, ImportOptions(detector="haar")).resumed == 15
    changed = run_import("replay-attack", root, out, ImportOptions(detector="haar", size=64))
    assert changed.resumed == 0 and Image.open(image).size == (64, 64)


def test_every_k_and_detector_only(trees, tmp_path):
    opts = ImportOptions(detector="haar", frames=None, every=5, use_annotations=False)
    result = run_import("msu-mfsd", trees["msu-mfsd"], tmp_path, opts)
    df = read_manifest(result.manifest)
    assert sorted(set(df["frame"])) == [0, 5]  # frame 10 is empty: dropped, counted
    entries = result.record["videos"].values()
    assert all(e["from_detector"] == 2 and e["dropped"]["no_face"] == 1 for e in entries)
    assert json.loads((tmp_path / "preprocessing.json").read_text())["annotations"] == "ignored"


def test_src_may_be_the_folder_above_the_data_set(trees, tmp_path):
    result = run_import(
        "casia-fasd", trees["casia-fasd"].parent, tmp_path, ImportOptions(detector="haar", frames=1)
    )
    assert read_manifest(result.manifest)["video"].nunique() == 20


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_missing_or_foreign_source_is_a_readable_error(name, trees, tmp_path):
    with pytest.raises(FascoreError, match="does not exist"):
        run_import(name, tmp_path / "nope", tmp_path / "out", ImportOptions(detector="haar"))
    other = next(root for key, root in trees.items() if key != name)
    with pytest.raises(FascoreError, match="does not look like .*expected a folder holding"):
        run_import(name, other, tmp_path / "out", ImportOptions(detector="haar"))


def test_cli_errors_are_one_line(trees, tmp_path, capsys):
    args = ["import", "casia-fasd", str(trees["casia-fasd"]), "--out", str(tmp_path)]
    assert cli.main([*args, "--protocol", "1"]) == 1
    assert "--protocol applies to oulu-npu only" in capsys.readouterr().err
    assert cli.main([*args, "--margin", "-1"]) == 1
    assert "Traceback" not in capsys.readouterr().err
