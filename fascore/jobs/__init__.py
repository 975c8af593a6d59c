"""Jobs: launchers, submitting, cancelling and resuming runs, plans, sweeps and the demo.

The cluster launcher registers itself where launchers are looked up (``fascore.jobs.control``),
so importing a light module of this package (``jobs.slurm.options``) loads nothing else.
"""
