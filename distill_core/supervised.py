"""Supervised training of a classifier on labelled tensors (how teachers are made)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill_core.augment import augment_batch
from distill_core.common.batching import minibatches
from distill_core.common.config_checks import MAX_SAMPLES, MAX_SHIFT, bounded, check_fields
from distill_core.common.seeding import derive_seed, torch_generator
from distill_core.kd import evaluate


@dataclass(frozen=True)
class TrainRecipe:
    """A supervised training recipe: SGD with Nesterov momentum under a one-cycle schedule.

    :param epochs: passes over the training set.
    :param batch_size: minibatch size.
    :param lr: peak learning rate.
    :param momentum: SGD momentum.
    :param weight_decay: L2 weight decay.
    :param label_smoothing: cross-entropy label smoothing.
    :param max_shift: per-sample random shift in pixels (0 = off).
    :param hflip: random horizontal flips (not for digits!).
    """

    epochs: int = bounded(6, 1)
    batch_size: int = bounded(128, 1, MAX_SAMPLES)
    lr: float = bounded(0.05, above=0.0)
    momentum: float = bounded(0.9, 0.0, below=1.0)
    weight_decay: float = bounded(5e-4, 0.0)
    label_smoothing: float = bounded(0.0, 0.0, 1.0)
    max_shift: int = bounded(0, 0, MAX_SHIFT)
    hflip: bool = False

    def __post_init__(self) -> None:
        check_fields(self)

    def as_dict(self) -> dict:
        return asdict(self)


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainRecipe,
    *,
    seed: int = 0,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place on ``(x, y)``; return one record per epoch (loss, val accuracy if given).

    :param model: any classifier; trained on the device its parameters are on.
    :param x: inputs ``(N, *shape)``.
    :param y: integer labels ``(N,)``.
    :param recipe: the :class:`TrainRecipe`.
    :param seed: drives data order and augmentation (the model's initialisation is the caller's).
    :param x_val: optional validation inputs, evaluated after each epoch.
    :param y_val: their labels.
    :param progress: show a progress bar over the steps.
    """
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    order_gen = torch_generator(derive_seed(seed, "train-order"))
    aug_gen = torch_generator(derive_seed(seed, "train-augment"), device)
    steps_per_epoch = sum(1 for _ in minibatches(torch.arange(len(x)), recipe.batch_size))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=True
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch, pct_start=0.25
    )
    records: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(total=recipe.epochs * steps_per_epoch, desc="train", disable=not progress, leave=False)
    for epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(x), generator=order_gen).to(device)
        total = 0.0
        for idx in minibatches(order, recipe.batch_size):
            xb = augment_batch(x[idx], aug_gen, max_shift=recipe.max_shift, hflip=recipe.hflip)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            bar.update()
        record = {"epoch": epoch + 1, "loss": total / len(x), "seconds": time.perf_counter() - start}
        if x_val is not None and y_val is not None and len(x_val):
            record["val_accuracy"] = evaluate(model, x_val.to(device), y_val)["accuracy"]
            bar.set_postfix(val_acc=f"{record['val_accuracy']:.4f}")
        records.append(record)
    bar.close()
    return records
