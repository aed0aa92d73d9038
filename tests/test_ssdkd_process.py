"""The SSD-KD process on digits-sized configurations: it learns, it is deterministic, it cleans up,
and it survives bad rounds instead of crashing."""

import math

import numpy as np
import pytest
import torch

from distill_core.inversion import BatchNormStatsLoss
from distill_core.ssdkd.config import SSDKDConfig, deep_inversion_config, memory_bank_config, real_kd_config
from distill_core.ssdkd.process import SSDKDKnobs, SSDKDProcess

SMALL = SSDKDConfig(dataset="digits", rounds=4, synth_batch=32, buffer_capacity=64, g_steps=3, kd_steps=8,
                    probe_size=100, probe_steps=5, device="cpu")


@pytest.fixture(scope="module")
def process(digits, digits_teacher):
    return SSDKDProcess(SMALL, teacher=digits_teacher, data=digits)


def run(process, seed, knobs=None):
    stats = [process.reset(seed)]
    while not process.done:
        stats.append(process.step(knobs))
    return stats


def test_a_run_distils_and_respects_the_budget(process, digits):
    stats = run(process, seed=0)
    assert len(stats) == SMALL.rounds + 1
    assert len(process.buffer) == SMALL.buffer_capacity  # 4 × 32 made, capacity 64: partial eviction happened
    assert process.totals.samples_made == SMALL.budget
    first, last = stats[0].extras["score"], stats[-1].extras["score"]
    assert last > first  # −KL on the probe went up
    assert sum(s.gain for s in stats[1:]) == pytest.approx(last - first, abs=1e-9)  # rewards telescope
    for s in stats:
        assert s.values.dtype == np.float32
        assert np.all(s.values >= s.low) and np.all(s.values <= s.high)


def test_same_seed_same_run_bit_for_bit(process):
    a = run(process, seed=3)
    student_a = [p.clone() for p in process.student.parameters()]
    b = run(process, seed=3)
    for sa, sb in zip(a, b):
        assert np.array_equal(sa.values, sb.values)
    for pa, pb in zip(student_a, process.student.parameters()):
        assert torch.equal(pa, pb)
    c = run(process, seed=4)
    assert not np.array_equal(a[-1].values, c[-1].values)


def test_hooks_are_removed_after_every_round(process):
    run(process, seed=1)
    for module in process.teacher.model.modules():
        assert not module._forward_hooks, f"{type(module).__name__} still has forward hooks"


def test_bn_hook_context_removes_hooks_even_on_error(digits_teacher):
    with pytest.raises(RuntimeError, match="boom"):
        with BatchNormStatsLoss(digits_teacher.model):
            raise RuntimeError("boom")
    assert not any(m._forward_hooks for m in digits_teacher.model.modules())


def test_nan_inversion_loss_skips_the_round_and_is_reported(digits, digits_teacher, monkeypatch):
    process = SSDKDProcess(SMALL, teacher=digits_teacher, data=digits)
    process.reset(0)
    generator_before = process.generator
    calls = {"n": 0}
    original = BatchNormStatsLoss.pop

    def poisoned(self):
        calls["n"] += 1
        return original(self) * float("nan")

    monkeypatch.setattr(BatchNormStatsLoss, "pop", poisoned)
    stats = process.step()
    assert stats.extras["skipped"] is True and stats.diverged is False
    assert math.isnan(stats.extras["inversion_loss"])
    assert process.generator is not generator_before  # reset after the NaN
    assert process.totals.skipped_rounds == 1 and len(process.buffer) == 0
    monkeypatch.setattr(BatchNormStatsLoss, "pop", original)
    stats = process.step()
    assert stats.extras["skipped"] is False and len(process.buffer) == SMALL.synth_batch


def test_diverging_student_ends_the_run_without_raising(digits, digits_teacher):
    from dataclasses import replace

    process = SSDKDProcess(replace(SMALL, kd_lr=1e30), teacher=digits_teacher, data=digits)
    process.reset(0)
    while not process.done:
        stats = process.step()
    assert stats.diverged is True and process.round < SMALL.rounds and stats.extras["diverged_in"] == "kd_loss"


