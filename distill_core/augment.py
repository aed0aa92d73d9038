"""Batch augmentations on tensors, per-sample random, driven by an explicit generator.

torchvision's v2 transforms draw one set of parameters per call (a whole batch shifts alike);
distillation and teacher training want each sample shifted on its own, on whatever device the batch
lives, so these few lines are vectorised here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in ``[-max_shift, max_shift]`` per axis.

    The border is padded by replication: it works in normalised space without knowing the data set's
    background value, and the borders of the images here are background.

    :param x: images ``(N, C, H, W)``.
    :param max_shift: largest offset in pixels; 0 returns ``x``.
    :param generator: the source of randomness (on ``x``'s device).
    """
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + offsets[0][:, None])  # (N, H)
    cols = (torch.arange(w, device=x.device)[None, :] + offsets[1][:, None])  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # advanced indexing over (N, H, W), channels kept by moving them last
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip each image left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_resized_crop(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.25, 1.0)) -> torch.Tensor:
    """Per image, a random square crop covering a ``scale`` share of its area, resized back to full size
    (bilinear) — the "local view" of contrastive learning. Non-image inputs are returned unchanged.

    :param x: images ``(N, C, H, W)``.
    :param scale: the crop's share of the image's area, drawn uniformly in this range.
    """
    if x.dim() != 4:
        return x
    n = x.shape[0]
    low, high = scale
    side = torch.sqrt(low + (high - low) * torch.rand(n, generator=generator, device=x.device))  # crop side / image side
    centre = (1 - side)[:, None] * (2 * torch.rand(n, 2, generator=generator, device=x.device) - 1)  # inside the image
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, max_shift: int = 0, hflip: bool = False) -> torch.Tensor:
    """The standard light augmentation: per-sample shift then optional horizontal flip. 1-D inputs
    ``(N, C, L)`` and flat inputs are returned unchanged (shifting a signal or a vector is not a
    label-preserving transform we can assume)."""
    if x.dim() != 4:
        return x
    x = random_shift(x, max_shift, generator)
    return random_hflip(x, generator) if hflip else x


MIX_MODES = ("none", "mixup", "cutmix")


def mix_batch(x: torch.Tensor, generator: torch.Generator, *, mode: str = "mixup", prob: float = 1.0) -> torch.Tensor:
    """Blend each image with a random partner from the same batch, with probability ``prob`` per image.

    Meant for distillation, where the teacher labels whatever the student sees: mixing needs no label
    bookkeeping and fills the space between the stored samples, which a small buffer covers thinly.

    :param x: images ``(N, C, H, W)``; other shapes get ``mixup`` only (``cutmix`` needs a grid).
    :param mode: ``mixup`` (``λ·x_i + (1 − λ)·x_j``, ``λ ~ U(0, 1)``), ``cutmix`` (a box covering a
        ``1 − λ`` share of ``x_i`` is pasted from ``x_j``) or ``none``.
    :param prob: share of the images that are mixed.
    """
    if mode not in MIX_MODES:
        raise ValueError(f"unknown mix mode {mode!r}: use one of {MIX_MODES}")
    if mode == "none" or prob <= 0 or len(x) < 2:
        return x
    n = len(x)
    partner = x[torch.randperm(n, generator=generator, device=x.device)]
    lam = torch.rand(n, generator=generator, device=x.device)
    chosen = torch.rand(n, generator=generator, device=x.device) < prob
    shape = (n,) + (1,) * (x.dim() - 1)
    if mode == "mixup" or x.dim() != 4:
        keep = torch.where(chosen, lam, torch.ones_like(lam)).view(shape)
        return keep * x + (1 - keep) * partner
    h, w = x.shape[-2:]
    # a box of side sqrt(1 − λ) of the image's, centred uniformly and clipped at the border
    side = torch.sqrt(1 - lam)
    cy = torch.rand(n, generator=generator, device=x.device) * h
    cx = torch.rand(n, generator=generator, device=x.device) * w
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_rows = (rows >= (cy - side * h / 2)[:, None]) & (rows < (cy + side * h / 2)[:, None])  # (N, H)
    in_cols = (cols >= (cx - side * w / 2)[:, None]) & (cols < (cx + side * w / 2)[:, None])  # (N, W)
    box = (in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None])[:, None]  # (N, 1, H, W)
    return torch.where(box, partner, x)
