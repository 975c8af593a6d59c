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
        assert subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).stdout == b""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
