"""The contracts every layer shares, with no dependency on any other brainbench package.

errors (the one-line error base and its kinds), types (what a server's reply becomes), records (what one
attempt stores), verdict (what scoring says of it), taxonomy (the failure ids and detector thresholds) and
run_config (the typed options of a run: CLI, --resume, profile and matrix legs).
client, envs, packs and store depend on core only; runner, scoring, report and the CLI build on them.
"""
