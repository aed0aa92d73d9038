"""Frames for an env's ``render()``: samples as one uint8 picture (no files, no matplotlib)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.utils import make_grid


#: height in pixels of a 1-D signal's strip in a frame
STRIP_HEIGHT = 4


def sample_frame(images: torch.Tensor, labels: torch.Tensor, max_samples: int = 64) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 grid of up to ``max_samples`` images in ``[0, 1]``, sorted by label; 1-D
    signals ``(N, 1, L)`` become strips four pixels high (one-pixel rows would make a frame of a few
    samples too thin to see)."""
    order = torch.argsort(labels.detach().cpu(), stable=True)[:max_samples]
    chosen = images.detach().cpu()[order].clamp(0, 1)
    if chosen.dim() != 4:
        chosen = chosen.reshape(len(chosen), 1, 1, -1).repeat_interleave(STRIP_HEIGHT, dim=2)
    grid = make_grid(chosen, nrow=int(math.ceil(math.sqrt(max(len(chosen), 1)))), padding=1, pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
