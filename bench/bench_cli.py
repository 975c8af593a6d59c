"""CLI start-up: wall time, CPU time and peak memory of ``python -m fascore --help``, of every
``<command> --help``, of ``runs`` and of ``cancel`` (a finished run: it loads the store, then
refuses), before and after the lazy command modules (issue 20).

"Before" is a checkout of the commit before the change (``--before DIR``, e.g. made with
``git worktree add --detach /tmp/fascore-before 3ab2788``); "after" is this checkout. Each command
runs ``--repeat`` times in a fresh interpreter, alternating before and after so both see the same
machine load; the table shows medians. Peak memory is the child's own high-water resident set
(``VmHWM``, read at its exit; ``wait4``'s ``ru_maxrss`` would count this script's memory, which a
forked child inherits). CPU time (user + system) depends far less on the machine's load than
wall time, so it is the fairer figure on a shared machine.

    python -m bench.bench_cli --before /tmp/fascore-before --store /tmp/demo-store [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._report import write_section

ROOT = Path(__file__).resolve().parent.parent
VERBS = ("train", "demo", "results", "sweep", "runs", "cancel", "resume", "validate", "import",
         "report", "analyse", "synth", "gallery")  # fmt: skip


def commands(store: Path) -> list[list[str]]:
    """Every command line measured: usage, each verb's usage, ``runs``, ``cancel`` of a done run."""
    done = next(p.name for p in sorted(store.iterdir()) if (p / "config.json").exists())
    return [["--help"], *[[v, "--help"] for v in VERBS], ["runs"], ["cancel", done]]


# ``python -m fascore ARGV`` that reports its own peak resident memory (VmHWM) at exit: wait4's
# ru_maxrss would count this benchmark's own memory, which a forked child inherits.
CHILD = """import atexit, runpy, sys
def peak():
    kb = next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
    print("VmHWM", kb, file=sys.__stderr__)
atexit.register(peak)
sys.argv = ["fascore", *sys.argv[1:]]
runpy.run_module("fascore", run_name="__main__", alter_sys=True)
"""


def measure(root: Path, argv: list[str], store: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak MB) of ``python -m fascore ARGV`` run from ``root``."""
    env = {**os.environ, "FASCORE_RUNS_DIR": str(store), "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *argv], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    err = proc.stderr.read()
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    kb = next(int(ln.split()[1]) for ln in err.splitlines() if ln.startswith("VmHWM"))
    return wall, usage.ru_utime + usage.ru_stime, kb / 1024


def table(before: Path, store: Path, repeat: int) -> str:
    """The markdown table: median wall, CPU and peak memory per command, before and after."""
    rows = ["| command | wall before | wall after | CPU before | CPU after | peak MB before | "
            "peak MB after |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for argv in commands(store):
        got: dict[str, list[tuple[float, float, float]]] = {"before": [], "after": []}
        for _ in range(repeat):
            got["before"].append(measure(before, argv, store))
            got["after"].append(measure(ROOT, argv, store))
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in got.items()}
        b, a = med["before"], med["after"]
        shown = (
            "cancel RUN"
            if argv[0] == "cancel" and len(argv) == 2 and argv[1] != "--help"
            else " ".join(argv)
        )
        rows.append(f"| `{shown}` | {b[0]:.2f} s | {a[0]:.2f} s | {b[1]:.2f} s | {a[1]:.2f} s | "
                    f"{b[2]:.0f} | {a[2]:.0f} |")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout of the earlier commit")
    ap.add_argument("--store", type=Path, required=True, help="a run store (e.g. the demo's)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    body = table(args.before, args.store, args.repeat)
    before = subprocess.run(["git", "-C", str(args.before), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    text = (
        f"Medians of {args.repeat} fresh interpreters per command, before ({before}: every "
        "command module imported the lab at start-up) and after (each command imports its work "
        f"when it runs). Load average at the start: {load:.1f} on {os.cpu_count()} cores "
        "(a shared machine: compare the CPU columns).\n\n" + body
    )
    print(text)
    if not args.no_write:
        write_section("cli", "CLI start-up: usage, runs, cancel", "python -m bench.bench_cli", text)


if __name__ == "__main__":
    main()
