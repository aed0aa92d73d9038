"""Synthetic-set files: a flipped byte, NaN / Inf images, wrong shapes or dtypes, labels out of range,
an empty set or a set for another data set each give an error naming the file, the problem and the fix,
on load, on evaluation and from ``scripts/condense.py --evaluate`` (a message, not a traceback)."""

import os
import runpy
import sys

import pytest
import torch

from distill_core.common.checkpoint import CheckpointError, atomic_save, load_checkpoint
from distill_core.condense import EvalRecipe, SyntheticSet, evaluate_synthetic, random_subset
from distill_core.condense.synthetic_set import SYNTHETIC_FORMAT
from distill_core.data import load_dataset

FIX = "re-run scripts/condense.py"


@pytest.fixture()
def saved(digits, tmp_path):
    """A valid two-per-class digits set saved to ``tmp_path/synthetic.pt``; returns the path."""
    return random_subset(digits, 2, seed=0).save(tmp_path / "synthetic.pt")


def tamper(path, **changes):
    """Rewrite the set at ``path`` through atomic_save with ``changes``: a valid checksum over bad content."""
    payload = load_checkpoint(path, expected_format=SYNTHETIC_FORMAT)
    payload.update(changes)
    atomic_save(payload, path)


def test_round_trip_keeps_everything_and_names_the_file(digits, saved):
    original = random_subset(digits, 2, seed=0)
    loaded = SyntheticSet.load(saved)
    assert torch.equal(loaded.x, original.x) and torch.equal(loaded.y, original.y) and loaded.meta == original.meta
    assert (loaded.dataset, loaded.method, loaded.lrs, loaded.source) == ("digits", "random", None, saved)
    assert loaded.validate(digits) is loaded


def test_flipped_bytes_are_refused(saved):
    pristine = saved.read_bytes()
    for fraction in (0.3, 0.4, 0.5, 0.6, 0.7):  # image data: torch loads these without complaint
        data = bytearray(pristine)
        data[int(fraction * len(data))] ^= 0xFF
        saved.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=f"{saved}: content checksum mismatch .*; {FIX}"):
            SyntheticSet.load(saved)


@pytest.mark.parametrize(("value", "counts"), [(float("nan"), "1 NaN, 0 ±Inf"), (float("inf"), "0 NaN, 1 ±Inf")])
def test_non_finite_images_are_refused(saved, value, counts):
    x = load_checkpoint(saved, expected_format=SYNTHETIC_FORMAT)["x"].clone()
    x[3, 0, 2, 2] = value
    tamper(saved, x=x)
    with pytest.raises(CheckpointError, match=rf"synthetic set {saved}: image tensor 'x' has non-finite values: 1 of 1280 \({counts}\); {FIX}"):
        SyntheticSet.load(saved)


@pytest.mark.parametrize(("change", "message"), [
    (lambda x, y: {"x": x[:0], "y": y[:0]}, "image tensor 'x' is empty"),
    (lambda x, y: {"x": (x * 100).long()}, "image tensor 'x' has dtype torch.int64, expected a floating-point dtype"),
    (lambda x, y: {"y": y.float()}, "label tensor 'y' has dtype torch.float32, expected an integer dtype"),
    (lambda x, y: {"y": y.bool()}, "label tensor 'y' has dtype torch.bool, expected an integer dtype"),
    (lambda x, y: {"y": y[:-1]}, r"label tensor 'y' has shape \(19,\), expected \(20,\)"),
    (lambda x, y: {"y": y[:, None]}, r"label tensor 'y' has shape \(20, 1\), expected \(20,\)"),
    (lambda x, y: {"x": x.flatten()}, r"image tensor 'x' has shape \(1280,\), expected \(N, \*input_shape\)"),
    (lambda x, y: {"y": y - 1}, "label tensor 'y' includes -1; labels are class indices >= 0"),
    (lambda x, y: {"x": [1.0]}, "image tensor 'x' is a list, not a tensor"),
    (lambda x, y: {"lrs": torch.tensor([0.1, float("nan")])}, r"step-size tensor 'lrs' has non-finite values: 1 of 2 \(1 NaN, 0 ±Inf\)"),
    (lambda x, y: {"dataset": 3}, "'dataset' is 3, not a data set / method name"),
])
def test_malformed_sets_are_refused_on_load(saved, change, message):
    payload = load_checkpoint(saved, expected_format=SYNTHETIC_FORMAT)
    tamper(saved, **change(payload["x"], payload["y"]))
    with pytest.raises(CheckpointError, match=f"^synthetic set {saved}: {message}; {FIX}"):
        SyntheticSet.load(saved)


