"""Where distill-gym keeps what it caches (teachers, downloaded data sets)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DISTILL_GYM_CACHE"
DATA_ENV = "DISTILL_GYM_DATA"


def cache_dir() -> Path:
    """The root cache directory: ``$DISTILL_GYM_CACHE``, else ``$XDG_CACHE_HOME/distill-gym``,
    else ``~/.cache/distill-gym``. Created on first use."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "distill-gym"
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir() -> Path:
    """Where data sets that must be downloaded are kept: ``$DISTILL_GYM_DATA``, else ``<cache>/data``."""
    root = Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else cache_dir() / "data"
    root.mkdir(parents=True, exist_ok=True)
    return root
