"""Jobs: launchers, the job queue, the demo experiment and result tables."""

# The slurm launcher registers itself (and its state probe) on import; submitit loads lazily.
from fascore.jobs import slurm as _slurm  # noqa: F401
