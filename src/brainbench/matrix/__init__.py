"""Matrix runs, soak tests and config sweeps over server profiles (README, "Profiles, matrix runs, soak tests and config sweeps").

- `run.run_matrix`: every profile's server in turn, its legs, one matrix directory, resumable;
- `engine.ProfileRun`: one profile into one run directory (start, health, warm-up, legs, stop);
- `execute`: where profiles run, here in turn (`Local`) or as Ray tasks (`ray_exec.RayExecutor`, `--ray`), both
  through `execute.run_profile`;
- `soak.run_soak`: S sessions × T turns, crashes, silent-empty turns, TPS retention, memory growth;
- `sweep.Sweep`: server settings swept, each config gated by the discipline leg, with a progression chart.
"""
