"""Coreset baselines for condensation: a random real subset and herding, per class."""

from __future__ import annotations

from collections.abc import Callable

import torch

from distill_core.common.seeding import torch_generator
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.data import DatasetSplits


def random_subset(data: DatasetSplits, images_per_class: int, seed: int = 0) -> SyntheticSet:
    """``images_per_class`` real training images of every class, drawn with ``seed``."""
    _check_ipc(data, images_per_class)
    gen = torch_generator(seed)
    chosen = []
    for c in range(data.num_classes):
        members = torch.nonzero(data.y_train == c).squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=gen)[:images_per_class]])
    idx = torch.cat(chosen)
    return SyntheticSet(data.x_train[idx].clone(), data.y_train[idx].clone(), data.name, "random", meta={"seed": seed})


@torch.no_grad()
def herding(data: DatasetSplits, images_per_class: int, embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
            device: str | torch.device = "cpu") -> SyntheticSet:
    """Herding (Welling 2009) per class: greedily pick the images whose running mean embedding stays
    closest to the class mean. ``embed`` maps inputs to features (e.g. a trained teacher's ``embed``);
    without it, raw pixels are used. Deterministic: no randomness involved."""
    _check_ipc(data, images_per_class)
    chosen = []
    for c in range(data.num_classes):
        members = torch.nonzero(data.y_train == c).squeeze(1)
        x = data.x_train[members]
        if embed is not None:
            feats = torch.cat([embed(x[i : i + 1024].to(device)).cpu() for i in range(0, len(x), 1024)])
        else:
            feats = x.flatten(1)
        target = feats.mean(0)
        total = torch.zeros_like(target)
        available = torch.ones(len(members), dtype=torch.bool)
        for k in range(1, images_per_class + 1):
            # distance of the running mean, if each candidate were added, to the class mean
            dist = ((total + feats) / k - target).norm(dim=1)
            dist[~available] = float("inf")
            best = int(torch.argmin(dist))
            available[best] = False
            total += feats[best]
            chosen.append(members[best])
    idx = torch.stack(chosen)
    return SyntheticSet(data.x_train[idx].clone(), data.y_train[idx].clone(), data.name, "herding",
                        meta={"features": "embed" if embed is not None else "pixels"})


def _check_ipc(data: DatasetSplits, images_per_class: int) -> None:
    smallest = int(torch.bincount(data.y_train, minlength=data.num_classes).min())
    if not 1 <= images_per_class <= smallest:
        raise ValueError(f"images_per_class must be in [1, {smallest}] for {data.name}, got {images_per_class}")
