"""What every zoo model shares: ``features`` → flatten → ``classifier``, and ``embed``.

Inversion hooks BatchNorm layers anywhere in ``features``; distribution matching needs ``embed``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ZooModel(nn.Module):
    """``forward(x) = classifier(flatten(features(x)))``; ``embed(x) = flatten(features(x))``.

    :param features: maps an input batch to a feature tensor.
    :param input_shape: one sample's shape; a dry run with zeros sizes the classifier.
    :param num_classes: outputs of the classifier.
    """

    def __init__(self, features: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.input_shape = tuple(input_shape)
        with torch.no_grad():
            was_training = features.training
            features.eval()
            try:
                dim = math.prod(features(torch.zeros(1, *input_shape)).shape[1:])
            except RuntimeError as err:
                raise ValueError(f"{type(self).__name__} cannot take inputs of shape {tuple(input_shape)}: {err}") from err
            features.train(was_training)
        self.feature_dim = dim
        self.classifier = nn.Linear(dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened features ``(N, D)``."""
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
