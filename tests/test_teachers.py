import pytest
import torch

from distill_core.common.checkpoint import CheckpointError, atomic_save
from distill_core.supervised import TrainRecipe
from distill_core.teachers import TEACHER_FORMAT, get_teacher, teacher_path

TINY = TrainRecipe(epochs=2, batch_size=64, lr=0.05)


def test_digits_teacher_is_accurate_frozen_and_cached(digits, digits_teacher):
    assert digits_teacher.metrics["test_accuracy"] >= 0.97
    assert not digits_teacher.model.training
    assert not any(p.requires_grad for p in digits_teacher.model.parameters())
    assert digits_teacher.path.is_file()


def test_cache_miss_then_hit_gives_identical_weights(digits):
    first = get_teacher("digits", "mlp_bn", TINY, seed=11, data=digits, device="cpu", progress=False)
    assert not first.from_cache and first.path == teacher_path(first.spec, digits)
    second = get_teacher("digits", "mlp_bn", TINY, seed=11, data=digits, device="cpu", progress=False)
    assert second.from_cache
    assert second.metrics == first.metrics
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_different_settings_are_different_files(digits):
    a = get_teacher("digits", "mlp_bn", TINY, seed=12, data=digits, device="cpu", progress=False)
    b = get_teacher("digits", "mlp_bn", TrainRecipe(epochs=3, batch_size=64), seed=12, data=digits, device="cpu", progress=False)
    assert a.path != b.path and not b.from_cache


def test_corrupt_cache_file_says_how_to_rebuild(digits):
    teacher = get_teacher("digits", "mlp_bn", TINY, seed=13, data=digits, device="cpu", progress=False)
    teacher.path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="rebuild=True"):
        get_teacher("digits", "mlp_bn", TINY, seed=13, data=digits, device="cpu", progress=False)
    rebuilt = get_teacher("digits", "mlp_bn", TINY, seed=13, data=digits, device="cpu", progress=False, rebuild=True)
    assert not rebuilt.from_cache
    assert get_teacher("digits", "mlp_bn", TINY, seed=13, data=digits, device="cpu", progress=False).from_cache


def test_mismatched_cache_file_is_refused(digits):
    teacher = get_teacher("digits", "mlp_bn", TINY, seed=14, data=digits, device="cpu", progress=False)
    atomic_save({"format": TEACHER_FORMAT, "key": {"dataset": "other"}, "state_dict": {}}, teacher.path)
    with pytest.raises(CheckpointError, match="other settings"):
        get_teacher("digits", "mlp_bn", TINY, seed=14, data=digits, device="cpu", progress=False)


def test_teacher_without_batchnorm_is_refused(digits):
    with pytest.raises(ValueError, match="no BatchNorm"):
        get_teacher("digits", "convnet3_in", TINY, data=digits, device="cpu", progress=False)
