"""`brainbench tap`: a discipline proxy that scores a real agent's live traffic.

The agent points its base URL at the tap; the tap relays every request to the real server unchanged, stitches
conversations from their growing message lists, classifies every reply with the packs' failure taxonomy,
holds conversations to protocol rules (close-outs the logs never show missing), and stores each turn in a run
directory that `brainbench report` reads like a pack run.

Modules: `proxy` (the HTTP relay, agent side), `upstream` (its client side), `wire` (reading relayed replies),
`stitch` (conversations), `classify` (failures), `rules` (obligations, YAML; shipped sets in `rules/`),
`storage` (the run store), `metrics` (Prometheus), `otel` (optional OpenTelemetry), `scenarios` (export as
draft scenarios), `rescore` (a recorded run judged again), `cli` (the command).
"""
