"""What makes synthetic samples unlike the data: first-BatchNorm statistics, pixel histograms and the
teacher's per-class confidence, synthetic against real.

The inversion prior asks every BatchNorm layer's batch statistics to match the teacher's running ones;
the first layer's are the low-level ones (intensity, edges). :func:`synthesis_diagnostics` measures,
for a synthetic set and a real batch of the same size, how far each is from those running statistics
at the first BN layer, how their pixel values are distributed, and how sure the teacher is of each class
— the measurements to read before tuning a synthesis recipe. Runs once, after a run (untimed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distill_core.inversion import first_batchnorm

#: pixel-histogram bins over the denormalised range [0, 1]
HISTOGRAM_BINS = 20


@torch.no_grad()
def first_bn_statistics(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """How far ``x``'s batch statistics at ``model``'s first BatchNorm input are from its running ones.

    :returns: ``mean_gap`` and ``var_gap`` (L2 norms over channels, the prior's two terms),
        ``mean_of_means`` / ``mean_of_vars`` of the batch and ``running_mean_of_means`` /
        ``running_mean_of_vars`` of the layer (channel averages, to see which way the gap goes).
    """
    layer = first_batchnorm(model)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach()))
    try:
        model(x)
    finally:
        handle.remove()
    h = seen[0]
    dims = [d for d in range(h.dim()) if d != 1]
    mean, var = h.mean(dim=dims), h.var(dim=dims, unbiased=False)
    return {
        "mean_gap": float(torch.norm(mean - layer.running_mean)),
        "var_gap": float(torch.norm(var - layer.running_var)),
        "mean_of_means": float(mean.mean()),
        "mean_of_vars": float(var.mean()),
        "running_mean_of_means": float(layer.running_mean.mean()),
        "running_mean_of_vars": float(layer.running_var.mean()),
    }


def pixel_histogram(x01: torch.Tensor, bins: int = HISTOGRAM_BINS) -> list[float]:
    """Share of pixel values in each of ``bins`` equal bins of [0, 1] (values clipped into it)."""
    counts = torch.histc(x01.detach().float().clamp(0, 1).flatten(), bins=bins, min=0.0, max=1.0)
    return (counts / counts.sum().clamp_min(1)).tolist()


@torch.no_grad()
def class_confidence(model: nn.Module, x: torch.Tensor, num_classes: int) -> list[float | None]:
    """The teacher's mean top-class probability over the samples it assigns to each class (``None`` for a
    class it assigns none)."""
    probs = torch.softmax(model(x), dim=1)
    top, cls = probs.max(dim=1)
    return [float(top[cls == c].mean()) if bool((cls == c).any()) else None for c in range(num_classes)]


def synthesis_diagnostics(teacher: nn.Module, synthetic: torch.Tensor, real: torch.Tensor, *, denormalize: Any,
                          num_classes: int) -> dict[str, Any]:
    """First-BN statistics, pixel histograms and per-class confidence of ``synthetic`` and ``real``
    (normalised inputs, as the teacher sees them; ``denormalize`` maps them back to [0, 1] pixels).

    :raises ValueError: the two sets have other sample shapes.
    """
    if synthetic.shape[1:] != real.shape[1:]:
        raise ValueError(f"synthetic samples {tuple(synthetic.shape[1:])} and real ones {tuple(real.shape[1:])} "
                         "differ in shape: diagnose samples of the same data set")
    was_training = teacher.training
    teacher.eval()
    try:
        out: dict[str, Any] = {"samples": {"synthetic": len(synthetic), "real": len(real)}, "bins": HISTOGRAM_BINS}
        for name, x in (("synthetic", synthetic), ("real", real)):
            pixels = denormalize(x.cpu())
            out[name] = {
                "first_bn": first_bn_statistics(teacher, x),
                "pixel_histogram": pixel_histogram(pixels),
                "pixel_mean": float(pixels.mean()),
                "dark_share": float((pixels < 0.1).float().mean()),
                "class_confidence": class_confidence(teacher, x, num_classes),
            }
        return out
    finally:
        teacher.train(was_training)


def plot_diagnostics(diagnostics: dict[str, Any], path: str | os.PathLike, *, class_names: list[str] | None = None,
                     title: str = "") -> Path:
    """Pixel histograms and per-class teacher confidence, synthetic beside real, with the first-BN gaps in
    the legend."""
    from distill_core.common.plots import save_figure, plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    edges = np.linspace(0, 1, diagnostics["bins"] + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1 / diagnostics["bins"]
    for offset, name in ((-0.2, "synthetic"), (0.2, "real")):
        part = diagnostics[name]
        bn = part["first_bn"]
        left.bar(centres + offset * width, part["pixel_histogram"], width=0.4 * width,
                 label=f"{name}: first-BN gap mean {bn['mean_gap']:.2f}, var {bn['var_gap']:.2f}")
        conf = [np.nan if c is None else c for c in part["class_confidence"]]
        right.bar(np.arange(len(conf)) + offset, conf, width=0.4, label=name)
    left.set_yscale("log")
    left.set(xlabel="pixel value (0 = black)", ylabel="share of pixels", title="pixel histogram")
    left.legend(fontsize=8)
    names = class_names or [str(c) for c in range(len(diagnostics["real"]["class_confidence"]))]
    right.set_xticks(np.arange(len(names)), names, rotation=45, ha="right", fontsize=8)
    right.set(ylabel="teacher's mean top probability", ylim=(0, 1.05), title="teacher confidence by predicted class")
    right.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
