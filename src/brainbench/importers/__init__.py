"""Importers: external benchmark suites turned into brainbench packs (run, stored and scored like ours)."""
