"""The slurm launcher on a real single-node Slurm cluster (``.ci/slurm-up``: munged, slurmctld and
slurmd on localhost), plus its options, state mapping and bad-input messages.

Real-cluster tests skip with the reason where Slurm cannot start (not root, packages missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.jobs import control as jobs
from fascore.jobs.slurm import launcher as slurm
from fascore.jobs.slurm.options import SlurmOptions, load_options, parse_time
from fascore.store.runs import Run, RunStore

ROOT = Path(__file__).resolve().parent.parent
OPTS = SlurmOptions(partition="debug", cpus=1, time=5)


# -- options, config file, state mapping (no cluster needed) -----------------------------------------
@pytest.mark.parametrize(
    ("text", "minutes"),
    [(90, 90), ("90", 90), ("1:30:00", 90), ("10:30", 11), ("2-00", 2880), ("1-01:02:03", 1503)],
)
def test_time_limits_read_like_slurm(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("bad", ["soon", "1:2:3:4", "0", "-5"])
def test_bad_time_limit_is_one_clear_error(bad):
    with pytest.raises(FascoreError, match="time limit"):
        parse_time(bad)


def test_options_come_from_the_store_file_then_the_flags(tmp_path):
    (tmp_path / "slurm.toml").write_text(
        'partition = "gpu"\ngpus = 2\ntime = "2:00:00"\nsbatch = ["--account=lab", "--exclusive"]\n'
    )
    opts = load_options(tmp_path)
    assert (opts.partition, opts.gpus, opts.time) == ("gpu", 2, 120)
    assert opts.sbatch_parameters() == {"account": "lab", "exclusive": True}
    assert opts.merged(gpus=1, partition=None).gpus == 1
    assert opts.merged(gpus=1).partition == "gpu"
    (tmp_path / "slurm.toml").write_text('partitoin = "gpu"\n')
    with pytest.raises(FascoreError, match="unknown Slurm option.*partitoin"):
        load_options(tmp_path)
    (tmp_path / "slurm.toml").write_text('sbatch = ["account=lab"]\n')
    with pytest.raises(FascoreError, match="not of the form --name"):
        load_options(tmp_path)


def test_state_is_the_status_while_final_and_slurms_view_while_active(tmp_path, monkeypatch):
    run = Run(tmp_path / "r")
    run.write_config(
        {"method": "source_only", "target_domain": "phone", "source_domains": ["studio"], "seed": 0}
    )
    views = {"7": ("PENDING", "Priority")}
    monkeypatch.setattr(slurm, "job_view", lambda job, refresh=False: views.get(job))
    run.update_status(state="queued", launcher="slurm", slurm_job="7")
    assert run.state() == "queued"
    for slurm_state, ours in [("RUNNING", "running"), ("REQUEUED", "queued"),
                              ("TIMEOUT", "interrupted"), ("PREEMPTED", "interrupted"),
                              ("CANCELLED", "interrupted"), ("FAILED", "interrupted")]:  # fmt: skip
        views["7"] = (slurm_state, "None")
        assert run.state() == ours, slurm_state
    for final in ("done", "failed", "cancelled"):  # the run's own final word stands
        run.update_status(state=final)
        assert run.state() == final
    run.update_status(state="running", pid=2**22 + 12345)  # a pid on another node: not ours
    views.clear()  # Slurm forgot the job: the heartbeat decides
    assert run.state() == "running"
    run.update_status(heartbeat=time.time() - 3600)
    status = run.status() | {"heartbeat": time.time() - 3600}
    run.write_json("status", status)
    assert run.state() == "interrupted"


def test_missing_sbatch_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FascoreError, match="sbatch not found.*login node"):
        slurm.check_sbatch()


def test_a_store_the_nodes_cannot_see_is_refused_at_submission(tmp_path, monkeypatch):
    """srun on a node without the store's filesystem fails to read the token (a stand-in srun
    here: a single-node cluster shares every path with itself)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text('#!/bin/sh\necho "cat: $7: No such file or directory" >&2\nexit 1\n')
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(FascoreError, match="cannot see the run store.*shared|FASCORE_RUNS_DIR"):
        slurm.check_store_visible(RunStore(tmp_path / "runs"), OPTS)
    assert not list((tmp_path / "runs" / slurm.SUBMITIT_DIR).glob("store-visible-*"))


