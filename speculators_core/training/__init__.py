"""Stage 3 plumbing: prepared data, hidden-states row source + prefetcher, packing, schedules, checkpoints, metrics, distributed setup."""
