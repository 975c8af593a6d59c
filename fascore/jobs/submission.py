"""Queueing a run: its config and a ``queued`` status written under the run's lock.

Every launch goes through here (``control.submit`` and ``resume`` for one run, a cluster
launcher's plan for many), so a run is queued one way whichever launcher starts it.
"""

from __future__ import annotations

import time

from fascore.config import RunConfig
from fascore.store.runs import ACTIVE_STATES, Run, RunStore

LAUNCH_LOCK_WAIT_S = 0.5  # a launch waits this long for a viewer's lock probe to pass


def queue_run(run: Run, launcher: str, message: str) -> None:
    """Mark ``run`` queued on ``launcher`` (forgetting a previous process and cancel request)."""
    run.clear_cancel()
    fresh = {"pid": None, "pgid": None, "pid_started": None, "finished": None}
    run.update_status(
        state="queued", message=message, launcher=launcher, submitted=time.time(), **fresh
    )


def prepare_submission(config: RunConfig, store: RunStore, launcher: str = "local") -> Run | None:
    """Check ``config``, write it and queue its run; None when the run is already queued,
    running or done (so submitting twice starts nothing)."""
    config.check()
    run = store.run(config.run_id())
    if run.has("config") and run.state() in (*ACTIVE_STATES, "done"):
        return None
    with run.hold(wait_s=LAUNCH_LOCK_WAIT_S, role="launcher"):
        run.write_config(config.to_dict())
        queue_run(run, launcher, "submitted")
    return run
