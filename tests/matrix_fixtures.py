"""Helpers for the profile/matrix/soak/sweep tests: profiles whose server is a real fake-server process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from brainbench.profiles.schema import Profile, profile_from_data

PACK = {
    "name": "mini",
    "description": "Plain-chat scenarios a good fake passes and a broken fake fails.",
    "defaults": {"params": {"temperature": 0, "max_tokens": 16}, "max_turns": 1},
    "scenarios": [
        {"id": f"ok-{i}", "messages": [{"role": "user", "content": f"Say OK ({i})."}],
         "checks": [{"type": "content_regex", "pattern": "^OK"}]}
        for i in range(4)
    ],
}


def write_pack(root: Path) -> Path:
    d = root / "packs" / "mini"
    d.mkdir(parents=True, exist_ok=True)
    (d / "pack.yaml").write_text(yaml.safe_dump(PACK))
    return root / "packs"


def fake_cmd(*flags: str) -> list[str]:
    return ["{python}", "-m", "brainbench.testing.fakeproc", "--port", "{port}", "--words", "8", *flags]


def fake_profile(root: Path, name: str, flags: tuple[str, ...] = (), legs: list[dict[str, Any]] | None = None,
                 **extra: Any) -> Profile:
    packs = write_pack(root)
    data: dict[str, Any] = {
        "name": name,
        "server": {"kind": "command", "command": fake_cmd(*flags), "model": "fake", "ready_timeout_s": 20,
                   **extra.pop("server", {})},
        "warmup": {"requests": 1, "max_tokens": 4},
        "legs": legs if legs is not None else [
            {"type": "speed", "requests": 2, "max_tokens": 8, "warmup": 0},
            {"type": "agentic", "packs": ["mini"], "pack_dirs": [str(packs)]},
        ],
        **extra,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return profile_from_data(data, str(path), root)
