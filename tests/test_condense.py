"""Condensation building blocks on digits: the evaluator, coreset baselines, synthetic-set files and
distribution matching as a process."""

import dataclasses

import numpy as np
import pytest
import torch

from distill_core.condense import (DMConfig, DMProcess, EvalRecipe, SyntheticSet, condense_config, evaluate_synthetic,
                                   herding, random_subset)
from distill_core.common.checkpoint import CheckpointError

FAST = EvalRecipe(epochs=20)


def test_random_subset_and_herding_are_class_balanced(digits):
    for synthetic in (random_subset(digits, 3, seed=0), herding(digits, 3)):
        assert synthetic.x.shape == (30, 1, 8, 8)
        assert torch.equal(torch.bincount(synthetic.y), torch.full((10,), 3))
    assert not torch.equal(random_subset(digits, 3, seed=0).x, random_subset(digits, 3, seed=1).x)
    with pytest.raises(ValueError, match="images_per_class must be in"):
        random_subset(digits, 0)


def test_herding_mean_is_closer_to_the_class_mean_than_random(digits):
    def gap(s):
        return sum(float((s.x[s.y == c].flatten(1).mean(0) - digits.x_train[digits.y_train == c].flatten(1).mean(0)).norm())
                   for c in range(10))

    assert gap(herding(digits, 5)) < gap(random_subset(digits, 5, seed=0))


def test_evaluator_is_deterministic_and_beats_chance(digits):
    synthetic = random_subset(digits, 5, seed=0)
    a = evaluate_synthetic(synthetic, digits, num_models=2, recipe=FAST, seed=3)
    b = evaluate_synthetic(synthetic, digits, num_models=2, recipe=FAST, seed=3)
    assert a == b and a["mean"] > 0.5 and len(a["accuracies"]) == 2
    with pytest.raises(ValueError, match="split must be"):
        evaluate_synthetic(synthetic, digits, split="train")


def test_synthetic_set_round_trip_evaluates_the_same(digits, tmp_path):
    synthetic = herding(digits, 2)
    loaded = SyntheticSet.load(synthetic.save(tmp_path / "s.pt"))
    assert torch.equal(loaded.x, synthetic.x) and loaded.method == "herding"
    assert evaluate_synthetic(loaded, digits, num_models=1, recipe=FAST) == evaluate_synthetic(synthetic, digits, num_models=1, recipe=FAST)
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="condense.py"):
        SyntheticSet.load(tmp_path / "bad.pt")


SMALL = DMConfig(dataset="digits", images_per_class=5, iterations=12, real_batch=32, score_epochs=5, device="cpu")


@pytest.mark.parametrize("dsa", [False, True])
def test_dm_matching_loss_falls_and_runs_are_deterministic(digits, dsa):
    # with DSA every update sees a new random transform, so its loss is noisier: average more of it
    process = DMProcess(dataclasses.replace(SMALL, dsa=dsa, iterations=24 if dsa else 12), data=digits)
    window = 8 if dsa else 4

    def run(seed):
        stats = [process.reset(seed)]
        while not process.done:
            stats.append(process.step())
        return stats

    losses = [s.extras["matching_loss"] for s in run(0)[1:]]
    assert np.mean(losses[-window:]) < np.mean(losses[:window])
    first = process.synthetic_set().x
    again = run(0)
    assert torch.equal(process.synthetic_set().x, first)
    assert again[-1].extras["score"] == run(0)[-1].extras["score"]
    names, low, high = process.observation_layout()
    assert again[-1].names == names and len(names) == 22  # distance and validation accuracy per class, progress, gain


def test_dm_knobs_are_checked(digits):
    process = DMProcess(SMALL, data=digits)
    process.reset(0)
    with pytest.raises(ValueError, match="lr_scale=100.0 is outside"):
        process.step(process.Knobs(lr_scale=100.0))


def test_condensation_observes_per_class_accuracy_and_reports_a_final_test_accuracy(digits):
    process = DMProcess(dataclasses.replace(SMALL, iterations=2, score_epochs=100), data=digits)
    stats = process.reset(0)
    per_class = [stats.as_dict()[f"val_accuracy/{c}"] for c in range(10)]
    counts = np.bincount(digits.y_val.numpy(), minlength=10)
    assert np.dot(per_class, counts) / counts.sum() == pytest.approx(stats.extras["score"], abs=1e-6)
    assert min(per_class) < max(per_class)  # some classes are harder: what per-class weights can act on
    process.step()
    final = process.final_metrics()
    assert 0.5 < final["test_accuracy"] <= 1 and process.timings["update_seconds"] > 0


def test_a_non_finite_dm_loss_is_flagged_and_the_images_are_kept(digits):
    process = DMProcess(SMALL, data=digits)
    process.reset(0)
    before = process.synthetic_set().x
    with torch.no_grad():
        process.x[0, 0, 0, 0] = float("nan")
    stats = process.step()
    assert stats.diverged and not np.isfinite(stats.extras["matching_loss"])
    assert torch.equal(process.synthetic_set().x[1:], before[1:])  # no update was taken


def test_dm_real_mean_in_chunks_equals_one_pass(digits):
    from distill_core.condense.dm import mean_embedding
    from distill_core.models import build_model

    net = build_model("convnet3_in", input_shape=digits.input_shape, num_classes=10, width=16, depth=2)
    x = digits.x_train[:37]
    with torch.no_grad():
        whole = net.embed(x).mean(0)
    assert torch.allclose(mean_embedding(net, x, chunk=8), whole, atol=1e-5)


def test_cosine_schedule_decays_the_image_learning_rate(digits):
    process = DMProcess(dataclasses.replace(SMALL, iterations=4, lr_schedule="cosine", score_every=4), data=digits)
    process.reset(0)
    lrs = []
    while not process.done:
        process.step()
        lrs.append(process._optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(SMALL.lr_images) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.2 * SMALL.lr_images
    with pytest.raises(ValueError, match="lr_schedule"):
        DMConfig(lr_schedule="step")


def test_presets_apply_a_per_size_entry_only_to_that_size_and_overrides_win():
    one, ten = condense_config("dc", "fashion_mnist", 1), condense_config("dc", "fashion_mnist", 10)
    # the ipc1 entry replaces the shared fields for one image per class only
    assert (one.iterations, one.lr_images) != (ten.iterations, ten.lr_images)
    assert one.real_batch == ten.real_batch and one.images_per_class == 1 and ten.images_per_class == 10
    assert condense_config("dc", "fashion_mnist", 1, iterations=3).iterations == 3
    assert condense_config("dm", "no_such_preset", 5) == DMConfig(dataset="no_such_preset", images_per_class=5)
    with pytest.raises(ValueError, match="unknown learned condensation method 'kmeans'"):
        condense_config("kmeans", "digits", 1)
