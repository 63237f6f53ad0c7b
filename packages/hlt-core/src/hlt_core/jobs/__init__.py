"""Jobs: a run in its folder: one folder for every process, one run per folder, resume,
and the sweeps that run many jobs."""
