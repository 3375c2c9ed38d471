"""The server registry: one `ServerKind` per engine, one module per kind, found here by name.

Every module of this package is imported below, so a kind registers itself (`@register`) by existing:
adding an engine is adding one file (see README.md). `RunningServer` starts any kind; `ServerRecord` is
the one shape in which run, speed and matrix legs record a server's configuration.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import ServerConfig, ServerKind, UnknownKind, get_kind, kinds, register
from .handle import RunningServer, ServerFailed, free_port, stop_all
from .record import ServerRecord

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["RunningServer", "ServerConfig", "ServerFailed", "ServerKind", "ServerRecord", "UnknownKind", "free_port",
           "get_kind", "kinds", "register", "stop_all"]
