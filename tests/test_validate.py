"""Manifest validation: every bad input gives a readable issue, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fascore import cli
from fascore.data.manifest import write_manifest
from fascore.data.validate import Issue, format_report, validate_manifest


def make_manifest(root: Path, size: int = 12) -> pd.DataFrame:
    """A clean manifest: 2 domains x 3 splits, 4 subjects per split, 3 frames per video."""
    rng = np.random.default_rng(0)
    rows = []
    for domain in ("A", "B"):
        for split in ("train", "dev", "test"):
            for s in range(4):
                subject = f"{split}{s}"
                for label, attack in (("live", "none"), ("spoof", ("print", "replay")[s % 2])):
                    video = f"{domain}-{subject}-{label}"
                    for frame in range(3):
                        rel = f"{domain}/{video}_{frame}.png"
                        (root / domain).mkdir(parents=True, exist_ok=True)
                        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                        Image.fromarray(pixels).save(root / rel)
                        rows.append((rel, label, attack, domain, subject, video, split, frame))
    cols = ["path", "label", "attack", "domain", "subject", "video", "split", "frame"]
    df = pd.DataFrame(rows, columns=cols)
    write_manifest(df, root)
    return df


@pytest.fixture
def clean(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    return tmp_path, make_manifest(tmp_path)


def codes(issues: list[Issue]) -> set[str]:
    return {i.code for i in issues}


def test_clean_manifest_passes_with_stats(clean, capsys) -> None:
    root, df = clean
    report = validate_manifest(root)
    assert report.ok and not report.warnings and not report.info
    assert report.stats["rows"] == len(df) == 144
    assert report.stats["videos"] == 48 and report.stats["images_decoded"] == 144
    counts = pd.DataFrame(report.stats["counts"])
    assert counts["images"].sum() == 144
    one = counts.query("domain == 'A' and split == 'train' and attack == 'print'")
    assert one[["images", "videos"]].values.tolist() == [[6, 2]]
    assert cli.main(["validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "144 images, 48 videos" in out


def rewrite(root: Path, df: pd.DataFrame) -> None:
    df.to_csv(root / "manifest.csv", index=False)


def edit_label(df):
    df.loc[3, "label"] = "fake"


def edit_split(df):
    df.loc[5, "split"] = "validation"


def edit_live_attack(df):
    df.loc[0, "attack"] = "print"


def edit_spoof_none(df):
    df.loc[3:4, "attack"] = "none"  # rows 3-4: the first spoof video


def edit_escape(df):
    df.loc[0, "path"] = "../outside.png"
    df.loc[1, "path"] = "/etc/passwd"


def edit_dup_row(df):
    df.loc[len(df)] = df.loc[0]


def edit_dup_path(df):
    df.loc[len(df)] = df.loc[0].replace({"A": "B"})


def edit_leak(df):
    df.loc[(df["subject"] == "train0") & (df["domain"] == "B"), "subject"] = "test0"


def edit_video_split(df):
    df.loc[0, "split"] = "dev"


def edit_video_label(df):
    df.loc[1, ["label", "attack"]] = ["spoof", "print"]


def edit_empty(df):
    df.loc[4, "subject"] = ""


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (edit_label, "unknown_label"),
        (edit_split, "unknown_split"),
        (edit_live_attack, "live_with_attack"),
        (edit_spoof_none, "spoof_without_attack"),
        (edit_escape, "path_escapes"),
        (edit_dup_row, "duplicate_rows"),
        (edit_dup_path, "duplicate_paths"),
        (edit_leak, "subject_leakage"),
        (edit_video_split, "video_spans_split"),
        (edit_video_label, "video_spans_label"),
        (edit_empty, "empty_values"),
    ],
)
def test_each_bad_table_is_an_error(clean, capsys, edit, code) -> None:
    root, df = clean
    df = df.astype(str)
    edit(df)
    rewrite(root, df)
    report = validate_manifest(root, images=False)
    assert code in codes(report.errors)
    assert cli.main(["validate", str(root), "--no-images"]) == 1
    out = capsys.readouterr().out
    assert f"[{code}]" in out and "Traceback" not in out


def test_escaping_paths_are_never_opened(clean) -> None:
    root, df = clean
    df = df.astype(str)
    edit_escape(df)
    rewrite(root, df)
    report = validate_manifest(root)
    assert "missing_files" not in codes(report.errors)
    assert "lines 2, 3" in next(i for i in report.errors if i.code == "path_escapes").message


def test_missing_files_list_five_and_count(clean) -> None:
    root, df = clean
    for rel in df["path"][:7]:
        (root / rel).unlink()
    issue = next(i for i in validate_manifest(root).errors if i.code == "missing_files")
    assert issue.count == 7 and issue.rows == list(range(7))
    assert df["path"][4] in issue.message and df["path"][5] not in issue.message
    assert "(and 2 more)" in issue.message


def test_corrupt_images_are_found_by_verify_and_decode(clean) -> None:
    root, df = clean
    (root / df["path"][0]).write_bytes(b"not an image at all")
    data = (root / df["path"][1]).read_bytes()
    (root / df["path"][1]).write_bytes(data[: len(data) // 2])  # truncated: only a decode sees it
    report = validate_manifest(root)
    issue = next(i for i in report.errors if i.code == "corrupt_images")
    assert issue.rows == [0, 1] and "2 image(s)" in issue.message
    assert validate_manifest(root, images=False).ok
    sampled = validate_manifest(root, sample=10)
    assert sampled.stats["images_decoded"] == 10


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "not_csv"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01", "not_csv"),
        (b"just some text\nwithout the right columns\n", "missing_columns"),
        (b"path,label,attack,domain,subject,video,split\n", "empty"),
    ],
)
def test_unreadable_manifests_are_reported(tmp_path: Path, capsys, content, code) -> None:
    (tmp_path / "manifest.csv").write_bytes(content)
    report = validate_manifest(tmp_path / "manifest.csv")
    assert codes(report.errors) == {code}
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().out


def test_missing_manifest_says_how_to_make_one(tmp_path: Path, capsys) -> None:
    assert cli.main(["validate", str(tmp_path / "nope.csv")]) == 1
    out = capsys.readouterr().out
    assert "not found" in out and "synth" in out


def test_warnings_and_info(clean) -> None:
    root, df = clean
    keep = ~((df["domain"] == "B") & (df["split"] == "dev"))
    keep &= ~((df["domain"] == "A") & (df["split"] == "test") & (df["label"] == "spoof"))
    keep &= ~((df["domain"] == "A") & df["subject"].isin(["dev2", "dev3"]))
    df = df[keep].astype(str)
    rewrite(root, df)
    Image.new("RGB", (20, 10)).save(root / df["path"].iloc[0])
    report = validate_manifest(root)
    assert report.ok
    assert codes(report.warnings) == {"no_dev_split", "one_class", "few_samples"}
    assert "B" in next(i for i in report.warnings if i.code == "no_dev_split").message
    text = format_report(report)
    assert "A/test has live samples only" in text and "A/dev live (6 images, 2 videos)" in text
    assert codes(report.info) == {"mixed_sizes"}
    assert report.stats["image_sizes"] == {"12x12": len(df) - 1, "20x10": 1}
