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
    assert bodies and bodies[0].endswith(f" · {plain(LINK)}") and plain(LINK).startswith("`")


def test_plain_shows_markdown_marks_as_typed():
    from dashboard.ui import plain

    assert plain("studio-to-phone-k5 v1.2") == "studio-to-phone-k5 v1.2"  # nothing else changes
    assert plain("a_b*c") == "` a_b*c `"
    assert plain("__init__") == "` __init__ `"  # bold in Markdown
    assert plain("see www.x.org") == "` see www.x.org `"
    assert plain("[a](https://x)\n# b") == "` [a](https://x) # b `"
    assert plain("mail a@b.org") == "` mail a@b.org `"
    assert plain("one ` tick and `` two") == "``` one ` tick and `` two ```"


# -- 22.7: the memory estimate ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    from tests.helpers import stripe_manifest

    return stripe_manifest(tmp_path_factory.mktemp("stripes"), subjects=4, size=32)


def test_the_estimate_counts_the_models_parameters_and_grows_with_the_step():
    from fascore.config import RunConfig
    from fascore.train.memory import estimate, model_sizes
    from fascore.train.models import create_model

    params, acts = model_sizes("alexnet_mini", 64)
    assert params == sum(p.numel() for p in create_model("alexnet_mini").parameters())
    cfg = RunConfig(method="distill", model="alexnet_mini", batch_size=8, image_size=64)
    small = estimate(cfg)
    assert small.images == 16  # a source and a target batch
    assert small.activations == 4 * 16 * (acts + 3 * 64 * 64)
    assert estimate(cfg.replace(batch_size=16)).activations == 2 * small.activations
    assert estimate(cfg.replace(image_size=128)).activations > 3 * small.activations
    assert estimate(cfg, processes=2).images == 8


def test_a_step_that_cannot_fit_is_refused_before_a_run_folder_exists(
    store, manifest, monkeypatch, capsys
):
    from fascore.cli import main

    flags = ["--batch-size", "4096", "--image-size", "256", "--device", "cpu"]
    assert main(["train", "--data", str(manifest), *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert "needs about" in err and "GB free" in err and "--batch-size" in err, err
    assert err.count("\n") == 0 and not store.root.exists()
    from fascore.config import RunConfig
    from fascore.errors import FascoreError
    from fascore.train.memory import check_fits

    huge = RunConfig(batch_size=4096, image_size=256, data=("m",), device="cpu")
    with pytest.raises(FascoreError, match="needs about"):
        check_fits(huge)
    monkeypatch.setenv("FASCORE_MEMORY_CHECK", "0")  # the documented way past it
    check_fits(huge)


def test_a_gpu_step_is_measured_against_the_device_not_what_other_jobs_hold_now(monkeypatch):
    """A local GPU job waits for its device slot: only a step over the device's total refuses."""
    from fascore.config import RunConfig
    from fascore.errors import FascoreError
    from fascore.train import memory

    cfg = RunConfig(model="alexnet_mini", batch_size=64, image_size=64, device="cpu")
    need = memory.estimate(cfg).total
    monkeypatch.setattr(memory, "resolve_device", lambda device: "cuda:0")
    monkeypatch.setattr(memory, "memory_bytes", lambda device: (need // 2, need * 2))
    memory.check_fits(cfg)  # busy now, fits once its slot is free
    monkeypatch.setattr(memory, "memory_bytes", lambda device: (need // 4, need // 2))
    with pytest.raises(FascoreError, match=r"cuda:0 has .* GB free of .* GB"):
        memory.check_fits(cfg)


# -- 22.8: one clear message for each refusal ------------------------------------------------------
def test_shots_that_are_not_a_number_name_the_field_not_a_function(capsys):
    from fascore.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--shots", "abc"])
    err = capsys.readouterr().err
    assert "shots must be a whole number, all or none, not 'abc'" in err
    assert "parse" not in err


def test_a_sweep_of_students_at_k_0_is_refused_before_it_starts(store, manifest, tmp_path, capsys):
    from fascore.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "--data", str(manifest), "--methods", "distill", "mmd", "--shots", "0",
            "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "k = 0 leaves the students no target labels (distill, mmd" in err, err
    assert not store.root.exists() and not (out / "plan.json").exists()


def test_an_unknown_launcher_is_refused_before_the_plan_is_written(
    store, manifest, tmp_path, capsys
):
    from fascore.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "--data", str(manifest), "--methods", "finetune", "--launcher", "nosuch",
            "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 1
    assert "unknown launcher 'nosuch'" in capsys.readouterr().err
    assert not (out / "plan.json").exists() and not store.root.exists()


def test_a_refused_manifest_leaves_no_run_folder(store, tmp_path, capsys):
    from fascore.cli import main

    bad = tmp_path / "manifest.csv"
    bad.write_text("path,label\na.png,live\n")
    assert main(["train", "--data", str(bad), "--device", "cpu"]) == 1
    assert "lacks the column(s)" in capsys.readouterr().err
    assert not store.root.exists() or not any(store.root.iterdir())


def test_an_unreachable_cluster_is_blamed_on_slurm_not_the_store(tmp_path, monkeypatch):
    from fascore.errors import FascoreError
    from fascore.jobs.slurm import launcher as slurm
    from fascore.jobs.slurm.options import SlurmOptions

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text(
        "#!/bin/sh\necho 'srun: error: Unable to allocate resources: Unable to contact slurm "
        "controller (connect failure)' >&2\nexit 1\n"
    )
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(FascoreError) as err:
        slurm.check_store_visible(RunStore(tmp_path / "runs"), SlurmOptions())
    assert "Slurm could not run" in str(err.value) and "sinfo" in str(err.value)
    assert "cannot see the run store" not in str(err.value)


def test_share_mode_offers_no_upload_on_the_gradcam_page(tmp_path, monkeypatch):
    """Issue 22.2: read-only means the server decodes nothing a visitor sends."""
    from streamlit.testing.v1 import AppTest

    from fascore.data.uploads import SHARE_REFUSAL
    from tests.fakes import make_fake_store

    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FASCORE_SHARE", "1")
    make_fake_store(tmp_path / "runs", n_students=1)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    at.switch_page("../pages/gradcam.py").run()
    at.radio(key="gc_source").set_value("Upload an image").run()
    assert not at.exception
    assert any(SHARE_REFUSAL in i.value for i in at.info)
    assert not at.get("file_uploader")
