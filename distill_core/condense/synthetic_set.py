"""A condensed (synthetic) training set: images, labels and, for dataset distillation, the learned
per-step learning rates that must be replayed with it. Saved atomically with a content checksum,
loaded with weights_only and validated (finite images, labels in range, the data set's input shape)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill_core.common.checkpoint import CheckpointError, atomic_save, check_tensor, load_checkpoint
from distill_core.data import DatasetSplits

SYNTHETIC_FORMAT = "distill-gym/synthetic-set/v1"
REBUILD_HINT = "re-run scripts/condense.py to make the synthetic set again"


@dataclass
class SyntheticSet:
    """Synthetic images (normalised like the data set they condense) and their labels.

    :param x: ``(N, *input_shape)`` images.
    :param y: ``(N,)`` labels.
    :param dataset: name of the data set condensed.
    :param method: how it was made (``dm``, ``dc``, ``dsa``, ``dd``, ``random``, ``herding``).
    :param lrs: learned per-step learning rates (DD only): training on this set means replaying them.
    :param meta: anything else worth keeping (configuration, seed).
    :param source: the file it was loaded from (named in validation errors); not saved.
    """

    x: torch.Tensor
    y: torch.Tensor
    dataset: str
    method: str
    lrs: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path | None = field(default=None, compare=False, repr=False)

    @property
    def images_per_class(self) -> int:
        return int(torch.bincount(self.y).max()) if len(self.y) else 0

    def _where(self) -> str:
        if self.source is not None:
            return f"synthetic set {self.source}"
        return f"synthetic set (in memory, {self.method!r} for {self.dataset!r})"

    def validate(self, data: DatasetSplits | None = None) -> SyntheticSet:
        """Check that the set can be trained on: non-empty floating, finite images ``(N, ...)``; ``N``
        integer labels ``>= 0``; finite 1-D step sizes if any. With ``data``, also that the set was made
        for that data set: same name, input shape ``data.input_shape`` and labels below ``data.num_classes``.

        :param data: the data set it is about to be trained / evaluated on.
        :return: ``self``.
        :raises CheckpointError: naming the file (when loaded from one), the problem and the fix.
        """
        where, fix = self._where(), REBUILD_HINT
        for name in ("dataset", "method"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise CheckpointError(f"{where}: {name!r} is {getattr(self, name)!r}, not a data set / method name; {fix}")
        if not isinstance(self.meta, dict):
            raise CheckpointError(f"{where}: 'meta' is a {type(self.meta).__name__}, not a dict; {fix}")
        x = check_tensor(self.x, what="image tensor 'x'", where=where, fix=fix, kind="floating", non_empty=True)
        if x.dim() < 2:
            raise CheckpointError(f"{where}: image tensor 'x' has shape {tuple(x.shape)}, expected (N, *input_shape); {fix}")
        y = check_tensor(self.y, what="label tensor 'y'", where=where, fix=fix, kind="integer", shape=(len(x),))
        if int(y.min()) < 0:
            raise CheckpointError(f"{where}: label tensor 'y' includes {int(y.min())}; labels are class indices >= 0; {fix}")
        if self.lrs is not None:
            check_tensor(self.lrs, what="step-size tensor 'lrs'", where=where, fix=fix, kind="floating", shape=(None,),
                         non_empty=True)
        if data is None:
            return self
        if self.dataset != data.name:
            raise CheckpointError(
                f"{where} was made for data set {self.dataset!r}, not {data.name!r}; evaluate it on {self.dataset!r} "
                f"(scripts/condense.py --evaluate loads the set's own data set) or condense {data.name!r}")
        if tuple(x.shape[1:]) != tuple(data.input_shape):
            raise CheckpointError(
                f"{where}: images have shape {tuple(x.shape[1:])}, but {data.name!r} inputs are {tuple(data.input_shape)}; {fix}")
        if int(y.max()) >= data.num_classes:
            raise CheckpointError(
                f"{where}: label tensor 'y' includes {int(y.max())}, but {data.name!r} has {data.num_classes} classes "
                f"(labels 0..{data.num_classes - 1}); {fix}")
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write the set to ``path`` (atomic, with a content checksum, mode ``0o666`` minus the umask).

        :raises CheckpointError: the set is invalid (see :meth:`validate`): a file no one could load is not written.
        """
        self.validate()
        payload = {"format": SYNTHETIC_FORMAT, "x": self.x.detach().cpu(), "y": self.y.cpu(), "dataset": self.dataset,
                   "method": self.method, "lrs": None if self.lrs is None else self.lrs.detach().cpu(), "meta": self.meta}
        return atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticSet:
        """Read a set written by :meth:`save`: checksum verified, then :meth:`validate` (without a data set).

        :raises FileNotFoundError: no file at ``path``.
        :raises CheckpointError: the file is corrupt, edited, foreign or holds an invalid set.
        """
        payload = load_checkpoint(path, expected_format=SYNTHETIC_FORMAT, rebuild_hint=REBUILD_HINT)
        missing = [k for k in ("x", "y", "dataset", "method", "lrs", "meta") if k not in payload]
        if missing:
            raise CheckpointError(f"synthetic set {path} lacks {', '.join(missing)}; {REBUILD_HINT}")
        meta = payload["meta"]
        synthetic = cls(payload["x"], payload["y"], payload["dataset"], payload["method"], payload["lrs"],
                        dict(meta) if isinstance(meta, dict) else meta, source=Path(path))
        return synthetic.validate()
