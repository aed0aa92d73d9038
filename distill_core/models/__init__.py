"""The model zoo, by name. Every model is a :class:`ZooModel` (``features`` / ``classifier`` /
``embed``); teachers carry BatchNorm because data-free inversion reads its running statistics.

    model = build_model("convnet_bn", input_shape=(1, 28, 28), num_classes=10)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from distill_core.models.base import ZooModel
from distill_core.models.convnet import ConvNet, convnet3_in, convnet_bn, convnet_bn_half, convnet_bn_quarter
from distill_core.models.lenet import LeNet5, lenet5_half
from distill_core.models.mlp import MLP, mlp_bn_half, mlp_bn_deep
from distill_core.models.resnet import ResNetSmall

MODELS: dict[str, Callable[..., ZooModel]] = {
    "mlp_bn": MLP,
    "mlp_bn_half": mlp_bn_half,
    "mlp_bn_deep": mlp_bn_deep,
    "convnet_bn": convnet_bn,
    "convnet_bn_half": convnet_bn_half,
    "convnet_bn_quarter": convnet_bn_quarter,
    "lenet5_bn": LeNet5,
    "lenet5_half": lenet5_half,
    "resnet_small": ResNetSmall,
    "convnet3_in": convnet3_in,
}
"""Registry: name → factory ``(input_shape, num_classes, **options) -> ZooModel``."""

MODEL_NAMES: tuple[str, ...] = tuple(sorted(MODELS))
"""The registered names, sorted."""


def model_options(name: str) -> dict[str, object]:
    """The architecture options ``name`` accepts, with their defaults.

    :param name: one of :func:`list_models`.
    :return: option name → default value, e.g. ``{"width": 256, "depth": 2}`` for ``mlp_bn``.
    :raises ValueError: unknown name.
    """
    _check_name(name)
    params = list(inspect.signature(MODELS[name]).parameters.values())[2:]  # after input_shape, num_classes
    return {p.name: p.default for p in params}


def _check_name(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(list_models())}")


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted.

    :return: the registered model names.
    """
    return sorted(MODELS)


def build_model(name: str, *, input_shape: tuple[int, ...], num_classes: int, **kwargs: object) -> nn.Module:
    """Build the zoo model ``name`` for inputs of ``input_shape`` and ``num_classes`` outputs.

    Initial weights come from torch's global generator: wrap the call in
    :func:`distill_core.common.seeding.seeded` to make them a function of a seed.

    :param name: one of :func:`list_models`.
    :param input_shape: one sample's shape, e.g. ``(1, 28, 28)``.
    :param num_classes: number of classes.
    :param kwargs: architecture options (``width``, ``depth``, ``dropout``, ``blocks_per_stage``, ``norm``);
        :func:`model_options` lists the ones ``name`` takes, with their defaults.
    :return: a :class:`ZooModel` in train mode.
    :raises ValueError: unknown name, an option ``name`` does not take, ``num_classes < 1``, or an input shape
        the architecture cannot take (the message says what shape it needs).
    """
    options = model_options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        accepted = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"
        raise ValueError(f"model {name!r} takes no option(s) {', '.join(unknown)}; it accepts: {accepted}")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return MODELS[name](tuple(input_shape), int(num_classes), **kwargs)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether any BatchNorm layer (1d/2d/3d, sync, lazy) is in ``model``; a teacher for inversion needs one.

    :param model: any module.
    :return: ``True`` if some submodule is a BatchNorm layer.
    """
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


__all__ = ["MODELS", "MODEL_NAMES", "ConvNet", "LeNet5", "MLP", "ResNetSmall", "ZooModel", "build_model", "has_batchnorm",
           "list_models", "model_options"]
