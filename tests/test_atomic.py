"""The one atomic writer: old or new file, never half; no temporary file left behind."""

import os

import pytest

from fascore.atomic import atomic_path, atomic_write_text, temp_name


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "status.json"
    target.write_text("old")
    atomic_write_text(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "scores.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_temporary_names_are_private_to_a_process_and_call_and_keep_the_suffix(tmp_path):
    a, b = temp_name(tmp_path / "best.pt"), temp_name(tmp_path / "best.pt")
    assert a != b and a.parent == tmp_path
    assert a.name.startswith(f".best.{os.getpid()}-") and a.name.endswith(".tmp.pt")
