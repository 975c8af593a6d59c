"""Jobs: launchers, the job queue, the demo experiment and result tables."""
