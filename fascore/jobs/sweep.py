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

``write_results`` writes ``results.csv`` (one row per run and regime with its label budget),
``results.md`` (mean ± std per method and k, both regimes side by side, paired differences to a
baseline over seeds) and ``hter_vs_shots.png`` into the sweep's folder.
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

import numpy as np
import pandas as pd

from fascore.config import RunConfig, config_fields
from fascore.data.protocols import load_manifests
from fascore.data.synth.cache import ensure_preset_data
from fascore.devices import resolve_device, slot_count
from fascore.errors import FascoreError
from fascore.eval import experiment
from fascore.jobs import control
from fascore.jobs.launchers import LAUNCHERS, PLAN_LAUNCHERS, REPO_ROOT
from fascore.jobs.plan import plan_runs
from fascore.store.runs import ACTIVE_STATES, RUNS_ENV, Run, RunStore

PLAN_FILE = "plan.json"
ENDED = ("done", "failed", "cancelled")


def plan_sweep(
    base: RunConfig, methods: list[str], seeds: list[int], shots: list[int | None]
) -> list[RunConfig]:
    """Every config of the sweep, each once, teachers first (see the module docstring)."""
    if not shots:
        raise FascoreError("choose at least one number of shots (--shots 1 5 ...)")
    _check_domains(base)
    plan: dict[str, RunConfig] = {}
    for k in shots:
        for cfg in plan_runs(base.replace(shots=k), methods, seeds):
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


def collect(runs: list[Run]) -> pd.DataFrame:
    """``results.csv``'s frame: one row per finished run and regime."""
    rows = []
    for run in runs:
        if run.state() == "done":
            rows += experiment.run_rows(run.id, run.config(), run.read_json("final"))
    return experiment.results_frame(rows)


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


def cell(mean: float, std: float, pct: bool) -> str:
    if not np.isfinite(mean):
        return "n/a"
    scale, digits = (100.0, 1) if pct else (1.0, 3)
    return f"{mean * scale:.{digits}f} ± {np.nan_to_num(std) * scale:.{digits}f}"


def side_by_side(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, shots): HTER and AUC under each regime next to each other, with the
    target labels each used (zero-shot rows sit in the few-shot columns)."""
    if summary.empty:
        return pd.DataFrame()
    s = summary.assign(col=summary["regime"].replace({"zero-shot": "few-shot"}))
    rows = []
    for (method, shots), sub in s.groupby(["method", "shots"], sort=False):
        zero = (sub["regime"] == "zero-shot").any()
        row = {"method": f"{method} (zero-shot)" if zero else method, "k": shots,
               "seeds": int(sub["n"].max())}  # fmt: skip
        for _, r in sub.iterrows():
            tag = r["col"]
            row[f"HTER % ({tag})"] = cell(r["hter_mean"], r["hter_std"], True)
            row[f"AUC ({tag})"] = cell(r["auc_mean"], r["auc_std"], False)
            labels = r["train_videos"] + r["extra_videos"]
            row[f"target videos ({tag})"] = f"{labels:.0f} ({r['extra_videos']:.0f} extra)"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "(no finished runs)"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def paired_table(pairs: pd.DataFrame) -> pd.DataFrame:
    if pairs.empty:
        return pairs
    return pd.DataFrame({
        "regime": pairs["regime"], "k": pairs["shots"], "method": pairs["method"],
        "vs": pairs["baseline"], "seeds": pairs["n"],
        "ΔHTER points (mean ± std)": [cell(m, s, True) for m, s in zip(pairs["diff_mean"], pairs["diff_std"], strict=True)],
        "paired t-test p": [f"{p:.3f}" if np.isfinite(p) else "n/a" for p in pairs["p_value"]],
    })  # fmt: skip


def shots_figure(summary: pd.DataFrame, path: Path) -> None:
    """HTER (mean ± std over seeds) against k, one line per method, one panel per regime."""
    import matplotlib  # lazy: matplotlib (~1 s) draws this one figure only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): no display needed

    s = summary.assign(col=summary["regime"].replace({"zero-shot": "few-shot"}))
    panels = [r for r in ("few-shot", "target-dev") if (s["col"] == r).any()] or ["few-shot"]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.6 * len(panels), 3.8), dpi=110, squeeze=False
    )
    for ax, regime in zip(axes[0], panels, strict=True):
        sub = s[s["col"] == regime]
        ks = sorted(sub["shots"].unique(), key=experiment._shots_key)
        for method, rows in sub.groupby("method"):
            rows = rows.set_index("shots").reindex(ks)
            ax.errorbar([str(k) for k in ks], rows["hter_mean"] * 100,
                        yerr=np.nan_to_num(rows["hter_std"] * 100), marker="o", capsize=3,
                        label=method)  # fmt: skip
        ax.set(title=regime, xlabel="labelled target presentations per class (k)",
               ylabel="target test HTER %")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(out: Path, runs: list[Run], baseline: str, command: str) -> pd.DataFrame:
    """Write results.csv, results.md and hter_vs_shots.png; returns the results frame."""
    out.mkdir(parents=True, exist_ok=True)
    df = collect(runs)
    df.to_csv(out / "results.csv", index=False)
    summary = experiment.summarise(df)
    pairs = experiment.paired_differences(df, baseline)
    if not summary.empty:
        shots_figure(summary, out / "hter_vs_shots.png")
    ended = {s: sum(r.state() == s for r in runs) for s in ENDED}
    text = f"""# Sweep results

Written by `{command}` from {len(runs)} runs ({ended["done"]} done, {ended["failed"]} failed,
{ended["cancelled"]} cancelled); every number comes from their run folders (`results.csv`).
Target test metrics, mean ± std over seeds, video- or frame-level as each run's `level` says.
Regimes (see docs/method.md): **few-shot** uses only the k shots as labelled target data
(selection by the run's `select` rule, threshold from the source dev split); **zero-shot** is the
teacher under the same rule; **target-dev** selects and thresholds on the labelled target dev
split, whose videos are counted as extra target labels.

## Both regimes side by side

{markdown(side_by_side(summary))}

## Paired differences against `{baseline}`

Per seed, the method's HTER minus the baseline's at the same k and regime (the seed fixes the
shots and the teacher, so the pair shares them); a two-sided paired t-test over seeds.

{markdown(paired_table(pairs))}

## HTER against the number of shots

![HTER against shots](hter_vs_shots.png)
"""
    (out / "results.md").write_text(text)
    return df


def sweep_argv(
    base: RunConfig, methods: list[str], seeds: list[int], shots: list[int | None], out: Path
) -> list[str]:
    """``sweep ...`` arguments that rebuild ``base`` (every field that differs from its default)."""
    argv = ["sweep", "--methods", *methods, "--seeds", *map(str, seeds),
            "--shots", *("all" if k is None else str(k) for k in shots), "--out", str(out)]  # fmt: skip
    for spec in config_fields():
        value = getattr(base, spec.name)
        if spec.name in ("created", "method", "seed", "shots", "teacher") or value == spec.default:
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
