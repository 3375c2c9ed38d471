"""Test helpers that ship with the library (like inspect_ai's mockllm): a fake server on the real wire."""

from .fakeserver import ByConversation, FakeServer, Reply, ScriptedBrain

__all__ = ["ByConversation", "FakeServer", "Reply", "ScriptedBrain"]
