"""LeNet-5 with BatchNorm and its half-width version: the classic data-free KD pair (DAFL, DFAD)."""

from __future__ import annotations

import torch
from torch import nn

from distill_core.models.base import ZooModel


class LeNet5(ZooModel):
    """conv(c1, 5×5) → BN → ReLU → maxpool → conv(c2, 5×5) → BN → ReLU → maxpool →
    FC(f1) → BN → ReLU → FC(f2) → BN → ReLU → classifier. 28×28 inputs are padded to the classic 32×32.

    :param input_shape: ``(C, H, W)`` with ``H, W ≥ 28``.
    :param num_classes: number of classes.
    :param widths: ``(c1, c2, f1, f2)``.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, int, int, int] = (6, 16, 120, 84)) -> None:
        if len(input_shape) != 3 or min(input_shape[1:]) < 28:
            raise ValueError(f"LeNet-5 needs images of at least 28×28 (C, H, W), got {tuple(input_shape)}; use mlp_bn for 8×8 digits")
        c1, c2, f1, f2 = widths
        pad = 2 if min(input_shape[1:]) < 32 else 0
        conv = nn.Sequential(
            nn.Conv2d(input_shape[0], c1, 5, padding=pad, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = conv.eval()(torch.zeros(1, *input_shape)).shape[1]
        conv.train()
        head = nn.Sequential(nn.Linear(flat, f1, bias=False), nn.BatchNorm1d(f1), nn.ReLU(inplace=True),
                             nn.Linear(f1, f2, bias=False), nn.BatchNorm1d(f2), nn.ReLU(inplace=True))
        super().__init__(nn.Sequential(conv, head), input_shape, num_classes)


def lenet5_half(input_shape: tuple[int, ...], num_classes: int) -> LeNet5:
    """The DAFL student: every width halved (3, 8, 60, 42)."""
    return LeNet5(input_shape, num_classes, (3, 8, 60, 42))
