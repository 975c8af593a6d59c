"""Issue 22, the third reliability pass: cancel signals a group only when its owner leads it,
run-file text shown as text, a bounded CelebA-Spoof label parser, the memory estimate before
training, and one clear message for each refusal (shots, sweeps, manifests, Slurm)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fascore.jobs import launchers
from fascore.store.lock import group_alive
from fascore.store.runs import RunStore

ROOT = Path(__file__).resolve().parent.parent
# A group leader (its own session) whose child, not the leader, owns the run: as a trainer
# started by a shell or a wrapper that does not call setsid.
LEADER = """
import subprocess, sys, time
owner = (
    "import sys, time\\n"
    "from pathlib import Path\\n"
    "from fascore.store.runs import Run\\n"
    "with Run(Path(sys.argv[1])).hold():\\n"
    "    print('owner', flush=True)\\n"
    "    time.sleep(120)\\n"
)
child = subprocess.Popen([sys.executable, "-c", owner, sys.argv[1]])
child.wait()
print("child gone", flush=True)
time.sleep(120)
"""


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


def test_cancel_signals_only_the_owner_when_it_does_not_lead_its_group(store):
    run = store.run("wrapped")
    run.write_config({"method": "source_only"})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER, str(run.path)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert leader.stdout.readline().strip() == "owner"
        owner = launchers.owner_pid(run)
        assert owner is not None and owner != leader.pid and not launchers.leads_group(owner)
        launchers.LocalLauncher().stop(run, grace_s=5.0)
        assert leader.stdout.readline().strip() == "child gone"  # the owner alone was stopped
        assert leader.poll() is None
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def test_cancel_stops_the_whole_group_of_a_leading_owner(tmp_path):
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"], start_new_session=True)
    try:
        assert launchers.leads_group(proc.pid)
        launchers.stop_process(proc.pid, grace_s=5.0, group=True)
        assert proc.wait(timeout=5) is not None
        assert not group_alive(proc.pid)  # the sleeps too (zombies awaiting a reaper count dead)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


LINK = "[click here](https://evil.example) **now** www.evil.example"


def test_text_from_run_files_is_shown_as_text_not_markdown(tmp_path, monkeypatch):
    """Issue 22.3: an experiment name or status message written as Markdown shows as typed."""
    from streamlit.testing.v1 import AppTest

    from dashboard.ui import plain
    from tests.fakes import make_fake_store

    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    runs = make_fake_store(tmp_path / "runs", n_students=1)
    for run in runs:
        run.write_config({**run.config(), "experiment": LINK})
    runs[1].update_status(message=LINK)
    app = str(ROOT / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=60).run()
    at.switch_page("../pages/overview.py").run()
    heads = [h.value for h in at.subheader if "Experiment" in h.value]
    assert heads == [f"Experiment · {plain(LINK)}"]
    at.query_params["run"] = runs[1].id
    at.switch_page("../pages/train.py").run()
    assert not at.exception
    bodies = [m.value for m in at.markdown if runs[1].id in m.value]
    assert bodies and plain(LINK) in bodies[0] and "](https" not in bodies[0]


def test_plain_escapes_every_markdown_mark():
    from dashboard.ui import plain

    assert plain("a_b*c`d") == r"a\_b\*c\`d"
    assert plain("- item\n# title") == r"\- item \# title"
    assert plain(":red[x] <b> $x$") == r"\:red\[x\] \<b\> \$x\$"
    assert plain("see www.x.org") == r"see www\.x.org"
    assert plain("studio-to-phone-k5 v1.2") == "studio-to-phone-k5 v1.2"  # nothing else changes
