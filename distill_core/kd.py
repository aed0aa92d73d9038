"""Knowledge-distillation basics: the temperature-scaled KL loss, evaluation, and KD on given inputs.

``kd_train`` distils on a fixed set of inputs (real images for the real-data bounds, or any tensor);
the data-free methods build on ``kd_loss`` and ``evaluate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill_core.augment import augment_batch
from distill_core.common.batching import minibatches
from distill_core.common.seeding import derive_seed, torch_generator


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """``τ² · KL(p_T^τ ‖ p_S^τ)`` per sample, optionally importance-weighted.

    The ``τ²`` factor keeps gradient magnitudes comparable across temperatures (Hinton et al. 2015).

    :param student_logits: ``(N, C)``.
    :param teacher_logits: ``(N, C)``; treated as a constant target.
    :param temperature: softmax temperature ``τ > 0``.
    :param weights: optional ``(N,)`` per-sample weights (e.g. importance-sampling corrections).
    :param reduction: ``"mean"`` (weighted mean over samples), ``"sum"`` or ``"none"`` (per-sample values).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ in shape")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    per_sample = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1) * temperature**2
    if weights is not None:
        if weights.shape != per_sample.shape:
            raise ValueError(f"weights must have shape {tuple(per_sample.shape)}, got {tuple(weights.shape)}")
        per_sample = per_sample * weights
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"unknown reduction {reduction!r}: use 'mean', 'sum' or 'none'")


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Logits of ``model`` (in eval mode, restored afterwards) on ``x``, batched, on ``x``'s device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]) if len(x) else torch.empty(0)
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    teacher: nn.Module | None = None,
    *,
    teacher_logits: torch.Tensor | None = None,
    batch_size: int = 2048,
) -> dict[str, float]:
    """Accuracy (when labels are given) and, against a teacher, agreement and KL(T ‖ S) at τ = 1.

    :param model: the network to evaluate (a student).
    :param x: inputs.
    :param y: labels, or None.
    :param teacher: a teacher network, or None.
    :param teacher_logits: precomputed teacher logits on ``x`` (saves a teacher pass).
    :return: a dict with ``accuracy`` and/or ``agreement`` and ``kl``.
    """
    logits = predict_logits(model, x, batch_size)
    metrics: dict[str, float] = {}
    if y is not None:
        metrics["accuracy"] = (logits.argmax(1).cpu() == y.cpu()).float().mean().item()
    if teacher_logits is None and teacher is not None:
        teacher_logits = predict_logits(teacher, x, batch_size)
    if teacher_logits is not None:
        teacher_logits = teacher_logits.to(logits.device)
        metrics["agreement"] = (logits.argmax(1) == teacher_logits.argmax(1)).float().mean().item()
        metrics["kl"] = kd_loss(logits, teacher_logits, 1.0).item()
    return metrics


@dataclass
class KDConfig:
    """How to distil on a fixed set of inputs.

    :param epochs: passes over the inputs.
    :param batch_size: minibatch size.
    :param lr: peak learning rate (one-cycle schedule).
    :param weight_decay: AdamW weight decay.
    :param temperature: KD temperature ``τ``.
    :param max_shift: per-sample random shift in pixels (0 = off); the teacher labels the shifted image.
    :param hflip: random horizontal flips.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    temperature: float = 4.0
    max_shift: int = 0
    hflip: bool = False


@dataclass
class KDHistory:
    """What a ``kd_train`` run recorded: per-epoch loss and (if an evaluation callback was given) metrics."""

    loss: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def kd_train(
    student: nn.Module,
    teacher: nn.Module,
    inputs: torch.Tensor,
    config: KDConfig | None = None,
    *,
    seed: int = 0,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    progress: bool = True,
) -> KDHistory:
    """Distil ``teacher`` into ``student`` on ``inputs`` (no labels used).

    Teacher logits are cached when there is no augmentation and recomputed on the augmented batch
    otherwise (the teacher must label what the student sees).

    :param student: trained in place; lives on the device it is on.
    :param teacher: frozen, used in eval mode.
    :param inputs: ``(N, *shape)`` inputs, any device.
    :param config: recipe; defaults to :class:`KDConfig`.
    :param seed: drives batch order and augmentation.
    :param eval_fn: called with the student after every epoch; its dicts go to ``history.evals``.
    :param progress: show a progress bar.
    """
    config = config or KDConfig()
    device = next(student.parameters()).device
    teacher.eval()
    inputs = inputs.to(device)
    augmenting = config.max_shift > 0 or config.hflip
    cached = None if augmenting else predict_logits(teacher, inputs)
    order_gen = torch_generator(derive_seed(seed, "kd-order"))
    aug_gen = torch_generator(derive_seed(seed, "kd-augment"), device)
    steps_per_epoch = sum(1 for _ in minibatches(torch.arange(len(inputs)), config.batch_size))
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    history = KDHistory()
    start = time.perf_counter()
    for _ in tqdm(range(config.epochs), desc="KD", disable=not progress, leave=False):
        student.train()
        order = torch.randperm(len(inputs), generator=order_gen).to(device)
        total = 0.0
        for idx in minibatches(order, config.batch_size):
            if augmenting:
                x = augment_batch(inputs[idx], aug_gen, max_shift=config.max_shift, hflip=config.hflip)
                with torch.no_grad():
                    t_logits = teacher(x)
            else:
                x, t_logits = inputs[idx], cached[idx]
            loss = kd_loss(student(x), t_logits, config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
        history.loss.append(total / len(inputs))
        if eval_fn is not None:
            history.evals.append(eval_fn(student))
    history.seconds = time.perf_counter() - start
    return history
