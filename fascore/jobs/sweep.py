"""Sweeps: methods x seeds x shots on any manifest, trained through the job launcher, aggregated.

``plan_sweep`` turns one base config into the list of run configs (teachers first: a source-only
teacher per seed, shared by every k, then one student per method, seed and k naming its teacher).
``submit_plan`` hands that whole plan to **one** launcher call. This is the seam for cluster
launchers: a plan is an ordered list of configs whose only dependencies are student -> teacher
(``config.teacher`` names the teacher's run id, which is earlier in the list). A launcher that
can submit a plan at once (a Slurm job array with dependencies) registers a function in
``PLAN_LAUNCHERS``; any other launcher name falls back to ``control.submit`` for every config,
students waiting for their teacher inside their own job (``wait_for_teacher``).

The ``local`` plan launcher keeps at most as many jobs alive as the device has slots
(``FASCORE_SLOTS_CPU`` / ``_GPU``), starts a student only once its teacher is done, and returns
when every run has ended. Finished runs are reused (a config's hash names its run), so rerunning
the same sweep after an interruption continues: done runs are kept, live ones are waited for,
interrupted ones resume from their checkpoint; failed and cancelled ones are reported, not retried.

``write_results`` writes ``results.csv`` (one row per run, regime and threshold rule, with its
label budget), ``results.md`` and ``hter_vs_shots.png`` into the sweep's folder; the tables and
tests live in ``fascore.eval.results`` (this module only runs the sweep).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fascore.config import RunConfig, config_fields
from fascore.data.protocols import load_manifests
from fascore.data.synth.cache import ensure_preset_data
from fascore.devices import resolve_device, slot_count
from fascore.errors import FascoreError
from fascore.eval.results.frame import collect
from fascore.eval.results.sweep_page import write_sweep_results
from fascore.jobs import control
from fascore.jobs.launchers import LAUNCHERS, PLAN_LAUNCHERS, REPO_ROOT
from fascore.jobs.plan import plan_runs
from fascore.store.runs import ACTIVE_STATES, RUNS_ENV, Run, RunStore

PLAN_FILE = "plan.json"
ENDED = ("done", "failed", "cancelled")


def plan_sweep(
    base: RunConfig,
    methods: list[str],
    seeds: list[int],
    shots: list[int | None],
    episodes: int = 1,
) -> list[RunConfig]:
    """Every config of the sweep, each once, teachers first (see the module docstring).

    ``episodes`` independent shot draws per teacher seed (``RunConfig.episode`` 0 ..
    episodes - 1; ``fascore.data.fewshot.shot_rng``), the same for every method; one teacher
    per seed serves them all."""
    if not shots:
        raise FascoreError("choose at least one number of shots (--shots 1 5 ...)")
    if episodes < 1:
        raise FascoreError(f"--episodes must be at least 1, not {episodes}")
    _check_domains(base)
    plan: dict[str, RunConfig] = {}
    for k in shots:
        for e in range(episodes):
            for cfg in plan_runs(base.replace(shots=k, episode=e), methods, seeds):
                plan.setdefault(cfg.run_id(), cfg)
    return sorted(plan.values(), key=lambda c: c.teacher is not None)


def _check_domains(base: RunConfig) -> None:
    """Refuse, before anything starts, a sweep whose domains the manifests do not hold."""
    base.check()
    ensure_preset_data(base.data)
    found = set(load_manifests([Path(p) for p in base.data])["domain"])
    missing = [d for d in (*base.source_domains, base.target_domain) if d not in found]
    if missing:
        raise FascoreError(
            f"domain(s) {', '.join(missing)} not in the data; it holds {', '.join(sorted(found))}"
        )


def submit_plan(
    configs: list[RunConfig], store: RunStore | None = None, launcher: str = "local", **kw
) -> list[Run]:
    """Hand the whole plan to one launcher call; returns the plan's runs in plan order."""
    store = store or RunStore()
    if launcher in PLAN_LAUNCHERS:
        return PLAN_LAUNCHERS.get(launcher)(configs, store, **kw)
    check_launcher(launcher)
    runs = [control.submit(cfg, store, launcher) for cfg in configs]
    return wait_for(runs, **kw)


def check_launcher(name: str) -> None:
    """One FascoreError naming the known launchers for an unknown ``name``, before a sweep
    writes its plan or starts a job."""
    if name not in PLAN_LAUNCHERS:
        LAUNCHERS.get(name)


def wait_for(
    runs: list[Run], poll_s: float = 5.0, report: Callable[[str], None] | None = None
) -> list[Run]:
    """Return once every run has ended (done, failed, cancelled or interrupted)."""
    pending = {r.id: r for r in runs}
    while pending:
        for rid, run in list(pending.items()):
            if (state := run.state()) not in ACTIVE_STATES:
                (report or (lambda _m: None))(f"{state:9s} {rid}")
                del pending[rid]
        if pending:
            time.sleep(poll_s)
    return runs


@PLAN_LAUNCHERS.register("inprocess")
def inprocess_plan(
    configs: list[RunConfig],
    store: RunStore,
    report: Callable[[str], None] | None = None,
    workers: int = 1,
    **_,
) -> list[Run]:
    """Train the plan teachers first, reusing finished runs, in this process or ``workers``
    one-thread worker processes: one interpreter for many episodes, no process start per run
    (``fascore.jobs.demo.train_in_process``)."""
    from fascore.jobs.demo import train_in_process  # start-up cost: torch (~4 s), only here

    return train_in_process(configs, store, report=report, workers=workers)


