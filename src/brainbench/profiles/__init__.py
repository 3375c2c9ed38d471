"""Server profiles: one YAML file names a server (how to start it, how to tell it is ready) and its legs.

    name: brain-small
    server:
      kind: llama-server          # llama-server | vllm | sglang | ollama | command | endpoint (brainbench.servers)
      brain: brain-small          # an embedded brain (or model_path: /models/x.gguf)
      args: ["-ub", "256"]        # extra flags, appended
      env: {LLAMA_ARG_X: "1"}
      chat_template_file: templates/fixed.jinja
    warmup: {requests: 1, max_tokens: 8}
    legs:
      - {type: speed, requests: 8}
      - {type: agentic}           # the fixed agentic subset (falls back to the smoke pack)
      - {type: soak, sessions: 10, turns: 5}

The schema is strict (`extra="forbid"`): a typo is one line naming the file, the field and the nearest
real field name. `server:` is validated as the config model of its kind (brainbench.servers registers the
kinds, one module each). `brainbench matrix --schema` prints the JSON Schema.
"""

from __future__ import annotations

from .schema import (
                     AgenticLeg,
                     Leg,
                     Profile,
                     ProfileError,
                     ServerSpec,
                     SoakLeg,
                     SpeedLeg,
                     Warmup,
                     apply_param,
                     load_profile,
                     load_profiles,
                     parse_param,
)

__all__ = ["AgenticLeg", "Leg", "Profile", "ProfileError", "ServerSpec", "SoakLeg", "SpeedLeg", "Warmup",
           "apply_param", "load_profile", "load_profiles", "parse_param"]
