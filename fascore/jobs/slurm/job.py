"""What a Slurm job runs on its compute node: ``python -m fascore ARGV`` with its output appended
to the run's log (the callable submitit pickles)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from fascore.errors import FascoreError
from fascore.jobs.launchers import REPO_ROOT
from fascore.store.runs import Run


class TrainJob:
    """The callable submitit runs on the compute node: ``python -m fascore ARGV`` with its output
    appended to the run's log. ``checkpoint`` (submitit's hook on timeout or preemption) requeues
    the same job, which continues from the run's last checkpoint (``--resume``)."""

    def __init__(self, run_path: str, argv: list[str], env: dict[str, str], python: str) -> None:
        self.run_path, self.argv, self.env, self.python = run_path, argv, env, python

    def __call__(self) -> int:
        run = Run(Path(self.run_path))
        if not run.path.is_dir():
            raise FascoreError(f"run folder {run.path} is not visible on {os.uname().nodename}")
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        job = env.get("SLURM_ARRAY_JOB_ID")
        job = f"{job}_{env['SLURM_ARRAY_TASK_ID']}" if job else env.get("SLURM_JOB_ID", "?")
        run.log(f"slurm job {job} started on {os.uname().nodename}")
        with open(run.file("log"), "ab") as log:
            proc = subprocess.run(
                [self.python, "-m", "fascore", *self.argv], cwd=REPO_ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # USR2 is for submitit (checkpoint and requeue), not the trainer: it would die
                preexec_fn=lambda: signal.signal(signal.SIGUSR2, signal.SIG_IGN),
            )  # fmt: skip
        if proc.returncode != 0 and run.status().get("state") not in ("cancelled",):
            raise FascoreError(
                f"training exited with status {proc.returncode}; see {run.file('log')}"
            )
        return proc.returncode

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit  # lazy: only a job that is preempted or timed out needs it

        Run(Path(self.run_path)).log("slurm job preempted or timed out: requeued, will resume")
        return submitit.helpers.DelayedSubmission(TrainJob(self.run_path, self.argv, self.env,
                                                           self.python))  # fmt: skip
