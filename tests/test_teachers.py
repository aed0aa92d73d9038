import os

import pytest
import torch

from distill_core.common.checkpoint import CheckpointError, atomic_save, load_checkpoint
from distill_core.supervised import TrainRecipe
from distill_core.teachers import TEACHER_FORMAT, TeacherSpec, get_teacher, teacher_path

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


# --- integrity of cached teachers: checksum, finite weights, dtypes, file mode ------------------------


def cached(digits, seed):
    """A tiny teacher of its own seed (so its own file), trained and cached; returns the Teacher."""
    return get_teacher("digits", "mlp_bn", TINY, seed=seed, data=digits, device="cpu", progress=False)


def resave(path, **changes):
    """Write the teacher file at ``path`` again through atomic_save (so with a valid checksum), with
    ``changes`` applied to its state dict: a legitimately saved but unusable file."""
    payload = load_checkpoint(path, expected_format=TEACHER_FORMAT)
    payload["state_dict"].update(changes)
    atomic_save(payload, path)


def test_flipped_bytes_in_a_cached_teacher_are_refused(digits):
    teacher = cached(digits, 21)
    pristine = teacher.path.read_bytes()
    for fraction in (0.3, 0.5, 0.7, 0.9):  # tensor data: torch itself loads these without complaint
        data = bytearray(pristine)
        data[int(fraction * len(data))] ^= 0xFF
        teacher.path.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=f"{teacher.path.name}: content checksum mismatch.*rebuild=True"):
            cached(digits, 21)
    teacher.path.write_bytes(pristine)
    assert cached(digits, 21).from_cache


def test_edited_teacher_weights_are_refused(digits):
    # the case: students at 10 % while the file still claimed the teacher's accuracy
    teacher = cached(digits, 22)
    payload = torch.load(teacher.path, weights_only=True)
    payload["state_dict"]["classifier.weight"] = payload["state_dict"]["classifier.weight"] * 0
    torch.save(payload, teacher.path)  # the old checksum stays in the file
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        cached(digits, 22)


@pytest.mark.parametrize(("seed", "value", "problem"), [(23, float("nan"), r"1 NaN, 0 ±Inf"), (123, -float("inf"), r"0 NaN, 1 ±Inf")])
def test_non_finite_teacher_weights_are_refused(digits, seed, value, problem):
    teacher = cached(digits, seed)
    bias = teacher.model.state_dict()["classifier.bias"].clone()
    bias[3] = value
    resave(teacher.path, **{"classifier.bias": bias})
    with pytest.raises(CheckpointError, match=rf"{teacher.path.name}: state_dict\['classifier.bias'\] has non-finite "
                                              rf"values: 1 of 10 \({problem}\); delete .*rebuild=True"):
        cached(digits, seed)


def test_teacher_weights_of_another_dtype_or_shape_are_refused(digits):
    teacher = cached(digits, 24)
    weight = teacher.model.state_dict()["classifier.weight"]
    resave(teacher.path, **{"classifier.weight": weight.round().long()})  # load_state_dict would cast it silently
    with pytest.raises(CheckpointError, match=r"state_dict\['classifier.weight'\] has dtype torch.int64, expected torch.float32"):
        cached(digits, 24)
    resave(teacher.path, **{"classifier.weight": weight[:, :5].clone()})
    with pytest.raises(CheckpointError, match=r"state_dict\['classifier.weight'\] has shape \(10, 5\), expected \(10, 256\); "
                                              r"delete .*rebuild=True"):
        cached(digits, 24)


def test_teacher_file_without_checksum_says_how_to_rebuild(digits):
    teacher = cached(digits, 25)
    payload = torch.load(teacher.path, weights_only=True)
    del payload["checksum"]  # what distill-gym wrote before checksums
    torch.save(payload, teacher.path)
    with pytest.raises(CheckpointError, match="no content checksum.*rebuild=True"):
        cached(digits, 25)


def test_diverged_teacher_is_not_cached(digits):
    recipe = TrainRecipe(epochs=1, batch_size=64, lr=1e30)
    with pytest.raises(CheckpointError, match=r"diverged: lower the recipe's learning rate \(lr=1e\+30\)"):
        get_teacher("digits", "mlp_bn", recipe, seed=26, data=digits, device="cpu", progress=False)
    assert not teacher_path(TeacherSpec("digits", "mlp_bn", recipe, 26), digits).exists()


def test_teacher_file_mode_is_0644_under_umask_022(digits):
    old = os.umask(0o022)
    try:
        teacher = cached(digits, 27)
    finally:
        os.umask(old)
    assert teacher.path.stat().st_mode & 0o777 == 0o644