def test_checkpoint_hook_requeues_the_same_run_resuming(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    job = slurm.TrainJob(str(run.path), ["train", "--run", "r", "--resume"], {}, "python")
    again = job.checkpoint()
    assert again.function.argv == job.argv and "--resume" in again.function.argv
    assert "requeued" in run.log_tail()


# -- the real single-node cluster ------------------------------------------------------------------
slow = pytest.mark.slow


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> str:
    """Start (or reuse) the single-node cluster; skip with the reason where it cannot start."""
    missing = [e for e in ("munged", "slurmctld", "slurmd", "sbatch") if not shutil.which(e)]
    if missing:
        pytest.skip(
            f"Slurm cannot start: {', '.join(missing)} not installed (.ci/run installs them)"
        )
    if os.geteuid() != 0:
        pytest.skip("Slurm cannot start: the single-node cluster needs root (SlurmUser=root)")
    out = subprocess.run([str(ROOT / ".ci" / "slurm-up")], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    if out.returncode != 0:
        pytest.skip(f"Slurm cannot start: {out.stderr.strip() or out.stdout.strip()}")
    conf = out.stdout.strip().splitlines()[-1]
    os.environ["SLURM_CONF"] = conf
    return conf


@pytest.fixture()
def store(tmp_path, monkeypatch, cluster) -> RunStore:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> str:
    from tests.helpers import stripe_manifest

    return str(stripe_manifest(tmp_path_factory.mktemp("slurm-data"), subjects=4, size=32))


def _config(manifest: str, **kw) -> RunConfig:
    base = dict(
        data=(manifest,), method="source_only", shots=0, select="source_dev", epochs=2,
        steps_per_epoch=2, batch_size=8, image_size=32, analysis=False, n_boot=20, device="cpu",
        source_domains=("studio",), target_domain="phone",
    )  # fmt: skip
    return RunConfig(**{**base, **kw})


def _watch(runs: list[Run], until, timeout: float) -> dict[str, list[str]]:
    """Poll the runs' states until ``until(states)``; returns each run's distinct states in order."""
    seen: dict[str, list[str]] = {r.id: [] for r in runs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {}
        for r in runs:
            states[r.id] = s = r.state()
            if not seen[r.id] or seen[r.id][-1] != s:
                seen[r.id].append(s)
        if until(states):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"timed out; states seen: {seen}; log: {runs[-1].log_tail(20)}")


def _slurm_ends(job: str, timeout: float = 60) -> str:
    """Slurm's final state of ``job`` once it has left the node (the run may say done first)."""
    deadline = time.monotonic() + timeout
    while (state := slurm.job_view(job, refresh=True)[0]) in ("RUNNING", "COMPLETING"):
        assert time.monotonic() < deadline, f"job {job} still {state}"
        time.sleep(0.3)
    return state


def _final(run: Run) -> dict:
    return json.loads(run.file("final").read_text())


@slow
@pytest.mark.slurm
def test_a_cli_slurm_run_goes_queued_running_done_and_equals_the_local_run(
    store, manifest, tmp_path, capsys
):
    from fascore.cli import main

    store.root.mkdir(parents=True)
    (store.root / "slurm.toml").write_text('partition = "debug"\ncpus = 1\ntime = "0:10:00"\n')
    flags = ["--data", manifest, "--method", "source_only", "--shots", "0", "--select",
             "source_dev", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "8",
             "--image-size", "32", "--no-analysis", "--n-boot", "20", "--device", "cpu",
             "--source-domains", "studio", "--target-domain", "phone"]  # fmt: skip
    assert main(["train", "--launcher", "slurm", "--time", "5", *flags]) == 0
    out = capsys.readouterr().out
    run = store.get(out.split()[1].rstrip(":"))
    job = run.status()["slurm_job"]
    assert f"Slurm job {job}" in out and run.status()["launcher"] == "slurm"
    assert run.status()["slurm"]["time"] == 5 and run.status()["slurm"]["partition"] == "debug"
    seen = _watch([run], lambda s: s[run.id] not in ("queued", "running"), 120)[run.id]
    assert seen == ["queued", "running", "done"], (seen, run.log_tail())
    assert f"submitted to Slurm as job {job}" in run.log_tail(100)
    assert "epoch 2:" in run.log_tail(100)  # the trainer's output is in the run's log
    assert _slurm_ends(job) == "COMPLETED"

    cfg = RunConfig.from_dict(run.config())
    local = jobs.submit(cfg, RunStore(tmp_path / "local"), "local")
    _watch([local], lambda s: s[local.id] not in ("queued", "running"), 120)
    assert local.state() == "done", local.log_tail()
    assert local.id == run.id
    assert _final(run)["target_test"] == _final(local)["target_test"]
    a, b = run.read_table("scores"), local.read_table("scores")
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())


@slow
@pytest.mark.slurm
def test_cancel_leaves_the_job_cancelled_in_slurm_and_the_store(store, manifest):
    run = jobs.submit(_config(manifest, epochs=200), store, slurm.SlurmLauncher(OPTS))
    job = run.status()["slurm_job"]
    _watch([run], lambda s: s[run.id] == "running" and run.has("checkpoint"), 120)
    jobs.cancel(run, grace_s=5)
    assert run.state() == "cancelled"
    assert _slurm_ends(job) == "CANCELLED"
    squeue = subprocess.run(["squeue", "-h", "-j", job, "-t", "PD,R,CG"], capture_output=True,
                            text=True)  # fmt: skip
    assert squeue.stdout.strip() == ""  # nothing pending, running or completing: allocation free


EPOCHS = 60


def _start_now(job: str, run: Run, timeout: float) -> None:
    """Slurm holds a requeued job back a while (reason BeginTime): ask it to start now until the
    run resumes (an update sent while the job is still completing its first pass is ignored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"],
                       capture_output=True)  # fmt: skip
        if run.state() == "running" and "resumed after epoch" in run.log_tail(200):
            return
        time.sleep(1.0)
    show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
    raise AssertionError(f"the requeued job did not resume; log: {run.log_tail(20)}; "
                         f"state {run.state()}; slurm: {show.stdout}")  # fmt: skip


@slow
@pytest.mark.slurm
def test_preempted_requeues_itself_and_killed_reads_interrupted_and_resumes(store, manifest):
    """USR2 is what Slurm sends before a time limit or a preemption (``--signal=USR2@90``):
    submitit's hook requeues the same job, which continues from the run's checkpoint. A job
    killed by Slurm (``scancel --signal=KILL``) reads interrupted; ``resume`` resubmits it."""
    # 60 one-step epochs (~0.2 s each): enough left after the resume that the kill below lands
    # before the run can finish on an idle machine
    run = jobs.submit(_config(manifest, epochs=EPOCHS, steps_per_epoch=1), store,
                      slurm.SlurmLauncher(OPTS))  # fmt: skip
    job = run.status()["slurm_job"]
    _watch([run], lambda s: s[run.id] == "running" and len(run.metrics()) >= 2, 120)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _watch([run], lambda s: s[run.id] == "queued", 30)  # requeued: pending again
    _start_now(job, run, 120)
    assert "requeued, will resume" in run.log_tail(200) and run.status()["slurm_job"] == job
    resumed_at = len(run.metrics())
    _watch([run], lambda s: len(run.metrics()) > resumed_at, 60)
    subprocess.run(["scancel", "--signal=KILL", job], check=True)
    _watch([run], lambda s: s[run.id] == "interrupted", 60)
    epochs_before = len(run.metrics())
    jobs.resume(run)  # with the launcher and options it was submitted with
    assert run.status()["slurm_job"] != job
    _watch([run], lambda s: s[run.id] not in ("queued", "running"), 240)
    assert run.state() == "done", run.log_tail()
    assert run.log_tail(500).count("resumed after epoch") == 2
    assert run.metrics()[-1]["epoch"] == EPOCHS and epochs_before < EPOCHS


@slow
@pytest.mark.slurm
def test_a_cli_sweep_is_one_array_of_teachers_then_students_afterok(store, manifest, tmp_path):
    """``fascore sweep --launcher slurm``: 2 teachers in one array, 2 students in another held
    ``afterok`` on them; the command follows the runs and writes the results table."""
    import threading

    from fascore.cli import main

    out = tmp_path / "exp"
    argv = ["sweep", "--launcher", "slurm", "--partition", "debug", "--cpus", "1", "--time", "5",
            "--data", manifest, "--source-domains", "studio", "--target-domain", "phone",
            "--methods", "distill", "--seeds", "0", "1", "--shots", "2", "--out", str(out),
            "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "8", "--image-size", "32",
            "--no-analysis", "--n-boot", "20", "--device", "cpu"]  # fmt: skip
    rc: list[int] = []
    cli = threading.Thread(target=lambda: rc.append(main(argv)), daemon=True)
    cli.start()

    def submitted() -> list[Run]:
        runs = [r for r in store if r.status().get("slurm_job")]
        return runs if len(runs) == 4 else []

    deadline = time.monotonic() + 120
    while not (runs := submitted()):
        assert time.monotonic() < deadline and cli.is_alive(), rc
        time.sleep(0.2)
    roles = {r.id: r.config()["method"] for r in runs}
    job = {r.id: r.status()["slurm_job"] for r in runs}
    teachers = [r for r in runs if roles[r.id] == "source_only"]
    students = [r for r in runs if roles[r.id] != "source_only"]
    assert len(teachers) == len(students) == 2
    arrays = {rid: j.split("_")[0] for rid, j in job.items()}
    assert len({arrays[r.id] for r in teachers}) == 1 and len({arrays[r.id] for r in students}) == 1
    assert all("_" in j for j in job.values())  # array tasks
    for s in students:  # the student array waits for the teacher array's tasks
        teacher = store.get(s.config()["teacher"])
        assert s.status()["slurm_after"] == sorted(job[t.id] for t in teachers)
        shown = subprocess.run(["scontrol", "-o", "show", "job", job[s.id]],
                               capture_output=True, text=True).stdout  # fmt: skip
        assert f"afterok:{job[teacher.id]}" in shown, shown  # Slurm holds it for its teacher
    assert "Slurm job" in (slurm.SlurmLauncher.describe(students[0]) or "")
    cli.join(300)
    assert rc == [0], {r.id: (r.state(), r.log_tail()) for r in runs}
    assert all(r.state() == "done" for r in runs)
    for s in students:  # a student started only once its teacher was done
        teacher = store.get(s.config()["teacher"])
        assert float(teacher.status()["finished"]) <= float(s.status()["started"])
    assert (out / "results.csv").exists() and (out / "results.md").exists()


@pytest.mark.slurm
def test_bad_slurm_input_is_one_clear_message(store, manifest):
    cfg = _config(manifest)
    with pytest.raises(
        FascoreError, match="unknown Slurm partition 'nope'; this cluster has: debug"
    ):
        jobs.submit(cfg, store, slurm.SlurmLauncher(SlurmOptions(partition="nope")))
    gpus = SlurmOptions(partition="debug", gpus=1)  # the partition has no GPUs
    with pytest.raises(FascoreError, match="Slurm refused the job: .*gres"):
        jobs.submit(cfg, store, slurm.SlurmLauncher(gpus))
    run = store.get(cfg.run_id())
    assert run.state() == "failed" and "Slurm refused" in run.status()["message"]


def test_train_page_offers_slurm_with_the_stores_defaults_and_explains_errors(
    tmp_path, monkeypatch
):
    from tests.fakes import make_fake_store
    from tests.test_dashboard_shell import _app, _manifest_form, _texts, _widget

    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    runs = make_fake_store(tmp_path / "runs", n_students=1)
    (tmp_path / "runs" / "slurm.toml").write_text('partition = "gpu"\ncpus = 4\ntime = 30\n')
    before = {r.id for r in RunStore()}
    at = _manifest_form(_app("train"), runs[0].config()["data"][0])
    assert _widget(at, "text_input", "Partition").value == "gpu"
    assert _widget(at, "number_input", "CPUs").value == 4
    _widget(at, "multiselect", "Source domains").set_value(["studio"])
    _widget(at, "selectbox", "Target domain").set_value("phone")
    _widget(at, "radio", "Launcher").set_value("slurm")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without Slurm's commands
    _widget(at, "button", "Launch").click().run()
    assert not at.exception
    assert any("sbatch not found" in t for t in _texts(at, "error")), _texts(at, "error")
    assert {r.id for r in RunStore()} == before  # nothing was queued
