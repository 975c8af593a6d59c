"""Issue 13: every reproduced fault (one trainer per run, containment, decoding, tolerant readers,
server settings, numeric flags) with the one clear outcome a user should see."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fascore.cli import main
from fascore.config import RunConfig
from fascore.data import manifest as mf
from fascore.data.images import load_images
from fascore.data.uploads import read_upload
from fascore.data.validate import validate_manifest
from fascore.errors import FascoreError
from fascore.jobs import control as jobs
from fascore.jobs import launchers
from fascore.store.runs import Run, RunStore, pid_alive
from tests.fakes import make_fake_store
from tests.helpers import stripe_manifest

ROOT = Path(__file__).resolve().parent.parent
OWNER = """
import sys, time
from pathlib import Path
from fascore.store.runs import Run
with Run(Path(sys.argv[1])).hold():  # what a trainer does first: own the run
    print("owner", flush=True)
    time.sleep(120)
"""


def _spawn(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _owner(run: Run) -> subprocess.Popen:
    proc = _spawn("-c", OWNER, str(run.path))
    assert proc.stdout.readline().strip() == "owner"
    return proc


def _wait_for(pred, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return stripe_manifest(tmp_path_factory.mktemp("stripes"), subjects=4, size=32)


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore()


def _cfg(manifest: Path, **kw) -> RunConfig:
    base = dict(
        data=(str(manifest),), method="source_only", shots=0, select="source_dev", epochs=1,
        steps_per_epoch=1, batch_size=8, image_size=32, analysis=False, n_boot=10, device="cpu",
        source_domains=("studio",), target_domain="phone",
    )  # fmt: skip
    return RunConfig(**{**base, **kw})


def _edited(manifest: Path, out: Path, edit) -> Path:
    """A copy of ``manifest`` (images shared through absolute symlinks is not allowed, so the
    images are copied) with ``edit(df, folder)`` applied."""
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    for rel in df["path"]:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes((manifest.parent / rel).read_bytes())
    return mf.write_manifest(edit(df, out), out)


# -- 1, 2, 3: one owner per run ------------------------------------------------------------------
@pytest.mark.slow
def test_1_train_refuses_a_run_a_live_trainer_owns(store, manifest):
    """A real trainer (a student waiting for its queued teacher) owns its run; a second `train`
    of the same run refuses and deletes nothing."""
    teacher = store.run("teacher-x")
    teacher.write_config(_cfg(manifest).to_dict())
    teacher.update_status(state="queued")  # never started: the student waits for it
    cfg = _cfg(manifest, method="finetune", teacher=teacher.id, shots=2, select="last")
    run = store.run(cfg.run_id())
    run.write_config(cfg.to_dict())
    first = _spawn("-m", "fascore", "train", "--run", run.id, "--quiet")
    try:
        assert _wait_for(lambda: "waiting for teacher" in run.status().get("message", "")), (
            run.log_tail()
        )
        run.append_metrics({"epoch": 1})  # what the live trainer has written so far
        assert main(["train", "--run", run.id]) == 1
        assert run.metrics() == [{"epoch": 1}] and run.has("config")
        assert run.state() == "queued" and run.status()["pid"] == first.pid
    finally:
        _kill(first)
    assert run.state() == "interrupted"  # the kernel freed its lock


def test_1_the_refusal_is_one_line(store, manifest, capsys):
    cfg = _cfg(manifest)
    run = store.run(cfg.run_id())
    run.write_config(cfg.to_dict())
    owner = _owner(run)
    try:
        assert main(["train", "--run", run.id]) == 1
    finally:
        _kill(owner)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"already being trained by process {owner.pid}" in err
    assert "fascore cancel" in err


def test_2_a_live_owner_with_an_old_heartbeat_is_running_not_interrupted(store):
    run = store.run("slow")
    run.write_config(_cfg(Path("m.csv")).to_dict())
    owner = _owner(run)
    try:
        run.write_json("status", {"state": "running", "pid": owner.pid, "heartbeat": 0.0})
        assert run.state() == "running"  # decoding or a final analysis writes no heartbeat
        with pytest.raises(FascoreError, match="only interrupted, failed or cancelled"):
            jobs.resume(run)
        os.kill(owner.pid, signal.SIGSTOP)  # a stopped process still owns the run
        assert run.state() == "running"
    finally:
        _kill(owner)
    assert run.state() == "interrupted"


@launchers.LAUNCHERS.register("slow-recorder")
class SlowRecorder(launchers.Launcher):
    """Records starts; takes a while to start, as a real launcher does."""

    starts: list[str] = []

    def start(self, run, argv, env):
        time.sleep(0.3)
        SlowRecorder.starts.append(run.id)
        return {"pid": None}

    def stop(self, run, grace_s):
        pass


def test_2_two_simultaneous_resumes_start_one_job(store):
    run = store.run("twice")
    run.write_config(_cfg(Path("m.csv")).to_dict())
    run.update_status(state="failed", launcher="slow-recorder")
    SlowRecorder.starts.clear()
    errors: list[str] = []

    def resume():
        try:
            jobs.resume(run)
        except FascoreError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SlowRecorder.starts == [run.id] and len(errors) == 1, errors


def test_3_cancel_never_signals_a_reused_pid(store):
    """A recorded pid now belongs to an unrelated process (another start time): the run reads
    interrupted, not queued forever, and neither cancel nor the launcher signals it."""
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        run = store.run("reused")
        run.write_config(_cfg(Path("m.csv")).to_dict())
        run.update_status(
            state="queued", pid=stranger.pid, pgid=stranger.pid, pid_started=1.0, launcher="local"
        )
        assert run.state() == "interrupted"
        with pytest.raises(FascoreError, match="only queued or running"):
            jobs.cancel(run, grace_s=0.2)
        launchers.LocalLauncher().stop(run, grace_s=0.2)
        time.sleep(0.2)
        assert stranger.poll() is None and pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


# -- 4: containment ------------------------------------------------------------------------------
def _escape_absolute(df, folder):
    df.loc[0, "path"] = "/etc/passwd"
    return df


def _escape_dotdot(df, folder):
    df.loc[0, "path"] = "../outside.png"
    return df


def _escape_symlink(df, folder):
    outside = folder.parent / f"outside-{folder.name}.png"
    Image.new("RGB", (32, 32)).save(outside)
    (folder / "img" / "link.png").symlink_to(outside)
    df.loc[0, "path"] = "img/link.png"
    return df


@pytest.mark.parametrize("edit", [_escape_absolute, _escape_dotdot, _escape_symlink])
def test_4_training_never_reads_outside_the_manifest_folder(store, manifest, tmp_path, edit):
    bad = _edited(manifest, tmp_path / "data", edit)
    with pytest.raises(FascoreError, match=r"outside the manifest's folder.*line 2"):
        mf.read_manifest(bad)
    cfg = _cfg(bad)
    with pytest.raises(FascoreError, match="outside the manifest's folder"):
        jobs_train(cfg, store)
    assert not store.run(cfg.run_id()).has("checkpoint")  # stopped before training


def jobs_train(cfg: RunConfig, store: RunStore):
    from fascore.train.loop import train

    return train(cfg, store, progress=False)


def test_4_validate_reports_escaping_symlinks(manifest, tmp_path):
    bad = _edited(manifest, tmp_path / "data", _escape_symlink)
    report = validate_manifest(bad)
    issue = next(i for i in report.errors if i.code == "symlink_escapes")
    assert issue.rows == [0] and "line 2" in issue.message
    inside = tmp_path / "data" / "img" / "inner.png"  # a symlink that stays inside is fine
    inside.symlink_to(tmp_path / "data" / pd.read_csv(bad)["path"][1])
    assert mf.escaping_rows(["img/inner.png"], tmp_path / "data") == []


def test_4_escaping_rows_follows_symlinked_folders(tmp_path):
    """Folders are resolved once per folder: a folder symlinked out of the root escapes, one
    symlinked within it does not, and every row below either is judged like its folder."""
    root, outside = tmp_path / "data", tmp_path / "elsewhere"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    for folder in (root / "real", outside):
        Image.new("RGB", (8, 8)).save(folder / "a.png")
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "in").symlink_to(root / "real", target_is_directory=True)
    rows = ["real/a.png", "out/a.png", "in/a.png", "out/b.png", "real/../real/a.png", "in\\a.png"]
    assert mf.escaping_rows(rows, root) == [1, 3, 4]


# -- 5: bounded sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("batch_size", 100_000, "batch_size must be a whole number in [2, 4096]"),
     ("image_size", 8192, "image_size must be a whole number in [32, 512]")],
)  # fmt: skip
def test_5_huge_batches_and_images_are_refused(manifest, field, value, words):
    with pytest.raises(FascoreError, match=words.replace("[", r"\[").replace("]", r"\]")):
        _cfg(manifest, **{field: value}).check()


# -- 6: decoding ----------------------------------------------------------------------------------
def _png(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def test_6_16_bit_and_palette_pngs_decode_to_their_pixels(tmp_path):
    grey16 = Image.fromarray(np.full((32, 32), 32896, dtype=np.uint16))  # 128 * 257
    palette = Image.new("RGB", (32, 32), (200, 30, 60)).convert("P", palette=Image.ADAPTIVE)
    paths = [_png(grey16, tmp_path / "g16.png"), _png(palette, tmp_path / "p.png")]
    arr = load_images(pd.DataFrame({"path": map(str, paths)}), 32, log=lambda m: None)
    assert arr.ok.all()
    np.testing.assert_array_equal(arr.images[0, :, 0, 0].numpy(), [128, 128, 128])
    np.testing.assert_allclose(arr.images[1, :, 0, 0].numpy(), [200, 30, 60], atol=2)
    upload = read_upload("g16.png", paths[0].read_bytes())  # Grad-CAM uploads decode the same
    assert np.asarray(upload)[0, 0].tolist() == [128, 128, 128]


def test_6_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # blue left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display", as phones write it
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    (tmp_path / "phone.jpg").write_bytes(buf.getvalue())
    arr = load_images(pd.DataFrame({"path": [str(tmp_path / "phone.jpg")]}), 40, log=print)
    shown = read_upload("phone.jpg", buf.getvalue())
    assert shown.size == (20, 40)  # portrait, as the phone displayed it
    top = arr.images[0, :, 2, 20].numpy()  # after the rotation the blue half is on top
    assert top[2] > 200 and top[0] < 60


# -- 7: one bad file never takes down the others ----------------------------------------------------
def _corrupt(runs: list[Run]) -> dict[str, str]:
    """Damage one file in each of several runs; returns {run id: expected reason}."""
    a, b, c, d, e, f = runs[:6]
    for unfinished in (a, b):  # a finished run's done marker outranks its status
        unfinished.unmark_done()
    a.file("status").write_text("[1, 2]")
    b.write_json("status", {**b.status(), "pid": "abc"})
    cfg = c.config()
    cfg.pop("seed")
    c.file("config").write_text(json.dumps(cfg))
    d.file("metrics").write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    e.file("best").write_bytes(b"PK\x03\x04 truncated")
    f.file("scores").write_bytes(f.file("scores").read_bytes()[:100])
    return {
        a.id: "status.json holds a list",
        b.id: "status.json: pid is 'abc', not a whole number",
        c.id: "config.json lacks seed",
        d.id: "metrics.jsonl line 2",
        e.id: "best.pt is damaged",
        f.id: "scores.parquet is damaged",
    }


@pytest.fixture()
def damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FASCORE_SHARE", raising=False)
    runs = make_fake_store(tmp_path / "runs", n_students=6)
    return runs, _corrupt(runs)


@pytest.mark.slow
def test_7_runs_lists_each_damaged_run_as_unreadable(damaged, capsys):
    runs, reasons = damaged
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    for run_id, reason in reasons.items():
        line = next(line for line in out.splitlines() if line.startswith(run_id))
        assert "unreadable: " in line and reason in line, line
    good = runs[6]
    assert next(x for x in out.splitlines() if x.startswith(good.id)).split()[1] == "done"


def test_7_an_unparsable_status_does_not_make_a_finished_run_queued(damaged):
    runs, _ = damaged
    good = runs[6]
    good.file("status").write_text('{"state": "do')  # torn by hand or by a foreign tool
    assert good.state() == "done"  # the done marker is written last and says so
    row = RunStore().table().set_index("run").loc[good.id]
    assert row["state"] == "done" and row["problem"] == ""  # so Compare, Report... list it


def test_7_report_leaves_out_an_unreadable_run(damaged, tmp_path, capsys):
    runs, reasons = damaged
    bad, good = runs[4], runs[6]
    out = tmp_path / "r.html"
    assert main(["report", bad.id, good.id, "--out", str(out)]) == 0
    html = out.read_text()
    assert f"run {bad.id} is unreadable: {reasons[bad.id]}" in html
    assert main(["report", bad.id, "--out", str(out)]) == 1
    assert "every run asked for is unreadable" in capsys.readouterr().err


def test_7_every_page_renders_beside_damaged_runs(damaged):
    from streamlit.testing.v1 import AppTest

    runs, reasons = damaged
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    for page in ("overview", "train", "compare", "alignment", "gradcam", "report"):
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
    at.switch_page("../pages/overview.py").run()
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert all(reason in shown for reason in reasons.values()), shown
    at.query_params["run"] = runs[0].id  # a deep link straight to an unreadable run
    at.switch_page("../pages/alignment.py").run()
    assert any("is unreadable: status.json holds a list" in e.value for e in at.error)


# -- 8: server settings and report paths ---------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "share", "upload_mb", "refused"),
    [(None, "", 200, "listens on every network interface"),
     ("0.0.0.0", "", 10, "listens on 0.0.0.0"),
     ("127.0.0.1", "", 200, "takes 200 MB uploads"),
     ("0.0.0.0", "1", 10, None)],
)  # fmt: skip
def test_8_the_server_refuses_settings_it_was_not_started_with(
    monkeypatch, tmp_path, address, share, upload_mb, refused
):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FASCORE_SHARE", share)
    old = {k: config.get_option(k) for k in ("server.address", "server.maxUploadSize")}
    config.set_option("server.address", address)
    config.set_option("server.maxUploadSize", upload_mb)
    try:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    finally:
        for key, value in old.items():
            config.set_option(key, value)
    errors = [e.value for e in at.error]
    if refused:
        assert len(errors) == 1 and refused in errors[0] and not at.title, errors
    else:
        assert not errors and not at.exception


def test_8_the_report_holds_no_absolute_paths(tmp_path):
    from fascore.share.report import build_report

    runs = make_fake_store(tmp_path / "runs", n_students=1)
    html = build_report(runs)
    data = Path(runs[0].config()["data"][0]).parent
    for local in {str(data), str(data.resolve()), str(tmp_path), str(Path.home())}:
        assert local not in html and local.replace("/", "\\u002f") not in html, local


# -- 9: flags, empty metrics, teachers, warnings, disk full ----------------------------------------
@pytest.mark.parametrize(
    ("flags", "words"),
    [(["--lr", "nan"], "lr must be a finite number"),
     (["--weight-decay", "-0.1"], "weight_decay must be a finite number in [0, 1]"),
     (["--steps-per-epoch", "-5"], "steps_per_epoch must be a whole number"),
     (["--seed", "-1"], "seed must be a whole number"),
     (["--device", "bogus"], "device must be auto, cpu, mps, cuda or cuda:N")],
)  # fmt: skip
def test_9_bad_numeric_flags_are_one_line(store, manifest, capsys, flags, words):
    assert main(["train", "--data", str(manifest), *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err
    assert not any(store.root.glob("*/checkpoint.pt"))


def test_9_an_unwritable_store_is_one_line(manifest, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("FASCORE_RUNS_DIR", str(tmp_path / "file" / "runs"))
    assert main(["train", "--data", str(manifest), "--device", "cpu"]) == 1
    assert "cannot write to the run store" in capsys.readouterr().err


def _one_class_target_test(df, folder):
    return df[~((df["domain"] == "phone") & (df["split"] == "test") & (df["label"] == "spoof"))]


def _no_source_dev(df, folder):  # the few-shot threshold comes from the source dev split
    return df[~((df["domain"] == "studio") & (df["split"] == "dev"))]


def _unreadable_target_test(df, folder):
    for rel in df.loc[(df["domain"] == "phone") & (df["split"] == "test"), "path"]:
        (folder / rel).write_bytes(b"not an image")
    return df


@pytest.mark.parametrize(
    ("edit", "words"),
    [(_one_class_target_test, "test split has live images only"),
     (_no_source_dev, "no target metrics: the source dev split has no scored images"),
     (_unreadable_target_test, "test split has no readable image")],
)  # fmt: skip
def test_9_a_run_without_target_metrics_fails(store, manifest, tmp_path, edit, words):
    data = _edited(manifest, tmp_path / "data", edit)
    cfg = _cfg(data)
    with pytest.raises(FascoreError, match=words):
        jobs_train(cfg, store)
    run = store.run(cfg.run_id())
    assert run.state() == "failed" and words in run.status()["message"] and not run.has("done")


def test_9_teachers_are_checked_in_the_core(store, manifest, tmp_path):
    fakes = make_fake_store(store.root, n_students=1)
    teacher, student = fakes[0], fakes[1]
    other_sources = store.run("t-office")
    other_sources.write_config({**teacher.config(), "source_domains": ["office"]})
    small = store.run("t-small")
    small.write_config({**teacher.config(), "image_size": 48})
    cases = [(student, "is not a teacher"), (other_sources, "trained on office, not studio"),
             (small, "takes 48px images")]  # fmt: skip
    size = teacher.config()["image_size"]
    for run, words in cases:
        argv = ["train", "--data", str(manifest), "--method", "distill", "--teacher", run.id,
                "--image-size", str(size), "--device", "cpu"]  # fmt: skip
        assert main(argv) == 1
        cfg = _cfg(manifest, method="distill", teacher=run.id, shots=2, image_size=size)
        with pytest.raises(FascoreError, match=words):
            jobs.plan_runs(cfg, ["distill"], [0], teacher=run.id, store=store)


def test_9_repeated_and_missing_training_images_warn_and_the_batch_is_clamped(
    store, manifest, tmp_path
):
    def edit(df, folder):
        train = df.index[(df["domain"] == "studio") & (df["split"] == "train")]
        (folder / df.loc[train[0], "path"]).unlink()
        return pd.concat([df, df.loc[[train[1]]]], ignore_index=True)

    cfg = _cfg(_edited(manifest, tmp_path / "data", edit), batch_size=4096)
    run = jobs_train(cfg, store)
    assert run.state() == "done"
    warnings = " ".join(run.status()["warnings"])
    assert "1 training row(s) repeat an image" in warnings and "1 of" in warnings
    assert "batch size 4096 exceeds the" in run.log_tail(200)


def test_9_disk_full_marks_the_run_failed_and_cleans_temp_files(store, manifest, monkeypatch):
    from fascore.train import loop

    def full_disk(run, *args, **kw):
        (run.path / f".checkpoint.pt.{os.getpid()}.tmp").write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device", str(run.file("checkpoint")))

    monkeypatch.setattr(loop, "save_checkpoint", full_disk)
    cfg = _cfg(manifest)
    with pytest.raises(FascoreError, match="No space left on device"):
        jobs_train(cfg, store)
    run = store.run(cfg.run_id())
    assert run.state() == "failed" and "No space left" in run.status()["message"]
    assert not list(run.path.glob(".*.tmp*"))


def test_9_resume_keeps_one_metrics_record_per_epoch(tmp_path):
    run = RunStore(tmp_path).run("r")
    run.write_config({})
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch})
    with open(run.file("metrics"), "a") as fh:
        fh.write('{"epoch": 4, "tr')  # torn by the crash
    assert run.truncate_metrics(2) == 2
    assert [m["epoch"] for m in run.metrics()] == [1, 2]
