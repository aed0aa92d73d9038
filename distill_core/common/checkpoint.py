"""Checkpoints: written atomically, read with ``weights_only=True``, tagged with what they hold.

Every file distill-gym writes is a dict with a ``"format"`` entry (e.g. ``"distill-gym/teacher/v1"``),
so a foreign or stale file is recognised and reported instead of being silently misread.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_KEY = "format"


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, foreign or does not match what was asked for."""


def atomic_save(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save ``payload`` with ``torch.save`` so that ``path`` is either the old file or the complete new one.

    Writes to a temporary file in the same directory, fsyncs it and renames it over ``path``:
    a job killed mid-write never leaves a truncated checkpoint behind.

    :param payload: tensors, numbers, strings, lists and dicts (what ``weights_only=True`` can read back).
    :param path: destination file; parent directories are created.
    :return: the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike,
    *,
    expected_format: str,
    rebuild_hint: str = "delete the file and run again to rebuild it",
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`atomic_save`, safely (``weights_only=True``).

    :param path: the file.
    :param expected_format: the ``"format"`` tag the file must carry.
    :param rebuild_hint: what the user should do when the file is unusable (goes into the error).
    :param map_location: where tensors are loaded.
    :raises FileNotFoundError: the file does not exist.
    :raises CheckpointError: the file is corrupt, not a distill-gym checkpoint, or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated / foreign pickles
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a distill-gym file ({type(err).__name__}: {str(err)[:200]}); "
            f"{rebuild_hint}"
        ) from err
    if not isinstance(payload, dict) or FORMAT_KEY not in payload:
        raise CheckpointError(f"{path} is not a distill-gym checkpoint (no '{FORMAT_KEY}' entry); {rebuild_hint}")
    if payload[FORMAT_KEY] != expected_format:
        raise CheckpointError(
            f"{path} holds '{payload[FORMAT_KEY]}', expected '{expected_format}'; {rebuild_hint}"
        )
    return payload
