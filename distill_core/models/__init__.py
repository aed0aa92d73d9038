"""The model zoo, by name. Every model is a :class:`ZooModel` (``features`` / ``classifier`` /
``embed``); teachers carry BatchNorm because data-free inversion reads its running statistics.

    model = build_model("convnet_bn", input_shape=(1, 28, 28), num_classes=10)
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from distill_core.models.base import ZooModel
from distill_core.models.convnet import ConvNet, convnet3_in, convnet_bn, convnet_bn_half
from distill_core.models.lenet import LeNet5, lenet5_half
from distill_core.models.mlp import MLP
from distill_core.models.resnet import ResNetSmall

MODELS: dict[str, Callable[..., ZooModel]] = {
    "mlp_bn": MLP,
    "mlp_bn_half": lambda input_shape, num_classes, **kw: MLP(input_shape, num_classes, **{"width": 128, **kw}),
    "convnet_bn": convnet_bn,
    "convnet_bn_half": convnet_bn_half,
    "lenet5_bn": LeNet5,
    "lenet5_half": lenet5_half,
    "resnet_small": ResNetSmall,
    "convnet3_in": convnet3_in,
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODELS)


def build_model(name: str, *, input_shape: tuple[int, ...], num_classes: int, **kwargs: object) -> nn.Module:
    """Build the zoo model ``name`` for inputs of ``input_shape`` and ``num_classes`` outputs.

    Initial weights come from torch's global generator: wrap the call in
    :func:`distill_core.common.seeding.seeded` to make them a function of a seed.

    :param name: one of :func:`list_models`.
    :param input_shape: one sample's shape, e.g. ``(1, 28, 28)``.
    :param num_classes: number of classes.
    :param kwargs: architecture options (``width``, ``depth``, ``dropout``, ``blocks_per_stage``, ``norm``).
    :raises ValueError: unknown name, or an input shape the architecture cannot take.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(list_models())}")
    return MODELS[name](tuple(input_shape), num_classes, **kwargs)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether any BatchNorm layer is in ``model`` (a teacher needs one)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


__all__ = ["MODELS", "ConvNet", "LeNet5", "MLP", "ResNetSmall", "ZooModel", "build_model", "has_batchnorm", "list_models"]
