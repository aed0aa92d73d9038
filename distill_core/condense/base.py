"""What every condensation method shares on top of the run lifecycle (:class:`StepwiseProcess`): the
knobs, the scoring cadence, the judge's per-class validation accuracy in the observation, the final report
and a picture of the set. A method adds how it starts (``_start``), what one outer update does
(``_update``), how its set is judged (``_accuracy``) and its own per-class statistics (``_method_stats``).

    reset(seed) → _start(seed); score()
    step(knobs) → _update(knobs); every ``score_every`` updates (and after the last) score()
    final_metrics() → the same judge on the real test split (reporting only, never a reward)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distill_core.common.batching import PREDICT_BATCH
from distill_core.common.device import resolve_device
from distill_core.common.frames import sample_frame
from distill_core.common.seeding import derive_seed, torch_generator
from distill_core.condense.baselines import random_subset
from distill_core.common.config_checks import MAX_SAMPLES, MAX_WIDTH, bounded, check_choice, check_fields, check_per_class
from distill_core.condense.dsa import DSA_STRATEGY, dsa_seeded, parse_strategy
from distill_core.condense.evaluator import EvalRecipe, train_on_synthetic
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.data import DatasetSplits, load_dataset
from distill_core.kd import class_means, predict_logits
from distill_core.process import StatsBuilder, StepwiseProcess, knob


#: learning-rate schedules of the condensation methods (pixels; DD's step sizes too)
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class CondenseKnobs:
    """What an agent sets every outer update of a condensation method (defaults: the published method)."""

    lr_scale: float = knob(1.0, 0.1, 10.0, "log", "multiplier of the image learning rate")
    class_weights: tuple[float, ...] | None = knob(1.0, 0.25, 4.0, "log", "matching-loss weight of each class",
                                                   per_class=True)


def lr_decay(schedule: str, step: int, total: int) -> float:
    """The factor of a learning rate at ``step`` of ``total``: 1 for ``constant``, ½(1 + cos(π·step/total))
    for ``cosine`` (decays to 0 at the end)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}: use one of {LR_SCHEDULES}")
    return 0.5 * (1.0 + math.cos(math.pi * step / total)) if schedule == "cosine" else 1.0


