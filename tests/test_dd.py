"""Dataset distillation (Wang et al. 2018) as a process on digits: the exact unrolled gradient, learning,
determinism, the replay protocol and its files, and configuration checks."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill_core.common.seeding import seeded
from distill_core.condense.dd import DDConfig, DDProcess
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.condense.unroll import evaluate_dd, softplus_inverse, train_with_schedule, unrolled_loss
from distill_core.models import build_model

# 8×8 digits: two blocks (8 → 4 → 2), so the features keep some spatial extent
SMALL = DDConfig(dataset="digits", iterations=40, net_depth=2, init_lr=0.1, lr_images=0.1, lr_lrs=0.01, real_batch=128,
                 device="cpu")


def test_unrolled_gradient_matches_finite_differences(digits):
    torch.manual_seed(0)
    with seeded(1):
        net = build_model("convnet3_in", input_shape=digits.input_shape, num_classes=10, width=4, depth=1).double()
    theta0 = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()}
    steps, inner = 2, 3  # batch order 0, 1, 0
    images = torch.randn(steps * 10, *digits.input_shape, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(10).repeat(steps)
    raw = torch.tensor([softplus_inverse(v) for v in (0.3, 0.2, 0.4)], dtype=torch.float64, requires_grad=True)
    x_real, y_real = digits.x_train[:64].double(), digits.y_train[:64]
    weights = torch.linspace(0.5, 2.0, 10, dtype=torch.float64)

    def loss_of(images, raw):
        return unrolled_loss(net, theta0, images, labels, F.softplus(raw), x_real, y_real, steps=steps, class_weights=weights)[0]

    grad_x, grad_raw = torch.autograd.grad(loss_of(images, raw), [images, raw])
    assert len(grad_raw) == inner and bool(grad_x.abs().sum() > 0)
    eps = 1e-6

    def central(perturb):
        with torch.no_grad():
            plus, minus = perturb(eps), perturb(-eps)
        return (float(loss_of(*plus).detach()) - float(loss_of(*minus).detach())) / (2 * eps)

    for t in range(inner):
        def shift_raw(e, t=t):
            r = raw.detach().clone()
            r[t] += e
            return images.detach(), r
        assert central(shift_raw) == pytest.approx(float(grad_raw[t]), rel=1e-4, abs=1e-9)
    flat = grad_x.flatten()
    for i in [int(flat.abs().argmax()), 5, 64 * 10 + 27, 64 * 19 + 40]:  # pixels of batch 0 and of batch 1
        def shift_pixel(e, i=i):
            x = images.detach().clone()
            x.view(-1)[i] += e
            return x, raw.detach()
        assert central(shift_pixel) == pytest.approx(float(flat[i]), rel=1e-4, abs=1e-9)


def test_dd_learns_from_noise_with_a_fixed_init(digits):
    process = DDProcess(dataclasses.replace(SMALL, score_every=20), data=digits)
    start = process.reset(0)
    losses, stats = [], None
    while not process.done:
        stats = process.step()
        losses.append(stats.extras["outer_loss"])
    assert stats.extras["score"] > start.extras["score"] + 0.3
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3
    assert not stats.diverged and stats.scored
    names, low, high = process.observation_layout()
    assert stats.names == names and len(names) == 10 + SMALL.inner_steps + 10 + 2  # loss, step sizes, confidence, progress, gain
    assert bool(np.all(stats.values >= low)) and bool(np.all(stats.values <= high))
    synthetic = process.synthetic_set()
    assert synthetic.x.shape == (10, 1, 8, 8) and synthetic.lrs.shape == (10,) and synthetic.method == "dd"
    assert evaluate_dd(synthetic, digits, split="val")["mean"] == pytest.approx(stats.extras["score"])


def test_dd_runs_are_deterministic(digits):
    config = dataclasses.replace(SMALL, iterations=4, steps=2, epochs=2, images_per_class=2, image_init="real", init="random",
                                 num_eval_inits=2)
    process = DDProcess(config, data=digits)

    def run(seed):
        process.reset(seed)
        while not process.done:
            process.step()
        return process.synthetic_set()

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.x, b.x) and torch.equal(a.lrs, b.lrs)
    assert not torch.equal(a.x, c.x)
    assert a.x.shape == (2 * 2 * 10, 1, 8, 8) and a.lrs.shape == (4,)
    # batch t = rows [t·C·ipc, (t+1)·C·ipc), class-major inside
    assert torch.equal(a.y, torch.arange(10).repeat_interleave(2).repeat(2))


def test_save_load_and_evaluate_dd_agree(digits, tmp_path):
    for init in ("fixed", "random"):
        process = DDProcess(dataclasses.replace(SMALL, iterations=3, init=init, num_eval_inits=1), data=digits)
        process.reset(2)
        while not process.done:
            process.step()
        synthetic = process.synthetic_set()
        loaded = SyntheticSet.load(synthetic.save(tmp_path / f"{init}.pt"))
        assert loaded.meta == synthetic.meta and torch.equal(loaded.lrs, synthetic.lrs)
        a = evaluate_dd(synthetic, digits, num_models=2, seed=5)
        assert a == evaluate_dd(loaded, digits, num_models=2, seed=5) == evaluate_dd(synthetic, digits, num_models=2, seed=5)
        assert set(a) == {"mean", "std", "accuracies", "arch", "recipe", "num_models"}
        if init == "fixed":
            assert a["num_models"] == 1 and a["std"] == 0.0
        else:
            assert a["num_models"] == 2 and a["accuracies"][0] != a["accuracies"][1]
    with pytest.raises(ValueError, match="split must be"):
        evaluate_dd(synthetic, digits, split="train")
    with pytest.raises(ValueError, match="no DD schedule"):
        train_with_schedule(SyntheticSet(synthetic.x, synthetic.y, "digits", "random"), digits)


@pytest.mark.parametrize("field, value, match", [
    ("init", "known", "init must be one of 'fixed', 'random'"),
    ("image_init", "zeros", "image_init must be one of"),
    ("net_arch", "convnet_bn", "net_arch must be one of"),
    ("lr_schedule", "step", "lr_schedule must be one of"),
    ("steps", 0, "steps must be >= 1"),
    ("epochs", 0, "epochs must be >= 1"),
    ("init_lr", 0.0, "init_lr must be"),
    ("lr_images", -1.0, "lr_images must be"),
    ("grad_clip", -1.0, "grad_clip must be"),
])
def test_bad_config_values_are_named(field, value, match):
    with pytest.raises(ValueError, match=match):
        DDConfig(**{field: value})


def test_stepping_rules_and_divergence(digits):
    process = DDProcess(dataclasses.replace(SMALL, iterations=2), data=digits)
    with pytest.raises(RuntimeError, match=r"call reset\(seed\) before step\(\)"):
        process.step()
    process.reset(0)
    with pytest.raises(ValueError, match="lr_scale=100.0 is outside"):
        process.step(process.Knobs(lr_scale=100.0))
    with torch.no_grad():
        process.x[0, 0, 0, 0] = math.inf
    before = process.x.detach().clone()
    stats = process.step()
    assert stats.diverged and torch.equal(process.x.detach(), before)
    assert process.done  # a diverged run is over, as in every process
    with pytest.raises(RuntimeError, match="the run is over"):
        process.step()


def test_a_loss_spike_rolls_back_to_the_last_ordinary_iterate(digits):
    process = DDProcess(dataclasses.replace(SMALL, iterations=6), data=digits)
    process.reset(0)
    for _ in range(3):
        process.step()
    ordinary = process.x.detach().clone(), process.raw_lrs.detach().clone()
    assert not process.step().extras["rolled_back"]
    with torch.no_grad():
        process.raw_lrs.fill_(50.0)  # inner steps this long blow the network up: the outer loss spikes
    stats = process.step()
    assert stats.extras["rolled_back"] and stats.extras["rollbacks"] == 1 and not stats.diverged
    assert torch.equal(process.x.detach(), ordinary[0]) and torch.equal(process.raw_lrs.detach(), ordinary[1])
    assert not process.step().extras["rolled_back"]  # and the run goes on from there
