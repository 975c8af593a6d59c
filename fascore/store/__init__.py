"""The run store: one folder per run (``runs``: files, states, the store), the trainer's lock
(``lock``) and liveness of a run's process (``health``). Only this package knows the file names
of a run folder; docs/run-folder.md is its format."""
