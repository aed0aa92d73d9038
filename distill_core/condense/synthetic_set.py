"""A condensed (synthetic) training set: images, labels and, for dataset distillation, the learned
per-step learning rates that must be replayed with it. Saved atomically, loaded with weights_only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill_core.common.checkpoint import atomic_save, load_checkpoint

SYNTHETIC_FORMAT = "distill-gym/synthetic-set/v1"


@dataclass
class SyntheticSet:
    """Synthetic images (normalised like the data set they condense) and their labels.

    :param x: ``(N, *input_shape)`` images.
    :param y: ``(N,)`` labels.
    :param dataset: name of the data set condensed.
    :param method: how it was made (``dm``, ``dc``, ``dsa``, ``dd``, ``random``, ``herding``).
    :param lrs: learned per-step learning rates (DD only): training on this set means replaying them.
    :param meta: anything else worth keeping (configuration, seed).
    """

    x: torch.Tensor
    y: torch.Tensor
    dataset: str
    method: str
    lrs: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_class(self) -> int:
        return int(torch.bincount(self.y).max()) if len(self.y) else 0

    def save(self, path: str | os.PathLike) -> Path:
        payload = {"format": SYNTHETIC_FORMAT, "x": self.x.detach().cpu(), "y": self.y.cpu(), "dataset": self.dataset,
                   "method": self.method, "lrs": None if self.lrs is None else self.lrs.detach().cpu(), "meta": self.meta}
        return atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticSet:
        payload = load_checkpoint(path, expected_format=SYNTHETIC_FORMAT,
                                  rebuild_hint="re-run scripts/condense.py to make the synthetic set again")
        return cls(payload["x"], payload["y"], payload["dataset"], payload["method"], payload["lrs"], dict(payload["meta"]))