def test_a_non_finite_probe_ends_the_run_and_keeps_the_last_finite_probe(digits, digits_teacher):
    import torch

    process = SSDKDProcess(SMALL, teacher=digits_teacher, data=digits)
    process.reset(0)
    before = process.step()
    bn = next(m for m in process.student.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with torch.no_grad():
        bn.running_var.fill_(float("nan"))  # KD trains on batch statistics: only the probe sees it
    stats = process.step()
    assert stats.diverged and stats.extras["diverged_in"] == "probe" and process.done
    assert stats.extras["probe_kl"] == before.extras["probe_kl"] and np.isfinite(stats.values).all()


def test_knobs_are_checked(process):
    process.reset(0)
    with pytest.raises(ValueError, match="alpha=2.0 is outside its range"):
        process.step(SSDKDKnobs(alpha=2.0))
    with pytest.raises(ValueError, match="outside its range"):
        process.step(SSDKDKnobs(beta=float("nan")))
    with pytest.raises(TypeError, match="knobs must be"):
        process.step({"alpha": 0.5})


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown synthesis"):
        SSDKDConfig(synthesis="magic")
    with pytest.raises(ValueError, match="append-only"):
        SSDKDConfig(evict="none", rounds=10, synth_batch=64, buffer_capacity=100)
    with pytest.raises(ValueError, match="cannot exceed buffer_capacity"):
        SSDKDConfig(synth_batch=100, buffer_capacity=50)


@pytest.mark.parametrize("make", [memory_bank_config, deep_inversion_config, real_kd_config])
def test_baselines_share_the_harness(make, digits, digits_teacher):
    process = SSDKDProcess(make(SMALL), teacher=digits_teacher, data=digits)
    stats = run(process, seed=0)
    assert stats[-1].extras["score"] > stats[0].extras["score"]
    if make is not real_kd_config:
        assert len(process.buffer) == SMALL.budget  # append-only: nothing evicted


def test_extended_knobs(digits, digits_teacher):
    from dataclasses import replace

    process = SSDKDProcess(replace(SMALL, class_knobs=True, replace_knob=True), teacher=digits_teacher, data=digits)
    names = [s.name for s in process.knob_specs]
    assert names == ["alpha", "beta", "gamma", "diversity", "class_weights", "replace_fraction"]
    assert process.knob_specs[4].size == 10 and process.knob_specs[4].entry_names[-1] == "class_weights/9"
    process.reset(0)
    knobs = process.Knobs(class_weights=(1.0,) * 3 + (4.0,) + (1.0,) * 6, replace_fraction=0.5)
    process.step(knobs)
    assert len(process.buffer) == SMALL.synth_batch // 2


def test_the_learning_rate_knob_scales_one_round_and_leaves_the_schedule(digits, digits_teacher):
    from dataclasses import replace

    process = SSDKDProcess(replace(SMALL, lr_knob=True), teacher=digits_teacher, data=digits)
    assert process.exposed_knobs()[-1] == "lr_scale"

    def first_round(scale):
        process.reset(0)
        before = [p.detach().clone() for p in process.student.parameters()]
        process.step(process.Knobs(lr_scale=scale))
        moved = sum(float((p.detach() - b).norm()) for p, b in zip(process.student.parameters(), before))
        return moved, process._kd_optimizer.param_groups[0]["lr"]

    (slow, lr_slow), (paper, lr_paper), (fast, lr_fast) = first_round(0.1), first_round(1.0), first_round(10.0)
    assert slow < paper < fast  # the round's steps are scaled ...
    assert lr_slow == lr_paper == lr_fast  # ... and the cosine schedule is where it would be without the knob
    assert lr_paper == pytest.approx(SMALL.kd_lr * 0.5 * (1 + math.cos(math.pi * SMALL.kd_steps / (SMALL.rounds * SMALL.kd_steps))))


def test_the_process_is_a_stepwise_process_with_a_fixed_layout(process):
    from distill_core.process import StepwiseProcess

    assert isinstance(process, StepwiseProcess)
    names, low, high = process.observation_layout()
    stats = process.reset(0)
    assert stats.names == names and np.array_equal(stats.low, low) and np.array_equal(stats.high, high)


def test_first_batchnorm_layer_can_be_weighted_up(digits, digits_teacher):
    model = digits_teacher.model.eval()
    x = digits.x_train[:64]
    terms = {}
    for w in (1.0, 10.0):
        with BatchNormStatsLoss(model, first_weight=w) as bn_loss, torch.no_grad():
            model(x)
            terms[w] = bn_loss._terms[:]
            bn_loss.pop()
    assert torch.allclose(terms[10.0][0], 10 * terms[1.0][0]) and torch.allclose(terms[10.0][1], terms[1.0][1])
    with pytest.raises(ValueError, match="first_weight must be >= 0"):
        BatchNormStatsLoss(model, first_weight=-1.0)


def test_inversion_jitter_and_kd_mixing_keep_runs_deterministic(digits, digits_teacher):
    from dataclasses import replace

    config = replace(SMALL, inv_max_shift=1, inv_hflip=True, bn_first_weight=10.0, kd_mix="cutmix", kd_mix_prob=0.5)
    process = SSDKDProcess(config, teacher=digits_teacher, data=digits)
    a, b = run(process, seed=2), run(process, seed=2)
    assert np.array_equal(a[-1].values, b[-1].values)
    assert a[-1].extras["score"] > a[0].extras["score"]
    with pytest.raises(ValueError, match="unknown kd_mix"):
        replace(SMALL, kd_mix="blend")


def test_per_class_probe_statistics_and_replay_priority_knobs(digits, digits_teacher):
    from dataclasses import replace

    process = SSDKDProcess(replace(SMALL, priority_knobs=True), teacher=digits_teacher, data=digits)
    assert [s.name for s in process.knob_specs] == ["alpha", "beta", "gamma", "diversity", "class_priority"]
    stats = process.reset(0)
    d = stats.as_dict()
    per_class = np.array([d[f"probe/agreement/{c}"] for c in range(10)])
    counts = np.bincount(process._probe_logits.argmax(1).numpy(), minlength=10)
    assert np.dot(per_class, counts) / counts.sum() == pytest.approx(d["probe/agreement"], abs=1e-6)
    assert all(0.0 <= d[f"probe/kl/{c}"] < 1.0 for c in range(10))
    # all replay weight on class 0: the KD batches come (almost) only from class 0's samples
    process.step(process.Knobs(class_priority=(4.0,) + (0.25,) * 9))
    batch = process.buffer.sample(512, alpha=0.6, beta=0.4, rng=np.random.default_rng(0),
                                  class_weights=np.array((4.0,) + (0.25,) * 9))
    share = float((process.buffer.predicted_classes[batch.indices] == 0).mean())
    assert share > (process.buffer.predicted_classes == 0).mean()
    assert "val_accuracy" in process.final_metrics()


def test_momentum_blended_bn_prior_matches_a_blend_of_batches(digits, digits_teacher):
    model = digits_teacher.model.eval()
    first, second = digits.x_train[:64], digits.x_train[64:128] * 2.0
    layer = next(m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    seen = []
    handle = layer.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    blend: dict = {}
    with BatchNormStatsLoss(model, momentum=0.75, blend=blend) as bn_loss, torch.no_grad():
        model(first)
        alone = bn_loss._terms[0]
        bn_loss.pop()
        bn_loss.advance()
        model(second)
        blended = bn_loss._terms[0]
    handle.remove()
    stats = [(h.mean(0), h.var(0, unbiased=False)) for h in seen]  # the first layer's inputs are (N, features)
    mean = 0.25 * stats[1][0] + 0.75 * stats[0][0]
    var = 0.25 * stats[1][1] + 0.75 * stats[0][1]
    expected = torch.norm(mean - layer.running_mean) + torch.norm(var - layer.running_var)
    assert torch.allclose(blended, expected, atol=1e-5)  # (1 − m) of this batch, m of the blend
    direct = torch.norm(stats[0][0] - layer.running_mean) + torch.norm(stats[0][1] - layer.running_var)
    assert torch.allclose(alone, direct, atol=1e-5)  # an empty blend: the batch alone
    assert set(blend) == set(range(len(bn_loss.layers)))
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        BatchNormStatsLoss(model, momentum=1.0)


def test_adversarial_warm_up_and_bn_momentum_runs(digits, digits_teacher):
    from dataclasses import replace

    never = SSDKDProcess(replace(SMALL, lambda_adv=0.0), teacher=digits_teacher, data=digits)
    warming = SSDKDProcess(replace(SMALL, lambda_adv=0.5, adv_warmup=SMALL.rounds), teacher=digits_teacher, data=digits)
    late = SSDKDProcess(replace(SMALL, lambda_adv=0.5, adv_warmup=2), teacher=digits_teacher, data=digits)
    a, b, c = run(never, seed=5), run(warming, seed=5), run(late, seed=5)
    assert np.array_equal(a[-1].values, b[-1].values)  # warm-up over the whole run = no adversarial term
    assert np.array_equal(a[2].values, c[2].values) and not np.array_equal(a[-1].values, c[-1].values)
    blended = SSDKDProcess(replace(SMALL, bn_momentum=0.9), teacher=digits_teacher, data=digits)
    d, e = run(blended, seed=5), run(blended, seed=5)
    assert np.array_equal(d[-1].values, e[-1].values) and not np.array_equal(a[-1].values, d[-1].values)
    assert set(blended._bn_blend) and d[-1].extras["score"] > d[0].extras["score"]


def test_dafl_and_dfad_terms_compute_what_they_name():
    from distill_core.inversion import activation_term, adversarial_term, information_entropy_term

    features = torch.tensor([[1.0, -3.0], [0.0, 2.0]])
    assert torch.allclose(activation_term(features), torch.tensor([-2.0, -1.0]))
    uniform = torch.zeros(4, 5)  # every sample uniform: the mean prediction is too
    assert math.isclose(information_entropy_term(uniform).item(), -math.log(5), rel_tol=1e-6)
    one_class = torch.tensor([[50.0, 0.0, 0.0]] * 3)  # all on one class: zero entropy, the worst value
    assert abs(information_entropy_term(one_class).item()) < 1e-6
    balanced = torch.eye(3) * 50  # each sample sure of a different class: the batch covers all classes
    assert math.isclose(information_entropy_term(balanced).item(), -math.log(3), rel_tol=1e-5)
    s, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
    assert torch.allclose(adversarial_term(s, t, "l1"), torch.tensor([-1.5]))
    with pytest.raises(ValueError, match="unknown adversarial loss 'l2'"):
        adversarial_term(s, t, "l2")
    with pytest.raises(ValueError, match="unknown adv_loss 'l2'"):
        SSDKDConfig(adv_loss="l2")


@pytest.mark.parametrize("options", [dict(lambda_act=0.1), dict(lambda_ie=1.0), dict(lambda_adv=0.5, adv_loss="l1"),
                                     dict(lambda_cr=0.8), dict(meta_generator=True)])
def test_published_synthesis_options_change_the_run_deterministically(options, digits, digits_teacher):
    from dataclasses import replace

    plain = run(SSDKDProcess(replace(SMALL, lambda_adv=0.0), teacher=digits_teacher, data=digits), seed=5)
    changed = SSDKDProcess(replace(SMALL, **{"lambda_adv": 0.0, **options}), teacher=digits_teacher, data=digits)
    first, second = run(changed, seed=5), run(changed, seed=5)
    assert np.array_equal(first[-1].values, second[-1].values)
    assert not np.array_equal(plain[-1].values, first[-1].values)


def test_contrastive_term_prefers_views_of_the_same_sample_and_keeps_a_bank():
    from distill_core.inversion import ContrastiveTerm

    torch.manual_seed(0)
    term = ContrastiveTerm(feature_dim=6, temperature=0.1, bank_size=5)
    features = torch.randn(4, 6)
    matched = term(features, features + 0.01 * torch.randn(4, 6))
    shuffled = term(features, features[[1, 2, 3, 0]])
    assert matched < shuffled  # a local view that matches its own global view costs less
    term.remember()
    assert term.bank.shape == (4, 128)
    term(features, features)
    term.remember()
    assert term.bank.shape == (5, 128)  # capped; the newest first


def test_random_resized_crop_keeps_shape_and_zooms_in():
    from distill_core.augment import random_resized_crop

    x = torch.zeros(2, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    gen = torch.Generator().manual_seed(0)
    out = random_resized_crop(x, gen, scale=(0.25, 0.25))
    assert out.shape == x.shape and out.sum() > x.sum()  # the bright centre grows when the crop is resized up
    flat = torch.ones(3, 5)
    assert random_resized_crop(flat, gen) is flat
