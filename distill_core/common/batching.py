"""Minibatch index chunks for training loops over in-memory tensors, and the chunk sizes they share."""

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


# The evaluator, DD's replay and every process share these sizes; here, in a module that imports nothing
# of the package, any of them can import them without an import circle.

#: images per forward/backward pass of a network that normalises each image on its own (no BatchNorm):
#: on a CPU, small chunks keep a ConvNet-3's wide first-block activations in cache (about a third faster
#: than one pass over a 100-image batch), and the accumulated gradient is the batch's
CHUNK = 20

#: images per forward pass when a trained network is scored on a real split (cache-sized, as above)
PREDICT_BATCH = 32
