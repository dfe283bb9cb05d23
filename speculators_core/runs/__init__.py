"""Running a plan: the run directory (`layout`, `rundir`), the supervisor and its parts, one reader."""
