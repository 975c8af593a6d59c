"""The run folder contract: atomic documents, torn lines, effective state, hashing."""

import subprocess
import sys

import pytest

from fascore.config import RunConfig
from fascore.errors import FascoreError
from fascore.store.runs import RunStore


def test_dead_process_reads_as_interrupted(tmp_path):
    run = RunStore(tmp_path).run("r1")
    run.write_config({"method": "source_only"})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run.update_status(state="running", pid=proc.pid)
    assert run.state() == "interrupted"
    run.update_status(state="running", pid=subprocess.os.getpid())
    assert run.state() == "interrupted"  # a live pid alone proves nothing: the lock does
    with run.hold():
        assert run.state() == "running"
    assert run.state() == "interrupted"


def test_torn_metrics_line_is_ignored(tmp_path):
    run = RunStore(tmp_path).run("r1")
    run.write_config({})
    run.append_metrics({"epoch": 1})
    with open(run.file("metrics"), "a") as fh:
        fh.write('{"epoch": 2, "tra')
    assert run.metrics() == [{"epoch": 1}]


def test_store_lists_runs_and_rejects_bad_ids(tmp_path):
    store = RunStore(tmp_path)
    store.run("b").write_config({"method": "mmd", "created": 2})
    store.run("a").write_config({"method": "kd", "created": 1})
    assert list(store.table()["run"]) == ["b", "a"]
    with pytest.raises(FascoreError, match="no run"):
        store.get("zzz")
    with pytest.raises(FascoreError):
        store.run("../etc")


def test_config_hash_names_the_run_and_ignores_bookkeeping():
    a = RunConfig(data=("m.csv",), created=1.0, experiment="x")
    b = RunConfig(data=("m.csv",), created=2.0, experiment="y")
    assert a.run_id() == b.run_id()
    assert a.run_id() != a.replace(w_mmd=0.5).run_id()
    assert RunConfig.from_dict(a.to_dict()) == a
    with pytest.raises(FascoreError, match="unknown config field"):
        RunConfig.from_dict({"wmmd": 1})
