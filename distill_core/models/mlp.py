"""MLP with BatchNorm: the teacher (and, at half width, the student) for 8×8 digits and MNIST-1D; a deeper
teacher for the large MNIST-1D set."""

from __future__ import annotations

import math

from torch import nn

from distill_core.models.base import ZooModel


class MLP(ZooModel):
    """Flatten → ``depth`` × [Linear → BatchNorm1d → ReLU] → Linear.

    :param input_shape: one sample's shape (flattened internally).
    :param num_classes: number of classes.
    :param width: hidden units per layer.
    :param depth: number of hidden layers.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 256, depth: int = 2) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            fan_in = width
        super().__init__(nn.Sequential(*layers), input_shape, num_classes)


def mlp_bn_half(input_shape: tuple[int, ...], num_classes: int, width: int = 128, depth: int = 2) -> MLP:
    """The student: :class:`MLP` with ``width`` 128 by default."""
    return MLP(input_shape, num_classes, width=width, depth=depth)


def mlp_bn_deep(input_shape: tuple[int, ...], num_classes: int, width: int = 256, depth: int = 3) -> MLP:
    """The large MNIST-1D teacher: :class:`MLP` with three hidden layers. Linear and BatchNorm only, so it
    stacks across lockstep runs, where a 1-D CNN would not."""
    return MLP(input_shape, num_classes, width=width, depth=depth)
