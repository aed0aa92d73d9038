"""Distribution matching (DM; Zhao & Bilen, WACV 2023) as a step-wise process.

One step = one outer update: sample a freshly initialised, never-trained ConvNet-3; for every class,
match the mean embedding of a real batch and of that class's synthetic images; take an SGD step on the
synthetic pixels. No bi-level optimisation. The knobs an agent may set each step are per-class weights
of the matching loss and a multiplier of the image learning rate (defaults: the paper's plain DM).

    process = DMProcess(DMConfig(dataset="digits", images_per_class=10))
    process.reset(seed=0)
    while not process.done:
        process.step(process.Knobs())
    synthetic = process.synthetic_set()
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distill_core.common.device import resolve_device
from distill_core.common.seeding import derive_seed, seeded, torch_generator
from distill_core.condense.baselines import random_subset
from distill_core.condense.evaluator import EvalRecipe, train_on_synthetic
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.data import DatasetSplits, load_dataset
from distill_core.kd import evaluate
from distill_core.models import build_model
from distill_core.process import Stats, StatsBuilder, check_knobs, knob, knob_specs


@dataclass(frozen=True)
class DMConfig:
    """A DM run (an episode).

    :param dataset: data set to condense.
    :param images_per_class: synthetic images per class.
    :param iterations: outer updates (the budget; one env step each).
    :param real_batch: real images per class per update.
    :param lr_images: SGD learning rate of the synthetic pixels (momentum 0.5, as in DM).
    :param init: ``real`` (start from random real images, as DM does) or ``noise``.
    :param net_arch: the randomly initialised embedding network.
    :param net_width: its width (ConvNet-3 uses 128).
    :param score_epochs: epochs of the cheap evaluator that scores the set after each update.
    :param score_lr: its learning rate (higher than the full protocol's: it trains for few steps).
    :param score_width: width of the cheap evaluator's ConvNet-3.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    """

    dataset: str = "digits"
    images_per_class: int = 10
    iterations: int = 20
    real_batch: int = 64
    lr_images: float = 1.0
    init: str = "real"
    net_arch: str = "convnet3_in"
    net_width: int = 128
    score_epochs: int = 100
    score_lr: float = 0.05
    score_width: int = 32
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.init not in ("real", "noise"):
            raise ValueError(f"init must be 'real' or 'noise', got {self.init!r}")
        for name in ("images_per_class", "iterations", "real_batch", "score_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def dm_knobs(num_classes: int) -> type:
    """The knob class: a learning-rate multiplier and one matching weight per class."""
    fields = [("lr_scale", float, knob(1.0, 0.1, 10.0, "log", "multiplier of the image learning rate"))]
    fields += [(f"class_weight_{c}", float, knob(1.0, 0.25, 4.0, "log", f"matching-loss weight of class {c}"))
               for c in range(num_classes)]
    return dataclasses.make_dataclass("DMKnobs", fields, frozen=True)


class DMProcess:
    """Distribution matching as ``reset(seed)`` / ``step(knobs)`` / ``score()`` / ``done``.

    The score is the validation accuracy of a cheap evaluator (a narrow ConvNet-3 trained briefly on the
    current synthetic set): real validation data, never the test split.
    """

    def __init__(self, config: DMConfig | None = None, *, data: DatasetSplits | None = None) -> None:
        self.config = config = config or DMConfig()
        self.device = resolve_device(config.device)
        self.data = data if data is not None else load_dataset(config.dataset)
        self.num_classes = self.data.num_classes
        self.Knobs = dm_knobs(self.num_classes)
        self.knob_specs = knob_specs(self.Knobs)
        self._by_class = [torch.nonzero(self.data.y_train == c).squeeze(1) for c in range(self.num_classes)]
        self._seed: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int) -> Stats:
        cfg = self.config
        self._seed = int(seed)
        self.iteration = 0
        self._last_gain = 0.0
        self.seconds = 0.0
        self._gen = torch_generator(derive_seed(seed, "dm"))
        if cfg.init == "real":
            start = random_subset(self.data, cfg.images_per_class, seed=derive_seed(seed, "dm-init"))
            x, y = start.x, start.y
        else:
            y = torch.arange(self.num_classes).repeat_interleave(cfg.images_per_class)
            x = torch.randn(len(y), *self.data.input_shape, generator=self._gen)
        self.x = x.to(self.device).requires_grad_()
        self.y = y.to(self.device)
        self._optimizer = torch.optim.SGD([self.x], lr=cfg.lr_images, momentum=0.5)
        self._distances = np.zeros(self.num_classes)
        self._score = self.score()
        return self.stats({"score": self._score})

    @property
    def done(self) -> bool:
        return self._seed is not None and self.iteration >= self.config.iterations

    def step(self, knobs: Any = None) -> Stats:
        if self._seed is None:
            raise RuntimeError("call reset(seed) before step()")
        if self.done:
            raise RuntimeError("the run is over: call reset(seed) to start another")
        knobs = knobs if knobs is not None else self.Knobs()
        check_knobs(knobs, self.Knobs, self.knob_specs)
        start = time.perf_counter()
        with torch.enable_grad():
            loss = self._update(knobs)
        self.seconds += time.perf_counter() - start
        self.iteration += 1
        previous = self._score
        self._score = self.score()
        self._last_gain = self._score - previous
        return self.stats({"score": self._score, "gain": self._last_gain, "matching_loss": loss,
                           "diverged": not math.isfinite(loss), "update_seconds": self.seconds})

    def _update(self, knobs: Any) -> float:
        cfg = self.config
        with seeded(derive_seed(self._seed, "dm-net", self.iteration)):
            net = build_model(cfg.net_arch, input_shape=self.data.input_shape, num_classes=self.num_classes,
                              width=cfg.net_width).to(self.device)
        net.requires_grad_(False)  # never trained: only a random feature map
        loss = torch.zeros((), device=self.device)
        for c in range(self.num_classes):
            members = self._by_class[c]
            pick = members[torch.randint(len(members), (min(cfg.real_batch, len(members)),), generator=self._gen)]
            real = net.embed(self.data.x_train[pick].to(self.device)).mean(0)
            mask = self.y == c
            syn = net.embed(self.x[mask]).mean(0)
            distance = ((real - syn) ** 2).sum()
            self._distances[c] = float(distance.detach())
            loss = loss + getattr(knobs, f"class_weight_{c}") * distance
        for group in self._optimizer.param_groups:
            group["lr"] = cfg.lr_images * knobs.lr_scale
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return float(loss.detach())

    def score(self) -> float:
        """Validation accuracy of the cheap evaluator (a ConvNet-3 of ``score_width``, ``score_epochs``
        epochs, seeded by the run) trained on the current synthetic set."""
        cfg = self.config
        model = train_on_synthetic(self.synthetic_set(), self.data, arch="convnet3_in", model_kwargs={"width": cfg.score_width},
                                   recipe=EvalRecipe(epochs=cfg.score_epochs, lr=cfg.score_lr), seed=derive_seed(self._seed, "dm-score"),
                                   device=self.device)
        return evaluate(model, self.data.x_val.to(self.device), self.data.y_val)["accuracy"]

    def synthetic_set(self) -> SyntheticSet:
        """The current synthetic images (detached) and labels."""
        return SyntheticSet(self.x.detach().cpu().clone(), self.y.cpu().clone(), self.data.name, "dm",
                            meta={"seed": self._seed, "iterations": self.iteration, **dataclasses.asdict(self.config)})

    # ------------------------------------------------------------------ observation
    def _builder(self, distances: np.ndarray, progress: float, gain: float) -> StatsBuilder:
        builder = StatsBuilder().extend("distance", distances / (1.0 + distances))  # squashed to [0, 1)
        builder.add("progress", progress)
        builder.add("last_gain", math.tanh(gain), -1.0, 1.0)
        return builder

    def observation_layout(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        stats = self._builder(np.zeros(self.num_classes), 0.0, 0.0).build()
        return stats.names, stats.low, stats.high

    def stats(self, extras: dict[str, Any] | None = None) -> Stats:
        return self._builder(self._distances, self.iteration / self.config.iterations, self._last_gain).build(extras)

    def clone(self) -> DMProcess:
        return DMProcess(self.config, data=self.data)
