"""Dataset condensation by gradient matching (DC; Zhao, Mopuri & Bilen, ICLR 2021) and its version with
differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021) as a step-wise process.

One step = one outer iteration of DC: a freshly initialised ConvNet-3; ``outer_loop`` times, for every
class, the layer-wise distance between the gradient (w.r.t. the network's weights) of the cross-entropy
on a real batch of the class and on the class's synthetic images, summed over classes; one SGD step on
the synthetic pixels; then (except after the last outer loop) ``inner_loop`` epochs of training the
network on the synthetic set, so later matches happen along a training trajectory. With ``dsa=True``
the real and the synthetic batch of a class pass through the *same* random DSA transform before the
network (and the inner training uses per-image DSA), which is DSA. The knobs an agent may set each step
are per-class weights of the matching loss and a multiplier of the image learning rate (defaults: the
papers' plain DC/DSA).

    process = DCProcess(DCConfig(dataset="digits", images_per_class=10, dsa=True))
    process.reset(seed=0)
    while not process.done:
        process.step(process.Knobs())
    synthetic = process.synthetic_set()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distill_core.common.batching import CHUNK, minibatches
from distill_core.common.config_checks import MAX_SAMPLES, bounded
from distill_core.common.seeding import derive_seed, seeded
from distill_core.condense.base import MatchingConfig, MatchingProcess
from distill_core.condense.dsa import dsa_random
from distill_core.condense.evaluator import backward_in_chunks
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.data import DatasetSplits
from distill_core.models import build_model, has_batchnorm
from distill_core.process import Update

#: DC's (outer_loop, inner_loop) per images per class (``get_loops`` in the DC code).
DC_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def default_loops(images_per_class: int) -> tuple[int, int]:
    """DC's (outer_loop, inner_loop) for ``images_per_class``; sizes DC does not list take the nearest
    listed one (ties to the smaller)."""
    nearest = min(DC_LOOPS, key=lambda ipc: (abs(ipc - images_per_class), ipc))
    return DC_LOOPS[nearest]


@dataclass(frozen=True)
class DCConfig(MatchingConfig):
    """A DC (or DSA) run (an episode): the :class:`~distill_core.condense.base.MatchingConfig` fields with
    DC's defaults (256 real images per class, pixel learning rate 0.1, DSA off: ``dsa=True`` is DSA,
    with per-image DSA in the inner training too), and DC's own:

    :param outer_loop: image updates per iteration (each on the same, progressively trained network);
        ``None`` = DC's choice for ``images_per_class`` (1 → 1, 10 → 10, 50 → 50; see :data:`DC_LOOPS`).
    :param inner_loop: epochs of training the network on the synthetic set between image updates;
        ``None`` = DC's choice (1 → 1, 10 → 50, 50 → 10).
    :param lr_net: SGD learning rate of the network's inner training (no momentum, as in DC).
    :param batch_train: minibatch size of the inner training on the synthetic set (DC: 256).
    :param net_depth: the matched network's number of conv blocks (``None`` = the architecture's
        default, 3 for ConvNet-3); small inputs need fewer (8×8 digits: 2, else the last block
        instance-normalises 2×2 maps).
    """

    real_batch: int = bounded(256, 1, MAX_SAMPLES)
    lr_images: float = bounded(0.1, above=0.0)
    dsa: bool = False
    outer_loop: int | None = bounded(None, 1)
    inner_loop: int | None = bounded(None, 0)
    lr_net: float = bounded(0.01, above=0.0)
    batch_train: int = bounded(256, 1, MAX_SAMPLES)
    net_depth: int | None = bounded(None, 1)

    @property
    def loops(self) -> tuple[int, int]:
        """The (outer_loop, inner_loop) in effect (DC's choice for the fields left ``None``)."""
        outer, inner = default_loops(self.images_per_class)
        return (outer if self.outer_loop is None else self.outer_loop,
                inner if self.inner_loop is None else self.inner_loop)


def _rows(g: torch.Tensor) -> torch.Tensor:
    """A multi-dimensional gradient as (output units, rest), each row scaled to unit length."""
    return F.normalize(g.reshape(g.shape[0], -1), dim=1, eps=1e-12)


def gradient_distance(grads_a: Sequence[torch.Tensor], grads_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """DC's layer-wise gradient distance: for every parameter tensor with more than one dimension,
    reshaped to (output units, -1), the sum over output units of 1 − cosine similarity; 1-D tensors
    (biases, normalisation parameters) contribute 0, as in DC's ``'ours'`` distance.

    Computed as ½‖â − b̂‖² of the unit rows, which equals 1 − cos (DC adds 1e-6 to the norms' product
    instead), so identical gradients give exactly 0 and a row that is zero on one side contributes ½
    (a constant: it carries no gradient either way).
    """
    if len(grads_a) != len(grads_b):
        raise ValueError(f"gradient lists differ in length: {len(grads_a)} and {len(grads_b)}")
    total = None
    for a, b in zip(grads_a, grads_b):
        if a.shape != b.shape:
            raise ValueError(f"gradient shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
        if a.dim() < 2:
            continue
        d = 0.5 * ((_rows(a) - _rows(b)) ** 2).sum()
        total = d if total is None else total + d
    if total is None:
        device = grads_a[0].device if len(grads_a) else None
        return torch.zeros((), device=device)
    return total


def real_gradient(net: torch.nn.Module, params: Sequence[torch.Tensor], real: torch.Tensor, label: int,
                  chunk: int = CHUNK) -> list[torch.Tensor]:
    """The gradient (detached) of the mean cross-entropy of ``net`` on the real batch of class ``label``,
    accumulated over chunks of ``chunk`` images (one pass for a network with BatchNorm)."""
    if has_batchnorm(net):
        chunk = max(len(real), 1)
    total: list[torch.Tensor] | None = None
    for i in range(0, len(real), chunk):
        part = real[i:i + chunk]
        loss = F.cross_entropy(net(part), torch.full((len(part),), label, device=real.device), reduction="sum") / len(real)
        grads = torch.autograd.grad(loss, params)
        total = list(grads) if total is None else [t + g for t, g in zip(total, grads)]
    return [g.detach() for g in total]


class DCProcess(MatchingProcess):
    """Gradient matching (DC, or DSA with ``dsa=True``) as ``reset(seed)`` / ``step(knobs)`` / ``score()`` /
    ``done``.

    The score is the validation accuracy of a cheap evaluator (a narrow ConvNet-3 trained briefly on the
    current synthetic set): real validation data, never the test split. The observed per-class
    distance is the gradient distance per output unit, halved (in [0, 1]), averaged over outer loops.
    """

    seed_prefix = "dc"

    def __init__(self, config: DCConfig | None = None, *, data: DatasetSplits | None = None) -> None:
        config = config or DCConfig()
        self.method = "dsa" if config.dsa else "dc"
        super().__init__(config, data=data)
        self.outer_loop, self.inner_loop = config.loops
        self._net_kwargs = {"width": config.net_width, **({} if config.net_depth is None else {"depth": config.net_depth})}
        with seeded(0):  # fail here, not at the first step, if the network cannot take the data
            build_model(config.net_arch, input_shape=self.data.input_shape, num_classes=self.num_classes, **self._net_kwargs)

    def _update(self, knobs: Any) -> Update:
        """One outer iteration: the mean (over outer loops) weighted matching loss; a non-finite loss or
        gradient skips its image update and ends the iteration there (``diverged``)."""
        cfg = self.config
        with seeded(derive_seed(self._seed, "dc-net", self.iteration)):
            net = build_model(cfg.net_arch, input_shape=self.data.input_shape, num_classes=self.num_classes,
                              **self._net_kwargs).to(self.device)
        net.train()
        params = [p for p in net.parameters() if p.requires_grad]
        net_optimizer = torch.optim.SGD(params, lr=cfg.lr_net)
        rows = sum(p.shape[0] for p in params if p.dim() > 1)  # the distance lies in [0, 2 × rows]
        for group in self._optimizer.param_groups:
            group["lr"] = self._image_lr(knobs)
        weights = self.class_weights(knobs).tolist()
        distances = np.zeros(self.num_classes)
        losses: list[float] = []
        diverged = False
        for ol in range(self.outer_loop):
            loss = torch.zeros((), device=self.device)
            for c in range(self.num_classes):
                real, syn = self._siamese(self._real_batch(c), self.x[self.y == c])
                g_real = real_gradient(net, params, real, c)
                syn_loss = F.cross_entropy(net(syn), torch.full((len(syn),), c, device=self.device))
                g_syn = torch.autograd.grad(syn_loss, params, create_graph=True)
                distance = gradient_distance(g_syn, g_real)
                distances[c] += float(distance.detach()) / (2 * rows) / self.outer_loop
                loss = loss + weights[c] * distance
            value = float(loss.detach())
            losses.append(value)
            grad = torch.autograd.grad(loss, [self.x])[0] if math.isfinite(value) else None
            if grad is None or not bool(torch.isfinite(grad).all()):
                diverged = True  # skip this image update; the network is of no further use
                break
            self.x.grad = grad
            self._optimizer.step()
            if ol == self.outer_loop - 1:
                break
            self._train_net(net, net_optimizer)
        if not diverged:
            self._distances = distances
        return Update(diverged=diverged, extras={"matching_loss": float(np.mean(losses))})

    def _train_net(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """``inner_loop`` epochs of plain SGD on the (detached) synthetic set (per-image DSA with ``dsa``)."""
        cfg = self.config
        x, y = self.x.detach(), self.y
        for _ in range(self.inner_loop):
            for idx in minibatches(torch.randperm(len(x), generator=self._gen).to(self.device), cfg.batch_train):
                xb = dsa_random(x[idx], cfg.dsa_strategy, self._gen) if cfg.dsa else x[idx]
                optimizer.zero_grad(set_to_none=True)
                backward_in_chunks(net, xb, y[idx])
                optimizer.step()

    def synthetic_set(self) -> SyntheticSet:
        synthetic = super().synthetic_set()
        synthetic.meta.update(outer_loop=self.outer_loop, inner_loop=self.inner_loop)
        return synthetic
