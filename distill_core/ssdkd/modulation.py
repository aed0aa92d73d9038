"""SSD-KD's modulating function ``φ_i = φ_div(ĉ_i) · φ_diff(x_i)`` and its diversity-aware targets.

* ``φ_diff = (1 − p_T(y_i | x_i))^γ`` — difficulty-aware, focal-like: samples the teacher is already
  sure of count less (γ = 0 switches it off).
* ``φ_div = (1 / (C · h_c))^s`` — diversity-aware: ``h_c`` is the (Laplace-smoothed) share of the
  buffer in the sample's predicted class ``c``; over-represented classes count less (s = 0: off).

Both are detached weights, renormalised to mean 1 over the batch so they reshape the loss without
rescaling it (the learning rate keeps its meaning whatever the knobs are).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def smoothed_histogram(counts: np.ndarray) -> np.ndarray:
    """Class shares with add-one smoothing (an empty buffer is uniform, never zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + 1.0) / (counts.sum() + len(counts))


def diversity_weights(class_share: np.ndarray, strength: float) -> np.ndarray:
    """``(1 / (C · h_c))^strength`` per class: > 1 for classes the buffer lacks, < 1 for crowded ones."""
    class_share = np.asarray(class_share, dtype=np.float64)
    return (1.0 / (len(class_share) * class_share)) ** strength


def target_distribution(class_share: np.ndarray, strength: float, class_weights: np.ndarray | None = None) -> np.ndarray:
    """Probabilities of drawing each class as an inversion target: favour classes the buffer lacks.

    :param class_share: smoothed class shares of the buffer (see :func:`smoothed_histogram`).
    :param strength: diversity strength ``s`` (0 = uniform targets).
    :param class_weights: optional per-class multipliers (an agent's per-class modulation).
    """
    q = diversity_weights(class_share, strength)
    if class_weights is not None:
        q = q * np.asarray(class_weights, dtype=np.float64)
    if not np.isfinite(q).all() or q.sum() <= 0:
        raise ValueError(f"target distribution is not a distribution: {q}")
    return q / q.sum()


def modulation_weights(
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    class_share: np.ndarray,
    *,
    gamma: float,
    diversity_strength: float,
    use_difficulty: bool = True,
    use_diversity: bool = True,
) -> torch.Tensor:
    """``φ_i`` for a batch, detached and normalised to mean 1.

    :param teacher_logits: ``(N, C)`` teacher logits on the synthetic batch.
    :param targets: ``(N,)`` the classes the samples were inverted for.
    :param class_share: ``(C,)`` smoothed buffer class shares.
    :param gamma: difficulty focus ``γ ≥ 0``.
    :param diversity_strength: ``s ≥ 0``.
    :param use_difficulty: switch ``φ_diff`` off for ablations.
    :param use_diversity: switch ``φ_div`` off for ablations.
    """
    with torch.no_grad():
        phi = torch.ones(len(targets), device=teacher_logits.device)
        if use_difficulty and gamma > 0:
            p_target = F.softmax(teacher_logits, dim=1).gather(1, targets[:, None]).squeeze(1)
            phi = phi * (1.0 - p_target).clamp_min(1e-6) ** gamma
        if use_diversity and diversity_strength > 0:
            per_class = torch.as_tensor(diversity_weights(class_share, diversity_strength), dtype=phi.dtype, device=phi.device)
            phi = phi * per_class[teacher_logits.argmax(1)]
        return phi / phi.mean().clamp_min(1e-12)
