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
from distill_core.common.config_checks import MAX_SAMPLES, MAX_WIDTH, bounded, check_choice, check_fields, check_per_class
from distill_core.common.seeding import derive_seed, seeded
from distill_core.condense.base import LR_SCHEDULES, MatchingProcess
from distill_core.condense.dsa import DSA_STRATEGY, parse_strategy
from distill_core.data import DatasetSplits
from distill_core.models import build_model, has_batchnorm
from distill_core.process import Update


#: how the synthetic images start: random real images of their class, or N(0, 1) noise
INITS = ("real", "noise")


@dataclass(frozen=True)
class DMConfig:
    """A DM run (an episode).

    :param dataset: data set to condense.
    :param images_per_class: synthetic images per class.
    :param iterations: outer updates (the budget; one env step each).
    :param real_batch: real images per class per update.
    :param lr_images: SGD learning rate of the synthetic pixels (momentum 0.5, as in DM).
    :param lr_schedule: ``constant`` (DM) or ``cosine`` (the pixels' learning rate decays to 0 over
        ``iterations``: with a budget far below DM's 20 000 updates, the last ones then settle the
        images instead of jittering them).
    :param init: ``real`` (start from random real images, as DM does) or ``noise``.
    :param dsa: differentiable siamese augmentation before embedding: one random transform per class
        and update, the same on the real and the synthetic batch (DM's setting).
    :param dsa_strategy: ``_``-separated DSA groups (see :mod:`distill_core.condense.dsa`).
    :param net_arch: the randomly initialised embedding network.
    :param net_width: its width (ConvNet-3 uses 128).
    :param score_every: score the set every this many updates (and after the last); in between the
        score, and so the reward, carries over. 1 for RL; larger for plain runs, where scoring dominates.
    :param score_epochs: epochs of the cheap evaluator that scores the set.
    :param score_lr: its learning rate (higher than the full protocol's: it trains for few steps).
    :param score_width: width of the cheap evaluator's ConvNet-3.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    """

    dataset: str = "digits"
    images_per_class: int = bounded(10, 1, MAX_SAMPLES)
    iterations: int = bounded(20, 1)
    real_batch: int = bounded(64, 1, MAX_SAMPLES)
    lr_images: float = bounded(1.0, above=0.0)
    lr_schedule: str = "constant"
    init: str = "real"
    dsa: bool = True
    dsa_strategy: str = DSA_STRATEGY
    net_arch: str = "convnet3_in"
    net_width: int = bounded(128, 1, MAX_WIDTH)
    score_every: int = bounded(1, 1)
    score_epochs: int = bounded(100, 1)
    score_lr: float = bounded(0.05, above=0.0)
    score_width: int = bounded(32, 1, MAX_WIDTH)
    device: str = "auto"

    def __post_init__(self) -> None:
        check_fields(self)
        check_choice(self, "init", INITS)
        check_choice(self, "lr_schedule", LR_SCHEDULES)
        try:
            parse_strategy(self.dsa_strategy)
        except ValueError as err:
            raise ValueError(f"DMConfig.dsa_strategy: {err}") from None

    def check_fits(self, data: DatasetSplits) -> None:
        """Refuse, before anything is allocated, a set with more images of a class than ``data`` has.

        :param data: the data set to condense.
        :raises ValueError: with the range ``images_per_class`` must lie in.
        """
        check_per_class("DMConfig", "images_per_class", self.images_per_class, data)


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
