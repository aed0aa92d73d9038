"""Every registered id survives the edges of its action box: agents that clip their actions (PPO, SAC)
send exactly ±1, which random samples never do, so the env checkers cannot catch a bound overshoot.

What was tried, each a test below: every id stepped at −1, +1 and 0; every corner of every id's box
mapped onto knobs and checked (a box of 1 + C knobs has 2 048 corners, too many to step, so the corners
are stepped where the box is small and a seeded sample of them elsewhere; a scenario id's box of
4 + 2C + 2 knobs has 2^26, so its mapping is checked on a seeded sample too); the extended SSD-KD knobs;
the exact bounds at ±1 for linear and log knobs; PPO for 256 steps on every digits id.

A schedule id's action is two of its per-round id's actions (start and end) and every round acts their
interpolation at the run's progress: its corners are checked at the progress of every round of every
budget a scenario has (``r / R``, as the float32 observation carries it), so a constant schedule at ±1
must land on the bounds in every round, as a per-round action at ±1 does.
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from distill_core.process import KnobSpec, check_knobs
from distill_core.ssdkd.scenarios import MAX_ROUNDS
from env_configs import ALL_IDS, DIGITS_IDS, tiny_kwargs, use_small_fashion_mnist
from envs.whole_run import WholeRunSchedule, scheduled_action

#: boxes up to this many dimensions are stepped at every corner; larger ones at a seeded sample
STEP_ALL_CORNERS_UP_TO = 4
SAMPLED_CORNERS = 4
#: boxes up to this many dimensions are mapped at every corner; larger ones at a seeded sample
MAP_ALL_CORNERS_UP_TO = 12
SAMPLED_MAPPED_CORNERS = 512
#: the progress a schedule is acted at: the start of every round of every budget up to MAX_ROUNDS, and the end
PROGRESS = sorted({float(np.float32(r / budget)) for budget in range(1, MAX_ROUNDS + 1) for r in range(budget + 1)})


def _make(env_id, tmp_path, monkeypatch, **extra):
    if "Fashion" in env_id:
        use_small_fashion_mnist(tmp_path, monkeypatch)
    return gym.make(env_id, **{**tiny_kwargs(env_id, monkeypatch), **extra})


def _corners(dim: int):
    return (np.array(c, np.float32) for c in itertools.product((-1.0, 1.0), repeat=dim))


def _sampled_corners(dim: int, n: int) -> list[np.ndarray]:
    """``n`` distinct corners of a ``dim``-dimensional box, seeded (never listing a box of 2^26 corners)."""
    rng = np.random.default_rng(0)
    if dim <= MAP_ALL_CORNERS_UP_TO:
        corners = list(_corners(dim))
        return [corners[i] for i in rng.choice(len(corners), n, replace=False)]
    picks: dict[bytes, np.ndarray] = {}
    while len(picks) < n:
        corner = np.where(rng.integers(0, 2, dim) == 1, 1.0, -1.0).astype(np.float32)
        picks.setdefault(corner.tobytes(), corner)
    return list(picks.values())


def _mapped_corners(dim: int) -> list[np.ndarray]:
    """Every corner of a box of up to MAP_ALL_CORNERS_UP_TO dimensions; else a seeded sample of them."""
    return list(_corners(dim)) if dim <= MAP_ALL_CORNERS_UP_TO else _sampled_corners(dim, SAMPLED_MAPPED_CORNERS)


def _schedule(env) -> WholeRunSchedule | None:
    """The schedule wrapper of a schedule id's env (``None`` for a per-round id)."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, WholeRunSchedule):
            return env
        env = env.env
    return None


def _knobs_of(env, action, progress=PROGRESS) -> list:
    """The knobs an action of ``env`` sets: one setting for a per-round id; for a schedule id, the setting
    of each round, at each of ``progress``."""
    penv, schedule = env.unwrapped, _schedule(env)
    if schedule is None:
        return [penv.knobs_from_action(action)]
    start, end = schedule.split(action)
    return [penv.knobs_from_action(scheduled_action(start, end, t)) for t in progress]


def _action_of(env, knobs) -> np.ndarray:
    """The action that sets ``knobs`` (a schedule id: in every round)."""
    action = env.unwrapped.action_from_knobs(knobs)
    return action if _schedule(env) is None else np.concatenate([action, action])


def _step_all(env, actions) -> None:
    """Step every action in turn, resetting whenever an episode ends; none may raise or diverge."""
    env.reset(seed=0)
    for n, action in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs), f"observation out of its box after action {action.tolist()}"
        assert np.isfinite(reward) and not info["diverged"], f"action {action.tolist()} diverged"
        if terminated or truncated:
            env.reset(seed=n + 1)


@pytest.mark.parametrize("low,high,scale", [(0.1, 10.0, "log"), (0.25, 4.0, "log"), (0.0, 4.0, "linear"),
                                            (0.1, 1.0, "linear"), (1e-3, 7.3, "log")])
def test_the_ends_of_the_unit_interval_land_exactly_on_the_bounds(low, high, scale):
    spec = KnobSpec("k", low, high, scale, low)
    assert spec.from_unit(-1.0) == low and spec.from_unit(1.0) == high
    assert spec.from_unit(np.float32(1.0)) == high and spec.from_unit(5.0) == high
    for a in np.linspace(-1, 1, 101):
        assert low <= spec.from_unit(a) <= high


@pytest.mark.parametrize("low,default,high,scale", [(0.0, 0.6, 1.0, "linear"), (0.0, 1.0, 4.0, "linear"),
                                                    (0.1, 1.0, 10.0, "log"), (0.25, 1.0, 4.0, "log"), (1e-3, 0.2, 7.3, "log")])
