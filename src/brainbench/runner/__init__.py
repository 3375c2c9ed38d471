"""Running attempts: the multi-turn loop, the run orchestration, and the records they store."""
