"""The layers contract (pyproject.toml, docs/architecture.md) holds, and it would catch a breach."""

import shutil
import subprocess
import sys
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
    assert "pages: no page imports another KEPT" in out.stdout


BREACHES = [  # (file, the import appended, what lint-imports reports)
    ("fascore/train/checkpoint.py", "from fascore.jobs import control",
     "fascore.train.checkpoint -> fascore.jobs.control"),
    ("fascore/eval/compare.py", "import pages.compare", "fascore.eval.compare -> pages.compare"),
    ("dashboard/ui.py", "import pages.overview", "dashboard.ui -> pages.overview"),
    ("pages/compare.py", "import pages.overview", "pages.compare -> pages.overview"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "line", "reported"), BREACHES)
def test_a_breach_breaks_it(tmp_path, path, line, reported):
    """A copy of the code with one forbidden import (upward, core -> pages, page -> page) fails
    the contracts: pages/ and dashboard/ are inside them."""
    for top in ("fascore", "dashboard", "pages"):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / path
    target.write_text(target.read_text() + f"\n{line}  # noqa: E402  (the breach under test)\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert reported in out.stdout, out.stdout
