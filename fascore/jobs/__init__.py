"""Jobs: launchers, the job queue, the demo experiment and result tables."""

# The slurm launcher registers itself (launcher, state probe, sweep plan launcher) on import;
# submitit itself loads only when a job is submitted or cancelled.
from fascore.jobs.slurm import launcher as _slurm  # noqa: F401
from fascore.jobs.slurm import plan as _slurm_plan  # noqa: F401