def test_missing_entries_are_refused(saved):
    payload = load_checkpoint(saved, expected_format=SYNTHETIC_FORMAT)
    del payload["y"]
    atomic_save(payload, saved)
    with pytest.raises(CheckpointError, match=f"synthetic set {saved} lacks y; {FIX}"):
        SyntheticSet.load(saved)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: {"y": s.y + 5}, r"label tensor 'y' includes 14, but 'digits' has 10 classes \(labels 0..9\)"),
    (lambda s: {"x": s.x[:, :, :4]}, r"images have shape \(1, 4, 8\), but 'digits' inputs are \(1, 8, 8\)"),
])
def test_sets_that_do_not_fit_the_data_are_refused_before_training(digits, saved, change, message):
    synthetic = SyntheticSet.load(saved)
    tamper(saved, **change(synthetic))
    loaded = SyntheticSet.load(saved)  # fine on its own: only the data set says what is in range
    with pytest.raises(CheckpointError, match=f"^synthetic set {saved}: {message}; {FIX}"):
        evaluate_synthetic(loaded, digits, num_models=1, recipe=EvalRecipe(epochs=1))


def test_a_set_for_another_data_set_is_refused(digits, saved):
    tamper(saved, dataset="fashion_mnist")  # a digits-shaped set labelled as another data set
    loaded = SyntheticSet.load(saved)
    with pytest.raises(CheckpointError, match=f"{saved} was made for data set 'fashion_mnist', not 'digits'; "
                                              "evaluate it on 'fashion_mnist'"):
        evaluate_synthetic(loaded, digits, num_models=1, recipe=EvalRecipe(epochs=1))
    mnist1d = load_dataset("mnist1d", seed=0)
    with pytest.raises(CheckpointError, match="made for data set 'digits', not 'mnist1d'"):
        evaluate_synthetic(random_subset(digits, 1, seed=0), mnist1d, num_models=1, recipe=EvalRecipe(epochs=1))


def test_in_memory_sets_are_checked_too(digits):
    bad = random_subset(digits, 1, seed=0)
    bad.x[0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"synthetic set \(in memory, 'random' for 'digits'\): image tensor 'x' has non-finite values"):
        evaluate_synthetic(bad, digits, num_models=1, recipe=EvalRecipe(epochs=1))


def test_an_invalid_set_is_not_written(digits, tmp_path):
    bad = random_subset(digits, 1, seed=0)
    bad.y = bad.y.float()
    with pytest.raises(CheckpointError, match="label tensor 'y' has dtype torch.float32"):
        bad.save(tmp_path / "synthetic.pt")
    assert not (tmp_path / "synthetic.pt").exists()


def test_file_mode_is_0644_under_umask_022(digits, tmp_path):
    old = os.umask(0o022)
    try:
        path = random_subset(digits, 1, seed=0).save(tmp_path / "synthetic.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def run_condense(args, monkeypatch):
    """Run ``scripts/condense.py`` as ``__main__``; return its exit code (0 when it just returns)."""
    monkeypatch.setattr(sys, "argv", ["condense.py", *args])
    try:
        runpy.run_path("scripts/condense.py", run_name="__main__")
    except SystemExit as exit_:
        return exit_.code
    return 0


@pytest.mark.parametrize("damage", ["nan", "empty", "flip", "missing"])
def test_condense_evaluate_reports_a_bad_file_without_a_traceback(saved, damage, monkeypatch, capsys):
    payload = load_checkpoint(saved, expected_format=SYNTHETIC_FORMAT)
    if damage == "nan":
        tamper(saved, x=payload["x"] * float("nan"))
    elif damage == "empty":
        tamper(saved, x=payload["x"][:0], y=payload["y"][:0])
    elif damage == "flip":
        data = bytearray(saved.read_bytes())
        data[len(data) // 2] ^= 0xFF
        saved.write_bytes(bytes(data))
    else:
        saved.unlink()
    assert run_condense(["--evaluate", str(saved)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(saved) in err
    assert FIX in err or "no checkpoint at" in err
