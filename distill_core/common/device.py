"""Device selection: the CPU here, a GPU wherever one exists."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into ``cuda`` when a GPU is present, else ``cpu``; pass anything else through.

    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or a ``torch.device``.
    :raises ValueError: when ``device`` names a CUDA device on a machine without one.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda[:N]'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available: use device='auto' or 'cpu'")
    return resolved
