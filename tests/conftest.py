"""Session fixtures: the tiny SynthFAS preset and a run store holding a tiny real demo experiment.

Tests that read the store set ``FASCORE_RUNS_DIR`` themselves (``monkeypatch.setenv``) to the
path ``tiny_store`` returns, so no test leaks the variable into another.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Keep the tests on the CPU cores CI has, and off any user cache.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "fascore-numba"))

TINY_METHODS = ("finetune", "distill")


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Tests never download: torch.hub's downloader (used by torchvision's weights API) fails
    as it does offline. A test that mocks a download patches it again."""
    import urllib.error

    import torch.hub

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(f"tests never download ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """The tiny SynthFAS preset, generated once per test session."""
    from fascore.data.synth.generate import generate

    return generate("tiny", tmp_path_factory.mktemp("synthfas-tiny"))


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_manifest) -> Path:
    """A run store with a real tiny demo experiment: a teacher and two students, analysed."""
    from fascore.jobs.demo import run_demo
    from fascore.jobs.plan import demo_configs
    from fascore.store.runs import RunStore

    root = tmp_path_factory.mktemp("runs")
    configs = demo_configs("tiny", methods=TINY_METHODS, data=str(tiny_manifest), n_boot=100)
    runs = run_demo(configs, RunStore(root), progress=False)
    assert all(r.state() == "done" for r in runs), [r.status() for r in runs]
    return root


# -- CPU time per test (``--cpu-durations N``) ------------------------------------------------------
# Wall durations (``--durations``) swell with the machine's load; the CPU seconds a test spends
# (this process and the children it waited for) do far less, so they size the default run.
def pytest_addoption(parser) -> None:
    parser.addoption("--cpu-durations", type=int, default=None, metavar="N",
                     help="list the N tests that used the most CPU (0: all)")  # fmt: skip


_CPU: dict[str, tuple[float, float]] = {}


def _cpu_now() -> float:
    import resource  # lazy: POSIX only, and only with --cpu-durations

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if item.config.getoption("--cpu-durations") is None:
        yield
        return
    cpu, wall = _cpu_now(), time.perf_counter()
    yield
    _CPU[item.nodeid] = (_cpu_now() - cpu, time.perf_counter() - wall)


def pytest_terminal_summary(terminalreporter, config) -> None:
    n = config.getoption("--cpu-durations")
    if n is None or not _CPU:
        return
    rows = sorted(_CPU.items(), key=lambda kv: -kv[1][0])
    total_cpu, total_wall = (sum(v[i] for v in _CPU.values()) for i in (0, 1))
    terminalreporter.write_sep("=", f"CPU s per test (setup + call + teardown), {len(rows)} tests")
    terminalreporter.write_line(f"total: CPU {total_cpu:.1f} s, wall {total_wall:.1f} s")
    for nodeid, (cpu, wall) in rows[: n or len(rows)]:
        terminalreporter.write_line(f"{cpu:8.2f} s CPU {wall:8.2f} s wall  {nodeid}")
