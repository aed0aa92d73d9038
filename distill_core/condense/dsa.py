"""Differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021) for image batches ``(N, C, H, W)``.

Every transform is differentiable with respect to the images (``affine_grid``/``grid_sample`` for
scale, rotation and the crop's translation; a multiplicative mask for cutout; affine pixel maps for
colour), so a loss on augmented synthetic images back-propagates to their pixels. "Siamese" means the
*same* parameters transform the real and the synthetic batch whose gradients (DC) or embeddings (DM)
are matched: draw the parameters once and apply them to both,

    params = DSAParams.sample(DSA_STRATEGY, 1, generator)      # one shared parameter set
    real, syn = dsa_augment(real, params), dsa_augment(syn, params)

or, equivalently, ``dsa_seeded(real, seed=s)`` and ``dsa_seeded(syn, seed=s)`` with one seed ``s``.

As in the DSA code's default (``aug_mode='S'``), each call applies *one* group of the strategy (chosen
at random): ``color`` (brightness, then saturation, then contrast), ``crop``, ``cutout``, ``flip``,
``scale`` or ``rotate``, with DSA's magnitudes. During condensation DSA uses "batch mode": one parameter
set shared by the whole batch (``DSAParams.sample(..., 1, ...)``, what :func:`dsa_seeded` does); when a
network is trained on a synthetic set (evaluation, DC's inner loop) every image gets its own parameters
(``DSAParams.sample(..., len(x), ...)``, what :func:`dsa_random` does).

All randomness comes from an explicit ``torch.Generator``; parameters are drawn on the generator's
device and moved to the images', so a seed gives the same transform on any device. Inputs that are
not 4-D (1-D signals ``(N, C, L)``, flat vectors) are returned unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from distill_core.common.seeding import torch_generator

#: DSA's strategy for images: the groups one call chooses from, ``_``-separated.
DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
#: Every group a strategy may name.
DSA_GROUPS = ("color", "crop", "cutout", "flip", "scale", "rotate")

# DSA's magnitudes (ParamDiffAug in the DSA code)
PROB_FLIP = 0.5
RATIO_SCALE = 1.2
RATIO_ROTATE = 15.0  # degrees
RATIO_CROP_PAD = 0.125  # largest shift, as a fraction of the side
RATIO_CUTOUT = 0.5  # the erased square's side, as a fraction of the image's
BRIGHTNESS = 1.0
SATURATION = 2.0
CONTRAST = 0.5


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """The groups of a strategy string (``"none"`` or ``""`` = no augmentation), checked."""
    if strategy.lower() in ("", "none"):
        return ()
    groups = tuple(strategy.split("_"))
    unknown = [g for g in groups if g not in DSA_GROUPS]
    if unknown:
        raise ValueError(f"unknown DSA group(s) {', '.join(map(repr, unknown))} in strategy {strategy!r}: "
                         f"use '_'-separated names from {', '.join(DSA_GROUPS)}")
    return groups


@dataclass(frozen=True)
class DSAParams:
    """The drawn parameters of one DSA call: the group and its values, one row per image, or a single
    row shared by every image of any batch it is applied to (siamese use).

    :param group: the chosen group (one of :data:`DSA_GROUPS`), or ``"none"``.
    :param values: ``(n, k)`` float tensor of the group's raw draws (uniform in [0, 1); mapped onto
        each transform's range when applied); ``n`` is 1 (shared) or the batch size.
    """

    group: str
    values: torch.Tensor

    @property
    def shared(self) -> bool:
        return self.values.shape[0] == 1

    @classmethod
    def sample(cls, strategy: str, batch_size: int, generator: torch.Generator,
               device: str | torch.device | None = None) -> DSAParams:
        """Draw one call's parameters.

        :param strategy: ``_``-separated groups (e.g. :data:`DSA_STRATEGY`).
        :param batch_size: 1 for one parameter set shared across any batch (DSA's batch mode, used
            during condensation), or the batch size for one set per image (network training).
        :param generator: the source of randomness; draws happen on its device.
        :param device: where the values are kept (default: the generator's device).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        groups = parse_strategy(strategy)
        gen_device = generator.device
        if not groups:
            return cls("none", torch.zeros(batch_size, 0, device=device or gen_device))
        group = groups[int(torch.randint(len(groups), (1,), generator=generator, device=gen_device))]
        # three uniforms cover every group (colour: brightness, saturation, contrast; crop/cutout/scale:
        # two axes; rotate/flip: one); the unused ones are drawn anyway so streams stay aligned
        values = torch.rand(batch_size, 3, generator=generator, device=gen_device)
        return cls(group, values.to(device or gen_device))


def dsa_augment(x: torch.Tensor, params: DSAParams) -> torch.Tensor:
    """Apply drawn DSA parameters to a batch (differentiably). Non-4-D inputs are returned unchanged."""
    if x.dim() != 4 or params.group == "none":
        return x
    n = x.shape[0]
    if not params.shared and params.values.shape[0] != n:
        raise ValueError(f"DSA parameters drawn for {params.values.shape[0]} images cannot transform a batch of {n}; "
                         "draw one shared set (batch_size=1) or one per image")
    v = params.values.to(device=x.device, dtype=x.dtype).expand(n, -1)
    return _APPLY[params.group](x, v)


def dsa_seeded(x: torch.Tensor, strategy: str = DSA_STRATEGY, *, seed: int) -> torch.Tensor:
    """Siamese DSA: one parameter set drawn from ``seed`` (on the CPU) and shared by the whole batch;
    two calls with the same seed transform their batches identically."""
    return dsa_augment(x, DSAParams.sample(strategy, 1, torch_generator(seed)))


def dsa_random(x: torch.Tensor, strategy: str, generator: torch.Generator) -> torch.Tensor:
    """DSA for training a network: one group per call, parameters drawn per image from ``generator``."""
    if x.dim() != 4:
        return x
    return dsa_augment(x, DSAParams.sample(strategy, x.shape[0], generator))


# ---------------------------------------------------------------------- the transforms
def _color(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    x = x + (v[:, 0, None, None, None] - 0.5) * BRIGHTNESS
    if x.shape[1] == 3:  # one channel: saturation is the identity
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (v[:, 1, None, None, None] * SATURATION) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (v[:, 2, None, None, None] + CONTRAST) + mean


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _scale(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    s = v[:, :2] * (RATIO_SCALE - 1.0 / RATIO_SCALE) + 1.0 / RATIO_SCALE  # (sx, sy) in [1/1.2, 1.2)
    zero = torch.zeros_like(s[:, 0])
    theta = torch.stack([torch.stack([s[:, 0], zero, zero], 1), torch.stack([zero, s[:, 1], zero], 1)], 1)
    return _affine(x, theta)


def _rotate(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    angle = (v[:, 0] - 0.5) * 2.0 * RATIO_ROTATE / 180.0 * math.pi
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine(x, theta)


def _crop(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """DSA's pad-and-crop: an integer shift of up to 1/8 of each side, zero fill (a translation by
    whole pixels, so the bilinear sampling copies pixels)."""
    h, w = x.shape[2], x.shape[3]
    max_h, max_w = int(h * RATIO_CROP_PAD + 0.5), int(w * RATIO_CROP_PAD + 0.5)
    dy = torch.floor(v[:, 0] * (2 * max_h + 1)) - max_h  # uniform integer in [-max_h, max_h]
    dx = torch.floor(v[:, 1] * (2 * max_w + 1)) - max_w
    one, zero = torch.ones_like(dx), torch.zeros_like(dx)
    tx = dx * 2.0 / max(w - 1, 1)  # pixels → normalised coordinates (align_corners=True)
    ty = dy * 2.0 / max(h - 1, 1)
    theta = torch.stack([torch.stack([one, zero, tx], 1), torch.stack([zero, one, ty], 1)], 1)
    return _affine(x, theta)


def _cutout(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Zero a square of half the side (clipped at the border), centred at a uniform pixel."""
    h, w = x.shape[2], x.shape[3]
    size_h, size_w = int(h * RATIO_CUTOUT + 0.5), int(w * RATIO_CUTOUT + 0.5)
    cy = torch.floor(v[:, 0] * (h + (1 - size_h % 2)))  # DSA's offset range
    cx = torch.floor(v[:, 1] * (w + (1 - size_w % 2)))
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :] - (cy[:, None] - size_h // 2)  # (N, H)
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, :] - (cx[:, None] - size_w // 2)  # (N, W)
    in_rows = (rows >= 0) & (rows < size_h)
    in_cols = (cols >= 0) & (cols < size_w)
    mask = ~(in_rows[:, :, None] & in_cols[:, None, :])  # (N, H, W)
    return x * mask[:, None].to(x.dtype)


def _flip(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.where(v[:, 0, None, None, None] < PROB_FLIP, x.flip(3), x)


_APPLY = {"color": _color, "crop": _crop, "cutout": _cutout, "flip": _flip, "scale": _scale, "rotate": _rotate}
