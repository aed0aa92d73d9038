"""Gradient matching (DC) and differentiable siamese augmentation (DSA) on digits: DC's distance, the
DSA transforms, learning, determinism, configuration and knob checks, and DSA in the evaluator."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill_core.common.seeding import seeded, torch_generator
from distill_core.condense import EvalRecipe, evaluate_synthetic, random_subset, train_on_synthetic
from distill_core.condense.dc import DCConfig, DCProcess, default_loops, gradient_distance
from distill_core.condense.dsa import DSA_GROUPS, DSA_STRATEGY, DSAParams, dsa_augment, dsa_random, dsa_seeded
from distill_core.models import build_model

# 8×8 digits: two blocks (8 → 4 → 2); with three the last one instance-normalises 2×2 maps and the
# gradients become too rough to match
SMALL = DCConfig(dataset="digits", images_per_class=5, iterations=8, outer_loop=5, inner_loop=5, real_batch=64,
                 net_width=32, net_depth=2, init="noise", score_epochs=5, device="cpu")


def _grads(net, x, y):
    return torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters()))


def test_gradient_distance_is_dc_layerwise_cosine(digits):
    with seeded(0):
        net = build_model("convnet3_in", input_shape=digits.input_shape, num_classes=10, width=8, depth=2)
    x, y = digits.x_train[:64], digits.y_train[:64]
    a, b = _grads(net, x[:32], y[:32]), _grads(net, x[32:], y[32:])
    assert float(gradient_distance(a, a)) <= 1e-6
    assert float(gradient_distance(a, [g.clone() for g in a])) <= 1e-6
    different = float(gradient_distance(a, b))
    assert different > 1e-3
    assert float(gradient_distance(a, [3.0 * g for g in b])) == pytest.approx(different, rel=1e-4)
    # DC's 'ours': sum over output rows of 1 - cos for tensors of > 1 dimension; 1-D ones add nothing
    expected = sum(float((1 - F.cosine_similarity(ga.reshape(len(ga), -1), gb.reshape(len(gb), -1), dim=1)).sum())
                   for ga, gb in zip(a, b) if ga.dim() > 1)
    assert different == pytest.approx(expected, rel=1e-4)
    biases = [g for g in a if g.dim() == 1]
    assert float(gradient_distance(biases, [torch.randn_like(g) for g in biases])) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        gradient_distance([torch.ones(2, 3)], [torch.ones(3, 2)])


def test_dsa_is_siamese_differentiable_and_shape_preserving(digits):
    x = digits.x_train[:16]
    for group in DSA_GROUPS:
        params = DSAParams.sample(group, 1, torch_generator(7))
        assert params.group == group and params.shared
        a = dsa_augment(x.clone(), params)
        assert a.shape == x.shape and torch.equal(a, dsa_augment(x.clone(), params))
        # one shared set: transforming a batch equals transforming its halves
        assert torch.allclose(a, torch.cat([dsa_augment(x[:8], params), dsa_augment(x[8:], params)]), atol=1e-6)
        leaf = x.clone().requires_grad_()
        out = dsa_augment(leaf, params)
        (grad,) = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), [leaf])
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, group
    # the full strategy: same seed → the same transform on two copies; another seed → another
    same = [torch.equal(dsa_seeded(x.clone(), seed=s), dsa_seeded(x.clone(), seed=s)) for s in range(6)]
    assert all(same)
    assert not torch.equal(dsa_seeded(x, seed=0), dsa_seeded(x, seed=1))
    assert not torch.equal(dsa_seeded(x, "scale", seed=0), x)
    # per-image parameters for training, from a generator; the strategy is checked; signals pass through
    assert dsa_random(x, DSA_STRATEGY, torch_generator(0)).shape == x.shape
    assert torch.equal(dsa_random(x, DSA_STRATEGY, torch_generator(3)), dsa_random(x, DSA_STRATEGY, torch_generator(3)))
    signal = torch.randn(4, 1, 32)
    assert dsa_seeded(signal, seed=0) is signal
    with pytest.raises(ValueError, match="unknown DSA group"):
        DSAParams.sample("color_blur", 1, torch_generator(0))


def test_dsa_crop_is_an_integer_shift_with_zero_fill():
    x = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8) + 1
    for seed in range(10):
        out = dsa_seeded(x, "crop", seed=seed)
        shifts = [(dy, dx) for dy in range(-1, 2) for dx in range(-1, 2)
                  if torch.allclose(out, _shift(x, dy, dx), atol=1e-4)]
        assert len(shifts) == 1, seed


def _shift(x, dy, dx):
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 + dy : 9 + dy, 1 + dx : 9 + dx]


def test_dc_distance_falls_and_dsa_runs(digits):
    process = DCProcess(SMALL, data=digits)
    process.reset(0)
    distances = []
    while not process.done:
        stats = process.step()
        distances.append(float(stats.values[:10].mean()))
        assert not stats.diverged and np.isfinite(stats.extras["matching_loss"])
    assert np.mean(distances[-3:]) < 0.8 * np.mean(distances[:2])
    assert process.synthetic_set().method == "dc"
    dsa = DCProcess(dataclasses.replace(SMALL, iterations=2, dsa=True), data=digits)
    dsa.reset(0)
    while not dsa.done:
        assert not dsa.step().diverged
    synthetic = dsa.synthetic_set()
    assert synthetic.method == "dsa" and synthetic.x.shape == (50, 1, 8, 8) and torch.isfinite(synthetic.x).all()
    assert synthetic.meta["outer_loop"] == 5 and synthetic.meta["dsa"] is True


def test_dc_runs_are_deterministic_and_configs_are_checked(digits):
    config = dataclasses.replace(SMALL, iterations=2, dsa=True, init="real")
    process = DCProcess(config, data=digits)

    def run(seed):
        stats = [process.reset(seed)]
        while not process.done:
            stats.append(process.step())
        return process.synthetic_set().x, stats

    first, stats = run(0)
    again, stats_again = run(0)
    assert torch.equal(first, again) and stats[-1].extras["score"] == stats_again[-1].extras["score"]
    assert not torch.equal(run(1)[0], first)
    names, low, high = process.observation_layout()
    assert stats[-1].names == names and len(names) == 22 and all(0 <= v <= 1 for v in stats[-1].values[:10])

    assert default_loops(1) == (1, 1) and default_loops(10) == (10, 50) and default_loops(50) == (50, 10)
    assert DCConfig(images_per_class=10).loops == (10, 50) and DCConfig(images_per_class=1, inner_loop=3).loops == (1, 3)
    for bad, field in [(dict(outer_loop=0), "outer_loop"), (dict(inner_loop=-1), "inner_loop"), (dict(init="zeros"), "init"),
                       (dict(lr_images=0.0), "lr_images"), (dict(real_batch=0), "real_batch"),
                       (dict(dsa_strategy="color_blur"), "dsa_strategy"), (dict(net_depth=0), "net_depth")]:
        with pytest.raises(ValueError, match=field):
            DCConfig(**bad)


def test_dc_knobs_are_checked_and_a_non_finite_loss_does_not_raise(digits):
    process = DCProcess(dataclasses.replace(SMALL, iterations=3, outer_loop=2, inner_loop=1), data=digits)
    process.reset(0)
    with pytest.raises(ValueError, match="lr_scale=100.0 is outside"):
        process.step(process.Knobs(lr_scale=100.0))
    with pytest.raises(ValueError, match="class_weights=.* is outside"):
        process.step(process.Knobs(class_weights=(1.0,) * 3 + (0.1,) + (1.0,) * 6))
    stats = process.step(process.Knobs(lr_scale=2.0, class_weights=(4.0,) + (1.0,) * 9))
    assert not stats.diverged
    with torch.no_grad():
        process.x[0, 0, 0, 0] = float("nan")
    before = process.x.detach().clone()
    stats = process.step()
    assert stats.diverged and torch.allclose(process.x.detach(), before, equal_nan=True)


def test_eval_recipe_with_dsa_is_deterministic_and_changes_training(digits):
    synthetic = random_subset(digits, 5, seed=0)
    recipe = EvalRecipe(epochs=10, dsa=True)
    a = evaluate_synthetic(synthetic, digits, num_models=1, recipe=recipe, seed=2)
    assert a == evaluate_synthetic(synthetic, digits, num_models=1, recipe=recipe, seed=2) and a["recipe"]["dsa"] is True
    with_dsa = train_on_synthetic(synthetic, digits, recipe=recipe, seed=2)
    plain = train_on_synthetic(synthetic, digits, recipe=EvalRecipe(epochs=10), seed=2)
    assert not torch.equal(with_dsa.classifier.weight, plain.classifier.weight)


def test_chunked_gradients_equal_one_pass(digits):
    from distill_core.condense.dc import real_gradient
    from distill_core.condense.evaluator import backward_in_chunks

    net = build_model("convnet3_in", input_shape=digits.input_shape, num_classes=10, width=16, depth=2)
    params = list(net.parameters())
    x, y = digits.x_train[:45], digits.y_train[:45]
    whole = torch.autograd.grad(F.cross_entropy(net(x), torch.full((45,), 3)), params)
    for a, b in zip(real_gradient(net, params, x, 3, chunk=8), whole):
        assert torch.allclose(a, b, atol=1e-6)
    whole = torch.autograd.grad(F.cross_entropy(net(x), y), params)
    net.zero_grad()
    backward_in_chunks(net, x, y, chunk=8)
    for p, b in zip(params, whole):
        assert torch.allclose(p.grad, b, atol=1e-6)
