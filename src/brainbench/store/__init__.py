"""Storage: one SQLite database per run directory."""

from .db import DB_NAME, SCHEMA_VERSION, RunStore, StoreError

__all__ = ["DB_NAME", "SCHEMA_VERSION", "RunStore", "StoreError"]