def _slots(configs: list[RunConfig]) -> int:
    return slot_count(resolve_device(configs[0].device)) if configs else 1


@PLAN_LAUNCHERS.register("local")
def local_plan(
    configs: list[RunConfig],
    store: RunStore,
    poll_s: float = 1.0,
    report: Callable[[str], None] | None = None,
) -> list[Run]:
    """Run the plan on this machine, at most one job per free device slot, until all have ended."""
    runs = {cfg.run_id(): store.run(cfg.run_id()) for cfg in configs}
    todo = {cfg.run_id(): cfg for cfg in configs if runs[cfg.run_id()].state() != "done"}
    say = report or (lambda _msg: None)
    started: set[str] = set()  # launched by this call: never launched twice
    while todo:
        states = {rid: runs[rid].state() for rid in todo}
        active = sum(_alive(runs[r], s) or (r in started and s in ACTIVE_STATES)
                     for r, s in states.items())  # fmt: skip
        for rid, state in states.items():
            cfg = todo[rid]
            if state in ("done", "failed", "cancelled"):
                say(f"{state:9s} {rid}")
                del todo[rid]
            elif _alive(runs[rid], state) or (rid in started and state in ACTIVE_STATES):
                continue
            elif (blocked := _teacher_blocks(cfg, store)) is not None:
                if blocked:
                    say(f"skipped   {rid}: teacher {cfg.teacher} is {blocked}")
                    del todo[rid]
            elif active < _slots(configs):
                _start(runs[rid], cfg, state, store)
                started.add(rid)
                say(f"started   {rid}")
                active += 1
        if todo:
            time.sleep(poll_s)
    return [runs[cfg.run_id()] for cfg in configs]


def _alive(run: Run, state: str) -> bool:
    """Queued or running with a process (a queued run without a pid was never started)."""
    return state in ACTIVE_STATES and bool(run.status().get("pid"))


def _start(run: Run, cfg: RunConfig, state: str, store: RunStore) -> None:
    """Resume an interrupted run from its checkpoint; start any other from scratch."""
    if state == "interrupted" and run.has("checkpoint"):
        control.resume(run, store)
    elif state == "queued" and run.has("config"):  # written but never started (no pid)
        control._launch(run, store, "local", ["train", "--run", run.id], "started by a sweep")
    else:
        control.submit(cfg, store)


def _teacher_blocks(cfg: RunConfig, store: RunStore) -> str | None:
    """None when the run may start; "" while its teacher is still to finish; else the teacher's
    final state (failed, cancelled) that stops it."""
    if not cfg.teacher:
        return None
    state = store.run(cfg.teacher).state()
    if state == "done":
        return None
    return state if state in ("failed", "cancelled") else ""


def write_plan(out: Path, configs: list[RunConfig], command: str) -> None:
    """``plan.json``: the sweep's command and run ids (what the Experiment page reads)."""
    out.mkdir(parents=True, exist_ok=True)
    plan = {"command": command, "runs": [c.run_id() for c in configs], "written": time.time()}
    (out / PLAN_FILE).write_text(json.dumps(plan, indent=1))


def read_plan(out: Path) -> dict:
    path = Path(out) / PLAN_FILE
    if not path.exists():
        raise FascoreError(
            f"{out} holds no sweep ({PLAN_FILE} missing); run `python -m fascore sweep`"
        )
    return json.loads(path.read_text())


def write_results(out: Path, runs: list[Run], baseline: str, command: str) -> pd.DataFrame:
    """Collect the runs (``fascore.eval.results.frame.collect``) and write the sweep folder's
    results (``fascore.eval.results.sweep_page``); returns the results frame."""
    df = collect(runs)
    counts = {s: sum(r.state() == s for r in runs) for s in ENDED}
    write_sweep_results(out, df, baseline, command, counts)
    return df


def sweep_argv(
    base: RunConfig, methods: list[str], seeds: list[int], shots: list[int | None], out: Path
) -> list[str]:
    """``sweep ...`` arguments that rebuild ``base`` (every field that differs from its default)."""
    argv = ["sweep", "--methods", *methods, "--seeds", *map(str, seeds),
            "--shots", *("all" if k is None else str(k) for k in shots), "--out", str(out)]  # fmt: skip
    for spec in config_fields():
        value = getattr(base, spec.name)
        per_run = ("created", "method", "seed", "shots", "teacher", "episode")
        if spec.name in per_run or value == spec.default:
            continue
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + spec.name.replace("_", "-"))
        elif isinstance(value, tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, "none" if value is None else str(value)]
    return argv


def start_sweep(
    base: RunConfig,
    methods: list[str],
    seeds: list[int],
    shots: list[int | None],
    store: RunStore | None = None,
    launcher: str = "local",
) -> Path:
    """Start ``python -m fascore sweep`` as a background process (what the Train page does);
    its folder is ``<store>/sweeps/<experiment>`` (log in ``sweep.log``). Returns the folder.
    ``launcher="slurm"`` submits job arrays with the options of ``<store>/slurm.toml``."""
    store = store or RunStore()
    plan_sweep(base, methods, seeds, shots)  # refuse a bad sweep here, before anything starts
    out = store.root / "sweeps" / base.experiment
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **{RUNS_ENV: str(store.root.resolve())})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(out / "sweep.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fascore", *sweep_argv(base, methods, seeds, shots, out),
             "--launcher", launcher],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return out
