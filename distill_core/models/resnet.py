"""A small CIFAR-style ResNet (ResNet-8 by default; ResNet-20 with ``blocks_per_stage=3``)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from distill_core.models.base import ZooModel


class BasicBlock(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(fan_in, fan_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(fan_out)
        self.conv2 = nn.Conv2d(fan_out, fan_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(fan_out)
        self.shortcut = nn.Identity()
        if stride != 1 or fan_in != fan_out:
            self.shortcut = nn.Sequential(nn.Conv2d(fan_in, fan_out, 1, stride, bias=False), nn.BatchNorm2d(fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetSmall(ZooModel):
    """stem Conv3×3(16) → BN → ReLU → three stages of BasicBlocks (16, 32, 64; strides 1, 2, 2) → global
    average pool → Linear.

    :param input_shape: ``(C, H, W)``.
    :param num_classes: number of classes.
    :param blocks_per_stage: BasicBlocks per stage.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, blocks_per_stage: int = 1) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"ResNetSmall needs image inputs (C, H, W), got {tuple(input_shape)}")
        layers: list[nn.Module] = [nn.Conv2d(input_shape[0], 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
        fan_in = 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks_per_stage):
                layers.append(BasicBlock(fan_in, width, stride if i == 0 else 1))
                fan_in = width
        layers.append(nn.AdaptiveAvgPool2d(1))
        super().__init__(nn.Sequential(*layers), input_shape, num_classes)
