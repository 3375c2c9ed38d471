"""brainbench: which local LLM can you trust as the brain of an agent? Speed and discipline, on the same run."""

__version__ = "0.1.0"
