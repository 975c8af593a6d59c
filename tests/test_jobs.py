"""The job runner: device slots held by real processes, process-group cancel, interrupted runs,
idempotent submit, resume, run planning, the CLI, and one real training job end to end."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fascore import devices
from fascore.cli import main
from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.jobs import control as jobs
from fascore.jobs import launchers
from fascore.store.runs import CancelRequested, Run, RunStore, pid_alive
from tests.fakes import make_fake_store

ROOT = Path(__file__).resolve().parent.parent
HOLD_SLOT = """
import sys, time
from pathlib import Path
from fascore.devices import device_slot
from fascore.store.runs import Run
with device_slot(Run(Path(sys.argv[1])), sys.argv[2], poll_s=0.05) as i:
    print(f"held {i}", flush=True)
    time.sleep(60)
"""
GROUP = """
import signal, subprocess, sys, time
from pathlib import Path
from fascore.store.runs import Run
with Run(Path(sys.argv[2])).hold():  # what a trainer does first: own the run
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    if sys.argv[1] == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(child.pid, flush=True)
    time.sleep(60)
"""
OWNER = """
import sys, time
from pathlib import Path
from fascore.store.runs import Run
with Run(Path(sys.argv[1])).hold():
    print("owner", flush=True)
    time.sleep(60)
"""


def _spawn(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def _line(proc: subprocess.Popen, timeout: float = 20.0) -> str | None:
    """The child's next stdout line, or None if none comes within ``timeout``."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else None


