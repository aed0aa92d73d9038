"""Dataset distillation (DD; Wang, Zhu, Torralba & Efros, 2018) as a step-wise process.

DD learns synthetic images *and* one step size per inner step such that a few plain gradient-descent
steps on the images, taken from an initialisation θ₀, give a network that classifies real data. One
step = one outer update: unroll the ``steps × epochs`` inner steps from θ₀ (batch ``t % steps`` with step
size ``softplus(raw_lr[t])``), take the cross-entropy of θ_T on a real minibatch, backpropagate through
the whole unroll (exact second-order gradients) and take an Adam step on the pixels and the raw step
sizes. θ₀ is either one fixed initialisation (Wang's "known init") or a fresh random one every update.
The knobs an agent may set each step are per-class weights of the outer loss and a multiplier of both
learning rates (defaults: plain DD).

    process = DDProcess(DDConfig(dataset="digits"))
    process.reset(seed=0)
    while not process.done:
        process.step(process.Knobs())
    synthetic = process.synthetic_set()       # images + learned step sizes + what replaying needs
    evaluate_dd(synthetic, data)              # replay the schedule, real test accuracy

A DD set is not an ordinary training set: it is only meaningful with its step sizes, its batch order and
(for a fixed initialisation) its θ₀. :func:`~distill_core.condense.unroll.train_with_schedule` replays it
and :func:`~distill_core.condense.unroll.evaluate_dd` is its evaluation protocol (the counterpart of
:func:`~distill_core.condense.evaluator.evaluate_synthetic`); both live in :mod:`distill_core.condense.unroll`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill_core.common.config_checks import MAX_SAMPLES, MAX_WIDTH, bounded, check_choice, check_fields, check_per_class
from distill_core.common.seeding import derive_seed, torch_generator
from distill_core.condense.base import LR_SCHEDULES, CondenseKnobs, CondensationProcess, lr_decay
from distill_core.condense.baselines import random_subset
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.condense.unroll import build_net, params_of, softplus_inverse, train_with_schedule, unrolled_loss
from distill_core.data import DatasetSplits
from distill_core.process import StatsBuilder, Update, knob

#: Networks DD may unroll: stateless ones (no BatchNorm running statistics), so a functional unroll is exact.
DD_ARCHS = ("convnet3_in",)
INITS = ("fixed", "random")
IMAGE_INITS = ("noise", "real")


@dataclass(frozen=True)
class DDConfig:
    """A DD run (an episode).

    :param dataset: data set to distil.
    :param images_per_class: synthetic images per class in each inner step's batch.
    :param steps: distinct image batches (inner GD steps per epoch); the set holds
        ``steps × images_per_class × C`` images.
    :param epochs: passes over the batches; the unroll has ``steps × epochs`` inner steps, each with its
        own learned step size.
    :param iterations: outer updates (the budget; one env step each).
    :param real_batch: real training images (drawn uniformly) in each outer loss.
    :param lr_images: Adam learning rate of the synthetic pixels (Wang: 0.01; 0.03 converges in fewer
        updates on Fashion-MNIST).
    :param lr_lrs: Adam learning rate of the raw (pre-softplus) step sizes (Wang: 0.01; the learned
        step sizes end far above their start, so 0.03 gets there sooner).
    :param lr_schedule: ``constant`` (Adam's learning rates stay put) or ``cosine`` (both decay to 0 over
        ``iterations``).
    :param init_lr: initial inner step size (every ``softplus(raw_lr)`` starts here; Wang: 0.02).
    :param init: ``fixed`` (one θ₀ drawn from the run seed, the same every update: Wang's known
        initialisation) or ``random`` (a fresh θ₀ every update; the set must work for any θ₀).
    :param image_init: ``noise`` (N(0, 1) pixels, as Wang) or ``real`` (random real training images).
    :param net_arch: the network unrolled (one of :data:`DD_ARCHS`; stateless, so unrolling is exact).
    :param net_width: its width (channels per block).
    :param net_depth: its number of conv blocks (3 = ConvNet-3; 8×8 digits want 2, as three halvings
        leave 1×1 maps on which instance norm erases almost everything).
    :param grad_clip: clip the norm of the outer gradient (images and step sizes together) to this;
        0 = off.
    :param spike_guard: roll back when an (unweighted) outer loss exceeds this many times its running
        mean (EMA): images, step sizes and Adam's state return to the last iterate whose loss was
        ordinary and the update is skipped (``rolled_back`` in the step's extras). With large learned step sizes the
        unroll sits near the edge of stability, and a rare update tips it over into a network that
        predicts one class, from which it rarely recovers. 0 = off.
    :param num_eval_inits: random initialisations the score averages over (``init="random"`` only).
    :param score_every: score the set every this many updates (and after the last); in between the
        score, and so the reward, carries over. 1 for RL; larger for plain runs.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    """

    dataset: str = "digits"
    images_per_class: int = bounded(1, 1, MAX_SAMPLES)
    steps: int = bounded(1, 1)
    epochs: int = bounded(10, 1)
    iterations: int = bounded(200, 1)
    real_batch: int = bounded(256, 1, MAX_SAMPLES)
    lr_images: float = bounded(0.03, above=0.0)
    lr_lrs: float = bounded(0.03, above=0.0)
    lr_schedule: str = "constant"
    init_lr: float = bounded(0.05, above=0.0)
    init: str = "fixed"
    image_init: str = "noise"
    net_arch: str = "convnet3_in"
    net_width: int = bounded(32, 1, MAX_WIDTH)
    net_depth: int = bounded(3, 1)
    grad_clip: float = bounded(0.0, 0.0)
    spike_guard: float = bounded(3.0, 0.0)
    num_eval_inits: int = bounded(3, 1)
    score_every: int = bounded(1, 1)
    device: str = "auto"

    def __post_init__(self) -> None:
        check_fields(self)
        check_choice(self, "init", INITS)
        check_choice(self, "image_init", IMAGE_INITS)
        check_choice(self, "lr_schedule", LR_SCHEDULES)
        if self.net_arch not in DD_ARCHS:
            raise ValueError(f"DDConfig.net_arch must be one of {', '.join(map(repr, DD_ARCHS))} (a stateless network), "
                             f"got {self.net_arch!r}")
        if 0 < self.spike_guard <= 1:
            raise ValueError(f"DDConfig.spike_guard must be > 1 (a multiple of the running mean loss) or 0 (off), got {self.spike_guard}")

    @property
    def synthetic_per_class(self) -> int:
        """Synthetic images of each class the set holds: ``images_per_class`` in each of ``steps`` batches."""
        return self.images_per_class * self.steps

    def check_fits(self, data: DatasetSplits) -> None:
        """Refuse, before anything is allocated, a set with more images of a class than ``data`` has.

        :param data: the data set to distil.
        :raises ValueError: with the range ``images_per_class × steps`` must lie in.
        """
        check_per_class("DDConfig", "images_per_class × steps", self.synthetic_per_class, data)

    @property
    def inner_steps(self) -> int:
        """``steps × epochs``: the length of the unroll and of the learned schedule."""
        return self.steps * self.epochs


# ---------------------------------------------------------------------- the process
@dataclass(frozen=True)
class DDKnobs(CondenseKnobs):
    """DD's knobs: the condensation knobs, acting on both learning rates and on the outer loss."""

    lr_scale: float = knob(1.0, 0.1, 10.0, "log", "multiplier of the images' and step sizes' learning rates")
    class_weights: tuple[float, ...] | None = knob(1.0, 0.25, 4.0, "log", "outer-loss weight of each real class",
                                                   per_class=True)


class DDProcess(CondensationProcess):
    """Dataset distillation as ``reset(seed)`` / ``step(knobs)`` / ``score()`` / ``done``.

    The score is the validation accuracy of the network the learned schedule trains (for random
    initialisations, the mean over ``num_eval_inits`` seeded ones): real validation data, never the
    test split. It costs one replay of the unroll and a pass over the validation set per initialisation.
    """

    Knobs = DDKnobs
    method = "dd"
    seed_prefix = "dd"

    def __init__(self, config: DDConfig | None = None, *, data: DatasetSplits | None = None) -> None:
        super().__init__(config or DDConfig(), data=data)
        self._x_train = self.data.x_train.to(self.device)
        self._y_train = self.data.y_train.to(self.device)
        self._losses = np.zeros(self.num_classes)
        self.raw_lrs: torch.Tensor | None = None


    def _start(self, seed: int) -> None:
        cfg = self.config
        self._gen = torch_generator(derive_seed(seed, "dd"))
        per_step = torch.arange(self.num_classes).repeat_interleave(cfg.images_per_class)
        y = per_step.repeat(cfg.steps)  # batch t = rows [t·C·ipc, (t+1)·C·ipc), class-major within a batch
        if cfg.image_init == "real":
            start = random_subset(self.data, cfg.images_per_class * cfg.steps, seed=derive_seed(seed, "dd-image-init"))
            shape = self.data.input_shape
            x = (start.x.reshape(self.num_classes, cfg.steps, cfg.images_per_class, *shape)
                 .transpose(0, 1).reshape(len(y), *shape).clone())
        else:
            x = torch.randn(len(y), *self.data.input_shape, generator=self._gen)
        self.x = x.to(self.device).requires_grad_()
        self.y = y.to(self.device)
        self.raw_lrs = torch.full((cfg.inner_steps,), softplus_inverse(cfg.init_lr), device=self.device).requires_grad_()
        self._optimizer = torch.optim.Adam([{"params": [self.x], "lr": cfg.lr_images},
                                            {"params": [self.raw_lrs], "lr": cfg.lr_lrs}])
        self._base_lrs = (cfg.lr_images, cfg.lr_lrs)
        self._init_seed = derive_seed(seed, "dd-net") if cfg.init == "fixed" else None
        self._net = self._network(self._init_seed if cfg.init == "fixed" else derive_seed(seed, "dd-net", 0))
        self._theta0 = params_of(self._net) if cfg.init == "fixed" else None
        self._losses = np.zeros(self.num_classes)
        self._loss_ema: float | None = None
        self._good: tuple[torch.Tensor, torch.Tensor, dict] | None = None
        self.rollbacks = 0

    def _network(self, seed: int) -> nn.Module:
        cfg = self.config
        return build_net(cfg.net_arch, cfg.net_width, cfg.net_depth, self.data, seed, self.device)

    def _update(self, knobs: Any) -> Update:
        """One outer update; a non-finite loss or gradient leaves images and step sizes untouched
        (``diverged``), a loss spike (see ``spike_guard``) restores the last ordinary iterate."""
        loss, rolled_back = self._outer_update(knobs)
        return Update(diverged=not math.isfinite(loss), extras={
            "outer_loss": loss, "rolled_back": rolled_back, "rollbacks": self.rollbacks,
            "mean_step_size": float(self.learned_lrs().mean())})

    def _outer_update(self, knobs: Any) -> tuple[float, bool]:
        """The weighted outer loss and whether the update was rolled back instead of taken."""
        cfg = self.config
        if cfg.init == "fixed":
            net, theta0 = self._net, self._theta0
        else:
            net = self._network(derive_seed(self._seed, "dd-net", self.iteration))
            theta0 = params_of(net)
        pick = torch.randint(len(self._y_train), (cfg.real_batch,), generator=self._gen).to(self.device)
        x_real, y_real = self._x_train[pick], self._y_train[pick]
        weights = torch.tensor(self.class_weights(knobs), dtype=x_real.dtype, device=self.device)
        loss, per_sample = unrolled_loss(net, theta0, self.x, self.y, F.softplus(self.raw_lrs), x_real, y_real,
                                         steps=cfg.steps, class_weights=weights)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value, False
        plain = float(per_sample.mean())  # the unweighted loss: the guard must not react to the class weights
        if cfg.spike_guard > 0 and self._loss_ema is not None and plain > cfg.spike_guard * self._loss_ema:
            x, raw, state = self._good
            with torch.no_grad():
                self.x.copy_(x)
                self.raw_lrs.copy_(raw)
            self._optimizer.load_state_dict(copy.deepcopy(state))
            self.rollbacks += 1
            return value, True
        grad_x, grad_lr = torch.autograd.grad(loss, [self.x, self.raw_lrs])
        norm = torch.sqrt(grad_x.pow(2).sum() + grad_lr.pow(2).sum())
        if not bool(torch.isfinite(norm)):
            return float("nan"), False
        if cfg.grad_clip > 0:
            scale = torch.clamp(cfg.grad_clip / (norm + 1e-12), max=1.0)
            grad_x, grad_lr = grad_x * scale, grad_lr * scale
        counts = torch.bincount(y_real, minlength=self.num_classes)
        sums = torch.zeros(self.num_classes, dtype=per_sample.dtype, device=self.device).index_add_(0, y_real, per_sample)
        present = (counts > 0).cpu().numpy()
        self._losses[present] = (sums / counts.clamp(min=1)).cpu().numpy()[present]
        decay = lr_decay(cfg.lr_schedule, self.iteration, cfg.iterations)
        for group, base in zip(self._optimizer.param_groups, self._base_lrs):
            group["lr"] = base * knobs.lr_scale * decay
        if cfg.spike_guard > 0:  # this iterate's loss is ordinary: the one to come back to
            self._good = (self.x.detach().clone(), self.raw_lrs.detach().clone(), copy.deepcopy(self._optimizer.state_dict()))
            self._loss_ema = plain if self._loss_ema is None else 0.9 * self._loss_ema + 0.1 * plain
        self.x.grad, self.raw_lrs.grad = grad_x, grad_lr
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        return value, False

    def learned_lrs(self) -> torch.Tensor:
        """The current inner step sizes, ``softplus(raw_lrs)`` (detached; ``init_lr`` before the first reset)."""
        if self.raw_lrs is None:
            return torch.full((self.config.inner_steps,), self.config.init_lr)
        return F.softplus(self.raw_lrs.detach())

    def _accuracy(self, split: str) -> float:
        """Accuracy on a real split of the network the learned schedule trains from θ₀ on the current set
        (the run's fixed θ₀, or the mean over ``num_eval_inits`` seeded random ones)."""
        cfg = self.config
        synthetic = self.synthetic_set()
        seeds = [0] if cfg.init == "fixed" else [derive_seed(self._seed, "dd-score", k) for k in range(cfg.num_eval_inits)]
        accuracies, per_class = [], []
        for s in seeds:
            accuracies.append(self._judge(train_with_schedule(synthetic, self.data, seed=s, device=self.device), split))
            per_class.append(self._class_accuracy)
        if split == "val":
            self._class_accuracy = np.mean(per_class, axis=0)
        return float(np.mean(accuracies))

    def synthetic_set(self) -> SyntheticSet:
        """The current images (ordered by inner-step batch), labels, learned step sizes and everything
        :func:`train_with_schedule` needs to replay them (plain Python values: survives save/load)."""
        cfg = self.config
        meta = {"arch": cfg.net_arch, "width": cfg.net_width, "depth": cfg.net_depth, "init": cfg.init,
                "init_seed": self._init_seed, "steps": cfg.steps, "epochs": cfg.epochs,
                "images_per_class": cfg.images_per_class, "seed": self._seed, "iterations": self.iteration,
                "config": dataclasses.asdict(cfg)}
        return SyntheticSet(self.x.detach().cpu().clone(), self.y.cpu().clone(), self.data.name, "dd",
                            lrs=self.learned_lrs().cpu().clone(), meta=meta)

    def _method_stats(self, builder: StatsBuilder) -> None:
        builder.extend("outer_loss", self._losses / (1.0 + self._losses))  # squashed to [0, 1)
        lrs = self.learned_lrs().cpu().numpy().astype(np.float64)
        builder.extend("step_size", lrs / (lrs + self.config.init_lr))  # 0.5 at the initial step size
