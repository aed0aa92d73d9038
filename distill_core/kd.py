"""Knowledge-distillation basics: the temperature-scaled KL loss, batched logits and evaluation, which
the data-free methods and the condensation judges build on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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


def class_means(values: torch.Tensor, classes: torch.Tensor, num_classes: int, empty: float = 0.0) -> np.ndarray:
    """The mean of ``values`` over the items of each class, ``(num_classes,)`` float64; ``empty`` for a class
    without items.

    :param values: one number per item.
    :param classes: one class index per item (same device).
    """
    values = values.to(torch.float64)
    counts = torch.bincount(classes, minlength=num_classes).to(torch.float64)
    sums = torch.zeros(num_classes, dtype=torch.float64, device=values.device).index_add_(0, classes, values)
    means = torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(counts, empty))
    return means.cpu().numpy()

