"""The CLI loads only what a command needs (issue 20): usage never loads pandas, plotly or torch;
``runs`` and ``cancel`` never load plotly or torch. Each check runs in a fresh interpreter and
reads its ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "plotly", "torch")

# Every sub-command's usage, as `python -m fascore <verb> --help` formats it.
USAGE = """
import json, sys
from fascore.cli import build_parser
parser = build_parser()
parser.format_help()
sub = next(a for a in parser._actions if a.dest == "command")
for verb, p in sub.choices.items():
    p.format_help()
print(json.dumps({"verbs": sorted(sub.choices), "loaded": sorted(sys.modules)}))
"""
# A command's own run: `python -m fascore ARGS` on an empty store.
RUN = """
import json, sys
from fascore.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(sys.modules)}))
"""


def _loaded(code: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _top(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_usage_of_every_command_loads_no_pandas_plotly_or_torch():
    got = _loaded(USAGE)
    assert {"train", "runs", "cancel", "import", "report", "sweep", "results"} <= set(got["verbs"])
    assert not _top(got["loaded"]) & set(HEAVY), sorted(_top(got["loaded"]) & set(HEAVY))


@pytest.mark.parametrize("argv", [["runs"], ["cancel", "no-such-run"]])
def test_runs_and_cancel_load_no_plotly_or_torch(argv, tmp_path):
    env = {**os.environ, "FASCORE_RUNS_DIR": str(tmp_path)}
    got = _loaded(RUN, *argv, env=env)
    assert got["code"] in (0, 1)  # cancel of an unknown run: one readable error, exit 1
    assert not _top(got["loaded"]) & {"plotly", "torch"}
