"""Slurm through submitit: the launcher, its state probe and job arrays (``launcher``), what a job
runs on its node (``job``), the sweep's plan launcher (``plan``) and the cluster options
(``options``)."""
