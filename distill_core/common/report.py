"""Reporting helpers shared by scripts and benchmarks: a markdown table and a JSON writer."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from distill_core.common.files import atomic_write


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a GitHub markdown table (floats with 4 significant digits)."""

    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(obj: object, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON (atomically, see :func:`write_text`); returns the path."""
    return write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path``, creating parent folders; returns the path. Atomic
    (:func:`~distill_core.common.files.atomic_write`): a killed job or a full disk never leaves half a file."""
    return atomic_write(path, lambda handle: handle.write(text.encode()))
