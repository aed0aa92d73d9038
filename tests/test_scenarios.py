"""Scenario sets: instances drawn deterministically from a seed, training and held-out instances
disjoint (held-out teachers never seen in training), and the scenario env passing both env checkers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401
from distill_core.ssdkd import scenarios
from distill_core.ssdkd.scenarios import FAMILIES, ScenarioConfig, ScenarioProcess, instances
from env_configs import use_tiny_family

SCENARIO_ID = "DistillGym/SSDKD-Digits-Scenarios-v0"


@pytest.fixture
def tiny_family(monkeypatch, digits_teacher):
    """The digits family at test size: two buffer shares, two budgets, teachers 0 (train) and 1 (held out)."""
    use_tiny_family(monkeypatch, "digits", (0.02, 0.05))


def test_training_and_heldout_instances_are_disjoint_and_cover_the_grid():
    for family in FAMILIES:
        train, heldout = instances(family, "train", 1295), instances(family, "heldout", 1295)
        assert not {s.name for s in train} & {s.name for s in heldout}
        assert not {s.overrides["teacher_seed"] for s in train} & {s.overrides["teacher_seed"] for s in heldout}
        shares = sorted({s.overrides["buffer_capacity"] for s in train})
        # 1 % to 10 % of the training set; 1–2 % for the small buffers (-v1's too), 5–10 % for the paper regime
        smallest, largest = (0.01, 0.02) if "small_buffer" in family else (0.05, 0.10) if "paper" in family else (0.01, 0.10)
        assert shares[0] == round(smallest * 1295) and shares[-1] == round(largest * 1295)
        assert all(s.overrides["synth_batch"] <= s.overrides["buffer_capacity"] for s in train + heldout)


def test_the_paper_regime_keeps_tens_of_kd_batches_and_makes_an_eighth_of_the_buffer_a_round():
    from distill_core.ssdkd.config import preset

    train_size = round(40_000 * 0.8 * 0.9)  # mnist1d_large: 80 % train, 10 % of it for validation
    kd_batch = preset(FAMILIES["mnist1d_paper"].preset).kd_batch
    for split in ("train", "heldout"):
        runs = instances("mnist1d_paper", split, train_size)
        assert {s.imbalance for s in runs} == {1.0, 10.0, 100.0}
        for s in runs:
            assert s.overrides["buffer_capacity"] >= 20 * kd_batch  # a batch is a small part of the buffer
            assert s.overrides["synth_batch"] == s.overrides["buffer_capacity"] // 8
    # the other families keep half the buffer new each round (capacity // 2, odd capacities included)
    assert [s.overrides["synth_batch"] for s in instances("digits_small_buffer", "train", 1295)][:3] == [6, 6, 6]


def test_the_draw_follows_the_seed(tiny_family):
    a, b = ScenarioProcess(ScenarioConfig(device="cpu")), ScenarioProcess(ScenarioConfig(device="cpu"))
    drawn = []
    for seed in range(12):
        a.reset(seed)
        b.reset(seed)
        assert a.scenario == b.scenario and np.array_equal(a.stats().values, b.stats().values)
        drawn.append(a.index)
    assert len(set(drawn)) > 1  # the seed picks among the instances


def test_heldout_split_draws_only_heldout_instances(tiny_family):
    process = ScenarioProcess(ScenarioConfig(split="heldout", device="cpu"))
    for seed in range(5):
        process.reset(seed)
        assert process.scenario.overrides["teacher_seed"] == 1 and process.inner.config.teacher_seed == 1


def test_the_scenario_env_passes_both_checkers_and_reports_its_instance(tiny_family):
    env = gym.make(SCENARIO_ID, device="cpu")
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    env.reset(seed=3)
    assert env.action_space.shape == (4 + 10 + 10 + 1 + 1,)
    names = env.unwrapped.observation_names
    assert "scenario/buffer_share" in names and "probe/agreement/9" in names
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
        done = terminated or truncated
    final = info["final_metrics"]
    assert {"test_accuracy", "val_accuracy", "scenario_index", "buffer_capacity", "rounds"} <= set(final)
    assert final["rounds"] == env.unwrapped.process.steps_taken


def test_an_unknown_family_or_split_is_named():
    with pytest.raises(ValueError, match="ScenarioConfig.split must be one of 'train', 'heldout'"):
        ScenarioConfig(split="test")
    with pytest.raises(ValueError, match="unknown scenario family 'cifar'"):
        scenarios.instances("cifar", "train", 100)


def test_a_long_tailed_teacher_set_thins_only_the_training_split(digits):
    from distill_core.data.imbalance import long_tailed

    tail = long_tailed(digits, 10.0, seed=3)
    counts = np.sort(np.bincount(tail.y_train.numpy(), minlength=10))[::-1]
    n_max = np.bincount(digits.y_train.numpy()).max()
    assert counts[0] >= 0.95 * n_max and counts[-1] == pytest.approx(n_max / 10, abs=1)  # head keeps all, tail a tenth
    assert torch_equal(tail.x_val, digits.x_val) and torch_equal(tail.y_test, digits.y_test)
    assert long_tailed(digits, 1.0, seed=0) is digits
    assert np.array_equal(long_tailed(digits, 10.0, seed=3).y_train.numpy(), tail.y_train.numpy())  # seeded
    with pytest.raises(ValueError, match="imbalance ratio must be a finite number >= 1"):
        long_tailed(digits, 0.5, seed=0)
    names = [s.name for s in instances("digits", "train", 1295)]
    assert any("-lt10-" in n for n in names) and any("-lt" not in n for n in names)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())
