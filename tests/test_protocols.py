"""Protocol presets, their text forms, and the five row sets protocol_frame draws from manifests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from fascore.data.manifest import write_manifest
from fascore.data.protocols import PARTS, PROTOCOLS, Protocol, parse_protocol, protocol_frame
from fascore.errors import FascoreError

PUBLIC = ("oulu-npu", "casia-fasd", "replay-attack", "msu-mfsd")


def test_every_preset_parses_back_to_itself():
    assert len(PROTOCOLS.names()) == 4 + 12 + 12 + 12 + 8  # loo, cross, scarce, synth, celeba
    for name in PROTOCOLS.names():
        protocol = parse_protocol(name)
        assert protocol == PROTOCOLS.get(name)() and protocol.name == name
        assert protocol.target_domain not in protocol.source_domains
        assert protocol.shot_unit in ("video", "subject") and protocol.description


def test_cross_data_set_is_zero_shot_and_takes_letters():
    protocol = parse_protocol("cross:replay-attack->casia-fasd")
    assert protocol.source_domains == ("replay-attack",) and protocol.target_domain == "casia-fasd"
    assert protocol.shots == 0
    assert parse_protocol(" cross:I->C ") == protocol


def test_leave_one_out_family():
    protocol = parse_protocol("loo:O&C&I->M")
    assert set(protocol.source_domains) == {"oulu-npu", "casia-fasd", "replay-attack"}
    assert protocol.target_domain == "msu-mfsd" and protocol.shots == 0
    assert parse_protocol("loo:I&O&C->M") == protocol  # any order: the canonical name
    assert {parse_protocol(n).target_domain for n in PROTOCOLS.names() if n[:4] == "loo:"} == set(
        PUBLIC
    )


def test_scarce_target_counts_subjects_and_synth_counts_videos():
    scarce = parse_protocol("scarce:I&O->C@3")
    assert scarce.source_domains == ("replay-attack", "oulu-npu") and scarce.shots == 3
    assert (
        scarce.shot_unit == "subject"
        and scarce.name == "scarce:replay-attack&oulu-npu->casia-fasd@3"
    )
    assert parse_protocol("scarce:M->C@all").shots is None
    assert parse_protocol("scarce:M->C@0").shots == 0
    synth = parse_protocol("synth:studio->phone@5")
    assert (synth.source_domains, synth.target_domain, synth.shots) == (("studio",), "phone", 5)
    assert synth.shot_unit == "video"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "valid forms: cross:A->B"),
        ("studio->phone", "valid forms"),
        ("cross:I->I", "must differ"),
        ("cross:X->C", "unknown data set 'X'"),
        ("cross:I->C@5", "zero-shot"),
        ("loo:O&C->M", "loo:O&C&I->M"),
        ("scarce:I->C", "add @k"),
        ("scarce:I->C@few", "whole number"),
        ("synth:studio->casia-fasd@5", "unknown SynthFAS domain"),
    ],
)
def test_bad_protocol_text_says_what_is_valid(text, message):
    with pytest.raises(FascoreError, match=message):
        parse_protocol(text)


def test_protocol_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_protocol("cross:I->C").shots = 5


def small_manifest(folder: Path, domain: str, splits=("train", "dev", "test")) -> Path:
    """Two videos (live, spoof) of one subject per split, two frames each."""
    rows = [
        {
            "path": f"img/{split}-{label}-{frame}.png",
            "label": label,
            "attack": "none" if label == "live" else "print",
            "domain": domain,
            "subject": f"{domain}:{split}",
            "video": f"{domain}/{split}-{label}",
            "split": split,
            "frame": frame,
        }
        for split in splits
        for label in ("live", "spoof")
        for frame in range(2)
    ]
    return write_manifest(pd.DataFrame(rows), folder)


def test_protocol_frame_splits_sources_and_target(tmp_path):
    manifests = [
        small_manifest(tmp_path / d, d) for d in ("replay-attack", "casia-fasd", "msu-mfsd")
    ]
    protocol = parse_protocol("scarce:I&M->C@1")
    parts = protocol_frame(manifests, protocol)
    assert tuple(parts) == PARTS
    assert set(parts["source_train"]["domain"]) == {"replay-attack", "msu-mfsd"}
    assert set(parts["source_dev"]["split"]) == {"dev"} and len(parts["source_dev"]) == 8
    for part in ("target_train", "target_dev", "target_test"):
        assert set(parts[part]["domain"]) == {"casia-fasd"} and len(parts[part]) == 4
        assert set(parts[part]["split"]) == {part.split("_")[1]}
    row = parts["target_test"].iloc[0]
    assert row["abspath"] == str((tmp_path / "casia-fasd" / row["path"]).resolve())
    assert row["manifest"] == str(manifests[1])


def test_protocol_frame_names_missing_domains(tmp_path):
    manifests = [small_manifest(tmp_path / "a", "replay-attack")]
    with pytest.raises(FascoreError, match="needs domain.* casia-fasd.*hold replay-attack"):
        protocol_frame(manifests, parse_protocol("cross:I->C"))


def test_protocol_frame_refuses_collisions(tmp_path):
    one = small_manifest(tmp_path / "one", "replay-attack")
    two = small_manifest(tmp_path / "two", "replay-attack")
    with pytest.raises(FascoreError, match="domain 'replay-attack' is in both"):
        protocol_frame([one, two], parse_protocol("cross:I->C"))
    clash = pd.read_csv(two).assign(domain="casia-fasd")  # same video ids, another domain
    write_manifest(clash, tmp_path / "two")
    with pytest.raises(FascoreError, match="appear in several manifests"):
        protocol_frame([one, two], parse_protocol("cross:I->C"))


def test_protocol_frame_needs_a_target_test_split_and_shots(tmp_path):
    source = small_manifest(tmp_path / "s", "replay-attack")
    no_test = small_manifest(tmp_path / "t", "casia-fasd", splits=("train", "dev"))
    with pytest.raises(FascoreError, match="casia-fasd has no rows in its test split"):
        protocol_frame([source, no_test], parse_protocol("cross:I->C"))
    no_train = small_manifest(tmp_path / "u", "msu-mfsd", splits=("dev", "test"))
    assert protocol_frame([source, no_train], parse_protocol("cross:I->M"))["target_train"].empty
    with pytest.raises(FascoreError, match="msu-mfsd has no rows in its train split"):
        protocol_frame(
            [source, no_train], Protocol("k", ("replay-attack",), "msu-mfsd", 2, "video", "")
        )
