"""Minibatch index chunks for training loops over in-memory tensors."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def minibatches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive chunks of ``order`` of ``batch_size``; a final chunk of one sample is merged into the
    previous one, because BatchNorm cannot normalise a batch of one in training mode."""
    n = len(order)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else n
        yield order[start:end]
