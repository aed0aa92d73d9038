"""The synthesis diagnostics measure what they say: a batch with the layer's own running statistics has
no first-BN gap and a shifted one has, pixel histograms are shares, absent classes are None."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from distill_core.diagnostics import (class_confidence, first_bn_statistics, pixel_histogram, plot_diagnostics,
                                      synthesis_diagnostics)


def _teacher_fitted_to(x: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3, momentum=1.0), nn.Flatten(), nn.Linear(3 * 36, 4))
    model.train()
    with torch.no_grad():
        model(x)  # momentum 1: the running statistics become exactly this batch's
    return model.eval()


def test_first_bn_gap_is_zero_on_the_batch_the_statistics_came_from_and_grows_with_a_shift():
    real = torch.randn(256, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    teacher = _teacher_fitted_to(real)
    own = first_bn_statistics(teacher, real)
    shifted = first_bn_statistics(teacher, real + 2.0)
    assert own["mean_gap"] == pytest.approx(0.0, abs=1e-5) and own["var_gap"] == pytest.approx(0.0, abs=1e-4)
    assert shifted["mean_gap"] > 0.1 and shifted["mean_gap"] > 100 * own["mean_gap"]
    with pytest.raises(ValueError, match="no BatchNorm layer"):
        first_bn_statistics(nn.Sequential(nn.Flatten(), nn.Linear(36, 2)), real)


def test_histogram_confidence_and_the_report(tmp_path):
    x01 = torch.tensor([0.0, 0.05, 0.5, 1.0, 2.0, -1.0])
    shares = pixel_histogram(x01, bins=4)
    assert sum(shares) == pytest.approx(1.0) and shares == pytest.approx([3 / 6, 0, 1 / 6, 2 / 6])  # clipped into [0, 1]
    real = torch.randn(64, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    teacher = _teacher_fitted_to(real)
    confidence = class_confidence(teacher, real, 6)
    assert confidence[4] is None and confidence[5] is None  # the teacher has 4 classes
    assert all(0.25 <= c <= 1.0 for c in confidence[:4] if c is not None)
    report = synthesis_diagnostics(teacher, real[:32] * 3, real[32:], denormalize=lambda x: (x + 2) / 4, num_classes=4)
    assert report["synthetic"]["first_bn"]["var_gap"] > report["real"]["first_bn"]["var_gap"]
    assert teacher.training is False and json.dumps(report)
    assert plot_diagnostics(report, tmp_path / "d.png", title="test").stat().st_size > 0
    with pytest.raises(ValueError, match="differ in shape"):
        synthesis_diagnostics(teacher, real[:, :, :5], real, denormalize=lambda x: x, num_classes=4)
