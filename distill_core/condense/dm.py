"""Distribution matching (DM; Zhao & Bilen, WACV 2023) as a step-wise process.

One step = one outer update: sample a freshly initialised, never-trained ConvNet-3; for every class,
match the mean embedding of a real batch and of that class's synthetic images; take an SGD step on the
synthetic pixels. No bi-level optimisation. As in DM, both batches of a class first pass through the same
random differentiable siamese augmentation (``dsa=True``). The knobs an agent may set each step are per-class weights
of the matching loss and a multiplier of the image learning rate (defaults: the paper's plain DM).

    process = DMProcess(DMConfig(dataset="digits", images_per_class=10))
    process.reset(seed=0)
    while not process.done:
        process.step(process.Knobs())
    synthetic = process.synthetic_set()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distill_core.common.batching import CHUNK
from distill_core.common.seeding import derive_seed, seeded
from distill_core.condense.base import MatchingConfig, MatchingProcess
from distill_core.data import DatasetSplits
from distill_core.models import build_model, has_batchnorm
from distill_core.process import Update


@dataclass(frozen=True)
class DMConfig(MatchingConfig):
    """A DM run (an episode): every field is a :class:`~distill_core.condense.base.MatchingConfig` field,
    whose defaults are DM's (64 real images per class, pixel learning rate 1, DSA on); the matched
    network is a freshly initialised, never-trained ``net_arch`` every update."""


@torch.no_grad()
def mean_embedding(net: torch.nn.Module, x: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """The mean of ``net.embed`` over ``x`` (a constant: no graph), embedded ``chunk`` images at a time:
    on a CPU that keeps the first block's activations in cache, about a third faster than one pass over
    the real batch, which is most of an update's cost. A network with BatchNorm (in training mode its
    output depends on the batch) embeds ``x`` in one pass."""
    if has_batchnorm(net):
        chunk = max(len(x), 1)
    total = None
    for i in range(0, len(x), chunk):
        part = net.embed(x[i:i + chunk]).sum(0)
        total = part if total is None else total + part
    return total / len(x)


class DMProcess(MatchingProcess):
    """Distribution matching as ``reset(seed)`` / ``step(knobs)`` / ``score()`` / ``done``.

    The score is the validation accuracy of a cheap evaluator (a narrow ConvNet-3 trained briefly on the
    current synthetic set): real validation data, never the test split.
    """

    method = "dm"
    seed_prefix = "dm"

    def __init__(self, config: DMConfig | None = None, *, data: DatasetSplits | None = None) -> None:
        super().__init__(config or DMConfig(), data=data)

    def _update(self, knobs: Any) -> Update:
        cfg = self.config
        with seeded(derive_seed(self._seed, "dm-net", self.iteration)):
            net = build_model(cfg.net_arch, input_shape=self.data.input_shape, num_classes=self.num_classes,
                              width=cfg.net_width).to(self.device)
        net.requires_grad_(False)  # never trained: only a random feature map
        loss = torch.zeros((), device=self.device)
        distances = np.zeros(self.num_classes)
        weights = self.class_weights(knobs).tolist()
        for c in range(self.num_classes):
            real, syn = self._siamese(self._real_batch(c), self.x[self.y == c])
            distance = ((mean_embedding(net, real) - net.embed(syn).mean(0)) ** 2).sum()
            distances[c] = float(distance.detach())
            loss = loss + weights[c] * distance
        value = float(loss.detach())
        if not math.isfinite(value):  # skip the update; the env ends the episode
            return Update(diverged=True, extras={"matching_loss": value})
        self._distances = distances / (1.0 + distances)  # squashed to [0, 1)
        for group in self._optimizer.param_groups:
            group["lr"] = self._image_lr(knobs)
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return Update(extras={"matching_loss": value})