def _kill(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_for(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SLOTS_CPU", raising=False)
    return RunStore()


def _run(store: RunStore, name: str) -> Run:
    run = store.run(name)
    run.write_config({"method": "source_only"})
    return run


# -- slots ----------------------------------------------------------------------------------------
def test_a_busy_slot_queues_the_next_job_until_the_holder_dies(store):
    a, b = _run(store, "a"), _run(store, "b")
    holder = _spawn(HOLD_SLOT, str(a.path), "cpu")
    waiter = None
    try:
        assert _line(holder) == "held 0"
        waiter = _spawn(HOLD_SLOT, str(b.path), "cpu")
        assert _wait_for(lambda: "waiting for a free cpu slot" in b.status().get("message", ""))
        assert b.status()["state"] == "queued"
        assert _line(waiter, timeout=1.0) is None  # still waiting
        os.killpg(holder.pid, signal.SIGKILL)  # a crash: the kernel drops the lock
        assert _line(waiter) == "held 0"
    finally:
        _kill(holder, *([waiter] if waiter else []))


def test_slot_count_comes_from_the_environment(store):
    env = {"FASCORE_SLOTS_CPU": "2"}
    procs = [_spawn(HOLD_SLOT, str(_run(store, n).path), "cpu", env=env) for n in ("a", "b")]
    try:
        assert sorted(_line(p) for p in procs) == ["held 0", "held 1"]
    finally:
        _kill(*procs)


def test_each_device_has_its_own_slots(store):
    procs = [
        _spawn(HOLD_SLOT, str(_run(store, n).path), d) for n, d in (("a", "cpu"), ("b", "cuda:0"))
    ]
    try:
        assert [_line(p) for p in procs] == ["held 0", "held 0"]
    finally:
        _kill(*procs)


def test_cancel_while_waiting_for_a_slot(store):
    a, b = _run(store, "a"), _run(store, "b")
    holder = _spawn(HOLD_SLOT, str(a.path), "cpu")
    try:
        assert _line(holder) == "held 0"
        threading.Timer(0.3, b.request_cancel).start()
        with pytest.raises(CancelRequested), devices.device_slot(b, "cpu", poll_s=0.05):
            pytest.fail("the slot is held by another process")
        assert b.status()["state"] == "cancelled"
    finally:
        _kill(holder)


def test_bad_slot_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("FASCORE_SLOTS_GPU", "two")
    with pytest.raises(FascoreError, match="FASCORE_SLOTS_GPU"):
        devices.slot_count("cuda:0")


# -- cancel and interrupted -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["polite", "stubborn"])
def test_cancel_stops_the_whole_process_group(store, mode):
    run = _run(store, f"job-{mode}")
    proc = _spawn(GROUP, mode, str(run.path))
    try:
        grandchild = int(_line(proc))
        run.update_status(state="running", pid=proc.pid, pgid=proc.pid, launcher="local")
        assert run.state() == "running"
        t0 = time.monotonic()
        jobs.cancel(run, grace_s=0.5)
        took = time.monotonic() - t0
        assert not pid_alive(proc.pid) and not pid_alive(grandchild)
        assert not launchers.group_alive(proc.pid)
        assert run.state() == "cancelled" and run.cancel_requested()
        assert took < 5.0 and (mode == "polite" or took >= 0.5)  # SIGKILL only after the grace
    finally:
        _kill(proc)


def test_a_job_on_another_host_is_never_signalled(store):
    run = _run(store, "elsewhere")
    run.update_status(state="running", pid=os.getpid(), pgid=os.getpgid(0), launcher="local")
    run.update_status(host="another-machine")  # its heartbeat is fresh, so it reads running
    with pytest.raises(FascoreError, match="runs on another-machine: it was asked to stop"):
        jobs.cancel(run)
    assert run.status()["state"] == "running" and run.cancel_requested()


def test_a_killed_job_reads_as_interrupted(store):
    run = _run(store, "crashed")
    proc = _spawn(OWNER, str(run.path))
    assert _line(proc) == "owner"
    run.update_status(state="running", pid=proc.pid)
    assert run.state() == "running"
    _kill(proc)
    assert run.state() == "interrupted"
    with pytest.raises(FascoreError, match="only queued or running"):
        jobs.cancel(run)


def test_a_queued_job_whose_process_died_reads_as_interrupted(store):
    run = _run(store, "died-early")
    proc = _spawn("pass")
    proc.wait()
    run.update_status(state="queued", pid=proc.pid)
    assert run.state() == "interrupted"


# -- submit, resume, plan (with a launcher that records instead of starting) ----------------------
@launchers.LAUNCHERS.register("recorder")
class Recorder(launchers.Launcher):
    calls: list[list[str]] = []

    def start(self, run, argv, env):
        Recorder.calls.append([*argv, env[jobs.RUNS_ENV]])
        return {"pid": None}

    def stop(self, run, grace_s):
        Recorder.calls.append(["stop", run.id])


def _cfg(**kw) -> RunConfig:
    return RunConfig(data=("/nowhere/manifest.csv",), source_domains=("studio",), **kw)


def test_submit_is_idempotent_and_resume_relaunches(store):
    Recorder.calls.clear()
    cfg = _cfg(method="source_only")
    run = jobs.submit(cfg, store, launcher="recorder")
    assert Recorder.calls == [["train", "--run", run.id, str(store.root.resolve())]]
    assert RunConfig.from_dict(run.config()) == cfg and run.state() == "queued"
    assert jobs.submit(cfg.replace(created=1.0), store, launcher="recorder") == run
    run.update_status(state="done")
    jobs.submit(cfg, store, launcher="recorder")
    assert len(Recorder.calls) == 1  # queued, then done: nothing started again
    with pytest.raises(FascoreError, match="only interrupted, failed or cancelled"):
        jobs.resume(run)
    run.update_status(state="failed", message="boom")
    run.request_cancel()
    jobs.resume(run)
    assert Recorder.calls[-1][:4] == ["train", "--run", run.id, "--resume"]
    assert run.status()["state"] == "queued" and not run.cancel_requested()


def test_submit_checks_the_config_first(store):
    with pytest.raises(FascoreError, match="target domain"):
        jobs.submit(_cfg(target_domain="studio"), store, launcher="recorder")
    assert store.runs() == []


def test_plan_trains_a_teacher_first_when_none_is_given(store):
    plan = jobs.plan_runs(_cfg(), ["distill", "mmd", "target_only"], [0, 1], store=store)
    teachers = [c for c in plan if c.method == "source_only"]
    assert [c.seed for c in teachers] == [0, 1] and all(c.shots == 0 for c in teachers)
    assert plan[0].method == "source_only"  # before the students that need it
    for c in plan:
        if c.method in ("distill", "mmd"):
            assert c.teacher == next(t.run_id() for t in teachers if t.seed == c.seed)
    assert next(c for c in plan if c.method == "target_only").teacher is None
    assert len(plan) == 8


def test_plan_with_a_chosen_teacher(store, tmp_path):
    teacher = make_fake_store(store.root, n_students=3, weights=True)[0]
    plan = jobs.plan_runs(_cfg(), ["distill"], [0, 1], teacher=teacher.id, store=store)
    assert [(c.method, c.teacher) for c in plan] == [("distill", teacher.id)] * 2
    with pytest.raises(FascoreError, match="trained on studio, not office"):
        jobs.plan_runs(_cfg().replace(source_domains=("office",)), ["mmd"], [0], teacher=teacher.id)
    with pytest.raises(FascoreError, match="no run"):
        jobs.plan_runs(_cfg(), ["mmd"], [0], teacher="missing-run", store=store)
    with pytest.raises(FascoreError, match="at least one method"):
        jobs.plan_runs(_cfg(), [], [0], store=store)


def test_devices_end_with_the_cpu():
    devs = devices.devices()
    assert devs[-1]["id"] == "cpu" and "cores" in devs[-1]["label"]
    assert all(d["id"].startswith(("cuda:", "mps", "cpu")) for d in devs)


def test_devices_read_free_gpu_memory_from_nvidia_smi(monkeypatch):
    import torch

    out = "0, NVIDIA H100 80GB HBM3, 79000, 81559\n1, NVIDIA H100 80GB HBM3, 1024, 81559\n"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices.shutil, "which", lambda exe: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(
        devices.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=out)
    )
    devs = devices.devices()
    assert [d["id"] for d in devs] == ["cuda:0", "cuda:1", "cpu"]
    assert devs[1]["free_gb"] == 1.0 and devs[0]["label"].endswith("77.1 of 79.6 GB free")


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_lists_cancels_and_resumes(store, capsys):
    assert main(["runs"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    runs = make_fake_store(store.root, n_students=3, weights=True)
    assert main(["runs", "--experiment", "studio-to-phone-k5"]) == 0
    out = capsys.readouterr().out
    assert "experiment: studio-to-phone-k5" in out and all(r.id in out for r in runs)
    assert "HTER" in out and "%" in out
    assert main(["runs", "--experiment", "other"]) == 0
    assert "no runs yet" in capsys.readouterr().out
    assert main(["cancel", runs[0].id]) == 1
    assert "only queued or running" in capsys.readouterr().err
    assert main(["resume", "nope"]) == 1
    assert "no run 'nope'" in capsys.readouterr().err


# -- a real job: submit, watch, cancel, resume to done --------------------------------------------
@pytest.mark.slow
def test_a_real_job_runs_cancels_and_resumes(store, tmp_path):
    from tests.helpers import stripe_manifest

    manifest = str(stripe_manifest(tmp_path / "data", subjects=4, size=32))
    cfg = RunConfig(
        data=(manifest,), method="source_only", shots=0, select="source_dev", epochs=5,
        steps_per_epoch=2, batch_size=8, image_size=32, analysis=False, n_boot=20, device="cpu",
        source_domains=("studio",), target_domain="phone",
    )  # fmt: skip
    run = jobs.submit(cfg, store)
    pid = run.status()["pid"]
    try:
        assert _wait_for(lambda: run.state() == "running" and run.has("checkpoint"), 60)
        assert run.progress().get("fraction", 0) > 0
        jobs.cancel(run, grace_s=5)
        assert run.state() == "cancelled" and not launchers.group_alive(pid)
        done_epochs = len(run.metrics())
        jobs.resume(run)
        assert _wait_for(lambda: run.state() in ("done", "failed"), 60), run.log_tail()
        assert run.state() == "done", run.log_tail()
        assert "resumed after epoch" in run.log_tail(200)
        assert run.metrics()[-1]["epoch"] == 5 and done_epochs < 5
    finally:
        for key in ("pgid", "pid"):
            if run.status().get(key) and launchers.group_alive(run.status()[key]):
                os.killpg(run.status()[key], signal.SIGKILL)