def test_the_zero_action_is_the_default_and_each_half_maps_evenly(low, default, high, scale):
    spec = KnobSpec("k", low, high, scale, default)
    assert spec.from_unit(0.0) == default and spec.to_unit(default) == 0.0
    for a in np.linspace(-1, 1, 41):
        assert spec.to_unit(spec.from_unit(a)) == pytest.approx(a, abs=1e-12)  # round trip
    values = [spec.from_unit(a) for a in np.linspace(-1, 1, 41)]
    assert values == sorted(values)  # monotone through the kink
    to = np.log if scale == "log" else float
    assert to(spec.from_unit(-0.5)) == pytest.approx((to(low) + to(default)) / 2)  # evenly in the knob's scale
    assert to(spec.from_unit(0.5)) == pytest.approx((to(default) + to(high)) / 2)


def test_a_default_on_a_bound_makes_that_half_constant():
    spec = KnobSpec("replace_fraction", 0.1, 1.0, "linear", 1.0)
    assert [spec.from_unit(a) for a in (0.0, 0.3, 1.0)] == [1.0, 1.0, 1.0] and spec.from_unit(-1.0) == 0.1
    assert spec.to_unit(1.0) == 0.0 and spec.to_unit(0.55) == pytest.approx(-0.5)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_the_zero_action_is_the_paper_on_every_id(env_id, tmp_path, monkeypatch, digits_teacher):
    env = _make(env_id, tmp_path, monkeypatch)
    penv = env.unwrapped
    zero = np.zeros(env.action_space.shape, np.float32)
    paper = penv.process.Knobs(**{s.name: (s.default,) * s.size for s in penv.knob_specs if s.per_class})
    settings = _knobs_of(env, zero)
    assert settings and all(knobs == paper for knobs in settings)
    assert np.array_equal(_action_of(env, penv.process.Knobs()), zero)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_every_corner_of_every_box_maps_onto_valid_knobs(env_id, tmp_path, monkeypatch, digits_teacher):
    env = _make(env_id, tmp_path, monkeypatch)
    penv = env.unwrapped
    dim = env.action_space.shape[0]
    # a schedule's corners at a few points of the run (every round's progress below, for ±1)
    progress = PROGRESS if _schedule(env) is None else (0.0, 1 / 3, 0.5, 1.0)
    for corner in _mapped_corners(dim):
        for knobs in _knobs_of(env, corner, progress):
            check_knobs(knobs, penv.process.Knobs, penv.knob_specs)
    for a, bound in ((-1.0, "low"), (1.0, "high")):
        for knobs in _knobs_of(env, np.full(dim, a, np.float32)):
            assert all(v == getattr(s, bound) for s in penv.knob_specs for v in s.values(knobs)), (a, knobs)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_every_id_steps_at_minus_one_plus_one_zero_and_its_corners(env_id, tmp_path, monkeypatch, digits_teacher):
    env = _make(env_id, tmp_path, monkeypatch)
    dim = env.action_space.shape[0]
    actions = [np.full(dim, v, np.float32) for v in (-1.0, 1.0, 0.0)]
    corners = list(_corners(dim)) if dim <= STEP_ALL_CORNERS_UP_TO else _sampled_corners(dim, SAMPLED_CORNERS)
    _step_all(env, actions + corners)
    env.close()


def test_the_extended_ssdkd_knobs_step_at_their_edges(tmp_path, monkeypatch, digits_teacher):
    env = _make("DistillGym/SSDKD-Digits-v0", tmp_path, monkeypatch, class_knobs=True, replace_knob=True)
    dim = env.action_space.shape[0]
    assert dim == 4 + 10 + 1
    penv = env.unwrapped
    for corner in itertools.islice(_corners(dim), 0, None, 97):  # every 97th of 32 768 corners
        check_knobs(penv.knobs_from_action(corner), penv.process.Knobs, penv.knob_specs)
    _step_all(env, [np.full(dim, v, np.float32) for v in (-1.0, 1.0, 0.0)])


@pytest.mark.parametrize("env_id", DIGITS_IDS)
def test_ppo_trains_256_steps_on_every_digits_id(env_id, tmp_path, monkeypatch, digits_teacher):
    from stable_baselines3 import PPO

    env = _make(env_id, tmp_path, monkeypatch)
    agent = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu",
                policy_kwargs=dict(net_arch=[16, 16]))
    agent.learn(total_timesteps=256)
    assert agent.num_timesteps >= 256
    env.close()


def test_the_per_class_action_mapping_round_trips(tmp_path, monkeypatch, digits_teacher):
    env = _make("DistillGym/SSDKD-Digits-v0", tmp_path, monkeypatch, class_knobs=True, priority_knobs=True,
                replace_knob=True)
    penv = env.unwrapped
    assert penv.action_names[4] == "class_weights/0" and penv.action_names[14] == "class_priority/0"
    knobs = penv.process.Knobs(alpha=0.3, class_weights=tuple(np.geomspace(0.25, 4.0, 10)),
                               class_priority=tuple(np.geomspace(4.0, 0.25, 10)), replace_fraction=0.5)
    action = penv.action_from_knobs(knobs)
    back = penv.knobs_from_action(action)
    for spec in penv.knob_specs:
        assert spec.values(back) == pytest.approx(spec.values(knobs), rel=1e-6), spec.name
    assert np.array_equal(penv.action_from_knobs(back), action)