def per_class_accuracy(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[float, np.ndarray]:
    """Overall accuracy and the accuracy on each class's examples (0 for a class without examples).

    Per-class accuracy, not the mean softmax probability, is what the observation carries: a judge
    trained for a few dozen steps on a handful of images is right far more often than it is confident,
    and its probabilities' scale changes with the data set and the recipe, its accuracy's does not.
    """
    y = y.to(logits.device)
    correct = (logits.argmax(1) == y).float()
    return float(correct.mean()), class_means(correct, y, num_classes)


class CondensationProcess(StepwiseProcess):
    """What every condensation method shares on top of :class:`~distill_core.process.StepwiseProcess`:
    the data, the scoring cadence (``score_every``), the judge's per-class validation accuracy in the
    observation, the final report and a picture of the set.

    Subclasses set ``method`` and ``seed_prefix`` and implement :meth:`_start`, :meth:`_update`,
    :meth:`synthetic_set` and :meth:`_method_stats`. The default judge (:meth:`_accuracy`) is the cheap
    evaluator: a ConvNet-3 of ``score_width`` trained for ``score_epochs`` on the current set; DD
    replaces it with replaying its learned schedule.
    """

    Knobs = CondenseKnobs
    budget_field = "iterations"
    method = "condense"
    #: prefix of the run's named seed streams (``<prefix>-init``, ``<prefix>-score``, ...)
    seed_prefix = "condense"

    def __init__(self, config: Any, *, data: DatasetSplits | None = None) -> None:
        super().__init__(config)
        self.device = resolve_device(config.device)
        self.data = data if data is not None else load_dataset(config.dataset)
        config.check_fits(self.data)  # an oversized set is refused here, not when reset allocates it
        self.num_classes = self.data.num_classes
        self._x_val = self.data.x_val.to(self.device)
        self._class_accuracy = np.zeros(self.num_classes)

    @property
    def iteration(self) -> int:
        """Outer updates taken in this run."""
        return self.steps_taken

    def _scores_after_step(self) -> bool:
        return self.steps_taken % self.config.score_every == 0

    def class_weights(self, knobs: Any) -> np.ndarray:
        """The per-class weights of ``knobs`` (every class at 1 when unset)."""
        return np.asarray(knobs.class_weights if knobs.class_weights is not None else [1.0] * self.num_classes)

    # ------------------------------------------------------------------ what a method provides
    def synthetic_set(self) -> SyntheticSet:
        raise NotImplementedError

    def _method_stats(self, builder: StatsBuilder) -> None:
        """Add the method's own per-class statistics (bounded) to the observation."""
        raise NotImplementedError

    def _real_or_noise_images(self, seed: int, images_per_class: int, init: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The starting set: random real images per class (``init="real"``, as DC and DM start) or N(0, 1) noise."""
        if init == "real":
            start = random_subset(self.data, images_per_class, seed=derive_seed(seed, f"{self.seed_prefix}-init"))
            return start.x, start.y
        y = torch.arange(self.num_classes).repeat_interleave(images_per_class)
        return torch.randn(len(y), *self.data.input_shape, generator=generator), y

    # ------------------------------------------------------------------ judging the set
    def _accuracy(self, split: str) -> float:
        """Accuracy on a real split of the cheap evaluator trained on the current set; on the validation
        split it also refreshes the per-class accuracy of the observation."""
        cfg = self.config
        model = train_on_synthetic(self.synthetic_set(), self.data, arch="convnet3_in", model_kwargs={"width": cfg.score_width},
                                   recipe=EvalRecipe(epochs=cfg.score_epochs, lr=cfg.score_lr),
                                   seed=derive_seed(self._seed, f"{self.seed_prefix}-score"), device=self.device)
        return self._judge(model, split)

    @torch.no_grad()  # a pass over a whole split: without it autograd keeps every batch's activations
    def _judge(self, model: torch.nn.Module, split: str) -> float:
        x, y = (self._x_val, self.data.y_val) if split == "val" else (self.data.x_test.to(self.device), self.data.y_test)
        accuracy, class_accuracy = per_class_accuracy(predict_logits(model, x, PREDICT_BATCH), y, self.num_classes)
        if split == "val":
            self._class_accuracy = class_accuracy
        return accuracy

    def score(self) -> float:
        """Validation accuracy of the judge trained on the current set (real validation data, never the
        test split): the quantity whose gain is the reward."""
        if self._seed is None:
            raise RuntimeError("call reset(seed) before score()")
        return self._accuracy("val")

    def final_metrics(self) -> dict[str, float]:
        """The same judge on the real test split: for reporting only."""
        return {"test_accuracy": self._accuracy("test")}

    def render_samples(self) -> np.ndarray:
        """The current synthetic set, sorted by class (the data set's pixel range)."""
        if self._seed is None:
            raise RuntimeError("call reset(seed) before rendering")
        synthetic = self.synthetic_set()
        return sample_frame(self.data.denormalize(synthetic.x), synthetic.y)

    # ------------------------------------------------------------------ observation
    def _observe(self, builder: StatsBuilder) -> None:
        self._method_stats(builder)
        builder.extend("val_accuracy", self._class_accuracy)  # of the last scored judge, per class

    def clone(self) -> CondensationProcess:
        return type(self)(self.config, data=self.data)


#: how a matching method's synthetic images start: random real images of their class, or N(0, 1) noise
INITS = ("real", "noise")


@dataclass(frozen=True)
class MatchingConfig:
    """What every matching run (DC, DSA, DM: an episode) configures; the defaults are DM's.

    :param dataset: data set to condense.
    :param images_per_class: synthetic images per class.
    :param iterations: outer updates (the budget; one env step each).
    :param real_batch: real images per class in each match.
    :param lr_images: SGD learning rate of the synthetic pixels (momentum 0.5, as DC and DM).
    :param lr_schedule: ``constant`` (the papers) or ``cosine`` (the pixels' learning rate decays to 0 over
        ``iterations``: with a budget far below the papers', the last updates then settle the images
        instead of jittering them).
    :param init: ``real`` (start from random real images, as DC and DM do) or ``noise``.
    :param dsa: differentiable siamese augmentation: the same random transform on the real and the
        synthetic batch of a class, one parameter set per class batch, drawn from the run's generator.
    :param dsa_strategy: ``_``-separated DSA groups (see :mod:`distill_core.condense.dsa`).
    :param net_arch: the network whose gradients (DC) or embeddings (DM) are matched.
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
            raise ValueError(f"{type(self).__name__}.dsa_strategy: {err}") from None

    def check_fits(self, data: DatasetSplits) -> None:
        """Refuse, before anything is allocated, a set with more images of a class than ``data`` has.

        :param data: the data set to condense.
        :raises ValueError: with the range ``images_per_class`` must lie in.
        """
        check_per_class(type(self).__name__, "images_per_class", self.images_per_class, data)


class MatchingProcess(CondensationProcess):
    """A condensation method that moves synthetic pixels (SGD, momentum 0.5) so that, class by class, they
    match a real batch under some network (DC: its gradients; DM: its mean embedding). Subclasses
    implement :meth:`_update` with :meth:`_real_batch` and :meth:`_siamese`, and keep the per-class
    distances of the last update in ``self._distances`` (bounded to [0, 1] for the observation)."""

    def __init__(self, config: Any, *, data: DatasetSplits | None = None) -> None:
        super().__init__(config, data=data)
        self._by_class = [torch.nonzero(self.data.y_train == c).squeeze(1) for c in range(self.num_classes)]
        self._distances = np.zeros(self.num_classes)

    def _start(self, seed: int) -> None:
        self._gen = torch_generator(derive_seed(seed, self.seed_prefix))
        x, y = self._real_or_noise_images(seed, self.config.images_per_class, self.config.init, self._gen)
        self.x = x.to(self.device).requires_grad_()
        self.y = y.to(self.device)
        self._optimizer = torch.optim.SGD([self.x], lr=self.config.lr_images, momentum=0.5)
        self._distances = np.zeros(self.num_classes)

    def _image_lr(self, knobs: Any) -> float:
        """This update's learning rate of the pixels: ``lr_images × lr_scale × lr_decay`` (see :func:`lr_decay`)."""
        cfg = self.config
        return cfg.lr_images * knobs.lr_scale * lr_decay(cfg.lr_schedule, self.iteration, cfg.iterations)

    def _real_batch(self, c: int) -> torch.Tensor:
        """``real_batch`` real training images of class ``c``, drawn without replacement from the run's stream."""
        members = self._by_class[c]
        return self.data.x_train[members[torch.randperm(len(members), generator=self._gen)[: self.config.real_batch]]].to(self.device)

    def _siamese(self, real: torch.Tensor, syn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """With ``dsa``: one DSA parameter set, drawn from the run's stream, applied to both batches."""
        if not self.config.dsa:
            return real, syn
        seed = int(torch.randint(2**62, (1,), generator=self._gen))
        return dsa_seeded(real, self.config.dsa_strategy, seed=seed), dsa_seeded(syn, self.config.dsa_strategy, seed=seed)

    def synthetic_set(self) -> SyntheticSet:
        """The current synthetic images (detached) and labels, with the run's configuration."""
        return SyntheticSet(self.x.detach().cpu().clone(), self.y.cpu().clone(), self.data.name, self.method,
                            meta={"seed": self._seed, "iterations": self.iteration, **dataclasses.asdict(self.config)})

    def _method_stats(self, builder: StatsBuilder) -> None:
        builder.extend("distance", self._distances)
