"""The layers contract (pyproject.toml, docs/architecture.md) holds, and it would catch a breach."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -r requirements-dev.txt)")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_layers_contract_is_kept():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "layers: foundations" in out.stdout and "0 broken" in out.stdout


def test_an_upward_import_breaks_it(tmp_path):
    """A copy of the package where the trainer imports the jobs layer fails the same contract."""
    shutil.copytree(
        ROOT / "fascore", tmp_path / "fascore", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(
        ROOT / "dashboard", tmp_path / "dashboard", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    loop = tmp_path / "fascore" / "train" / "checkpoint.py"
    loop.write_text(
        loop.read_text()
        + textwrap.dedent("""
        from fascore.jobs import control  # noqa: E402  (the breach under test)
    """)
    )
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert "fascore.train.checkpoint -> fascore.jobs.control" in out.stdout
