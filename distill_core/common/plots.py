"""PNG figures: learning curves, bar charts with error bars, grids of samples per class.

matplotlib is used headless (Agg); every function writes a file and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from distill_core.common.files import atomic_write  # noqa: E402


def save_figure(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Lay out, write ``fig`` as a PNG at ``path`` (folders made; atomically) and close it."""
    fig.tight_layout()
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    finally:
        plt.close(fig)


def line_plot(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
) -> Path:
    """One line per label: ``curves[label] = (xs, ys)`` (learning curves, accuracy against time)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def bar_plot(
    values: Mapping[str, float],
    path: str | os.PathLike,
    *,
    errors: Mapping[str, float] | None = None,
    ylabel: str,
    title: str = "",
) -> Path:
    """A bar per label, with optional symmetric error bars (e.g. 95 % confidence intervals)."""
    labels = list(values)
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(labels) + 2), 4))
    heights = [values[k] for k in labels]
    spread = [errors[k] if errors else 0.0 for k in labels]
    bars = ax.bar(labels, heights, yerr=spread if errors else None, capsize=4, color="tab:blue")
    # zoom on the bars' range: differences of a point would be invisible on an axis from 0
    lo = min(h - e for h, e in zip(heights, spread))
    hi = max(h + e for h, e in zip(heights, spread))
    pad = max(0.5, 0.3 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    ax.bar_label(bars, labels=[f"{h:.2f}" for h in heights], padding=2, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    return save_figure(fig, path)


def sample_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str],
    per_class: int = 10,
    title: str = "",
) -> Path:
    """A grid with one row per class (up to ``per_class`` images each), images in ``[0, 1]``.

    1-D signals ``(N, 1, L)`` are drawn as line plots instead.
    """
    images, labels = images.detach().cpu(), labels.detach().cpu()
    if images.dim() == 3:
        return _signal_grid(images, labels, path, class_names=class_names, per_class=per_class, title=title)
    rows = []
    blank = torch.ones_like(images[:1]) if len(images) else torch.ones(1, 1, 8, 8)
    for c in range(len(class_names)):
        chosen = images[labels == c][:per_class]
        rows.append(torch.cat([chosen, blank.expand(per_class - len(chosen), *blank.shape[1:])]))
    grid = make_grid(torch.cat(rows).clamp(0, 1), nrow=per_class, padding=1, pad_value=1.0)
    fig, ax = plt.subplots(figsize=(per_class * 0.6 + 1.5, len(class_names) * 0.6 + 0.6))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    height = grid.shape[1] / len(class_names)
    ax.set_yticks([height * (c + 0.5) for c in range(len(class_names))], list(class_names), fontsize=7)
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _signal_grid(signals, labels, path, *, class_names, per_class, title) -> Path:
    fig, axes = plt.subplots(len(class_names), 1, figsize=(6, len(class_names) * 0.7 + 0.6), sharex=True)
    for c, ax in enumerate(axes):
        for s in signals[labels == c][:per_class]:
            ax.plot(s[0].numpy(), lw=0.7, alpha=0.7)
        ax.set_ylabel(class_names[c], fontsize=7, rotation=0, ha="right")
        ax.set_yticks([])
    axes[0].set_title(title, fontsize=9)
    return save_figure(fig, path)
