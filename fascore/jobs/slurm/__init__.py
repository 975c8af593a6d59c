"""Slurm through submitit: the launcher and state probe (``launcher``), sweeps as job arrays
(``plan``) and the cluster options (``options``)."""
