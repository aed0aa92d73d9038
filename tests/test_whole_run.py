"""One decision per run: the schedule wrapper acts a schedule exactly as the per-round env does under the
progress-schedule baseline, refuses bad actions by name, passes both checkers, and a policy trained on
it acts the same schedule on the per-round env (how the headroom benchmark evaluates it)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from agents.baselines import ConstantPolicy, ProgressSchedulePolicy
from agents.evaluation import HeadroomConfig, Runner, run_headroom
from agents.evaluation.learners import whole_run_id
from agents.rollout import run_episode
from agents.whole_run import WholeRunPolicy
from env_configs import TINY_SSDKD, use_tiny_family
from envs.whole_run import WholeRunSchedule

DIGITS = "DistillGym/SSDKD-Digits-v0"
SMALL_BUFFER = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v0"


@pytest.fixture
def tiny_small_buffer(monkeypatch, digits_teacher):
    """The small-buffer digits family at test size (in this process only: learners use one env here)."""
    use_tiny_family(monkeypatch, "digits_small_buffer", (0.01, 0.02))


def schedule_of(env: gym.Env, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = env.action_space.shape[0]
    return rng.uniform(-1, 1, k).astype(np.float32), rng.uniform(-1, 1, k).astype(np.float32)


def test_the_paper_schedule_is_the_paper_run(digits_teacher):
    wrapped, inner = WholeRunSchedule(gym.make(DIGITS, **TINY_SSDKD)), gym.make(DIGITS, **TINY_SSDKD)
    constant = ConstantPolicy(inner)
    wrapped.reset(seed=5)
    _, total, terminated, truncated, info = wrapped.step(np.concatenate([constant._action, constant._action]))
    trace = run_episode(inner, constant, 5, env_id=DIGITS)
    assert terminated and not truncated and info["rounds"] == TINY_SSDKD["rounds"]
    assert total == pytest.approx(trace.outcome["return"], abs=1e-9)
    assert info["final_metrics"]["test_accuracy"] == trace.outcome["test_accuracy"]


def test_a_schedule_is_acted_as_the_progress_schedule_baseline(digits_teacher):
    wrapped, inner = WholeRunSchedule(gym.make(DIGITS, **TINY_SSDKD)), gym.make(DIGITS, **TINY_SSDKD)
    start, end = schedule_of(inner, np.random.default_rng(0))
    wrapped.reset(seed=2)
    _, total, _, _, info = wrapped.step(np.concatenate([start, end]))
    trace = run_episode(inner, ProgressSchedulePolicy(inner, start=start, end=end), 2, env_id=DIGITS)
    assert info["round_rewards"] == pytest.approx(trace.rewards, abs=1e-9)
    assert total == pytest.approx(trace.outcome["return"], abs=1e-9)
    assert wrapped.action_names[0] == "start:alpha" and wrapped.action_names[-1].startswith("end:")


def test_the_wrapper_passes_both_checkers(digits_teacher):
    env = WholeRunSchedule(gym.make(DIGITS, **TINY_SSDKD))
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)


def test_bad_schedules_and_envs_are_named(digits_teacher):
    env = WholeRunSchedule(gym.make(DIGITS, **TINY_SSDKD))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="start and end of 4 knobs"):
        env.step(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(8, np.nan, np.float32))
    with pytest.raises(TypeError, match="ProcessEnv"):
        WholeRunSchedule(gym.make("CartPole-v1"))


class FixedSchedule:
    """A stand-in for a trained schedule policy: always the same schedule; counts its calls."""

    def __init__(self, schedule: np.ndarray) -> None:
        self.schedule, self.calls = schedule, 0

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        self.calls += 1
        return self.schedule, state


def test_a_schedule_policy_acts_its_schedule_on_the_per_round_env(digits_teacher):
    inner = gym.make(DIGITS, **TINY_SSDKD)
    start, end = schedule_of(inner, np.random.default_rng(1))
    fixed = FixedSchedule(np.concatenate([start, end]))
    policy = WholeRunPolicy(fixed, inner)
    for seed in (3, 4):
        ours = run_episode(inner, policy, seed, env_id=DIGITS)
        reference = run_episode(inner, ProgressSchedulePolicy(inner, start=start, end=end), seed, env_id=DIGITS)
        assert ours.actions == reference.actions
        assert ours.outcome["return"] == reference.outcome["return"]
    assert fixed.calls == 2  # asked once per run, at its first round
    with pytest.raises(ValueError, match="start and end"):
        WholeRunPolicy(FixedSchedule(start), inner).predict(inner.reset(seed=0)[0])


def test_schedule_ids_take_their_per_round_ids_configuration(tiny_small_buffer):
    for schedule_id, inner_id in envs.SCHEDULE_IDS.items():
        assert gym.spec(schedule_id).kwargs == {"inner_id": inner_id}
        assert envs.registered_config(schedule_id) == envs.registered_config(inner_id)
        assert whole_run_id(inner_id) == schedule_id
    env = gym.make("DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v0", split="train", device="cpu")
    inner = gym.make(SMALL_BUFFER, split="train", device="cpu")
    assert env.action_space.shape == (2 * inner.action_space.shape[0],)
    with pytest.raises(ValueError, match="no one-decision-per-run id"):
        whole_run_id(DIGITS)


def test_headroom_trains_ppo_schedule_on_the_schedule_id_and_evaluates_it_per_round(tmp_path, tiny_small_buffer):
    config = HeadroomConfig(SMALL_BUFFER, train_env_kwargs={"split": "train", "device": "cpu"},
                            eval_env_kwargs={"split": "heldout", "device": "cpu"}, train_seeds=(1000, 1001),
                            eval_seeds=(2000, 2001), policies=("constant", "ppo_schedule"),
                            timesteps={"ppo_schedule": 8},
                            hyperparams={"ppo_schedule": {"n_envs": 1, "n_steps": 4, "batch_size": 4,
                                                          "env_kwargs": {"seed_pool": 4}}})
    with Runner("local") as runner:
        result = run_headroom(config, runner, out=tmp_path, progress=False)
    learner = result.learners["ppo_schedule"]
    assert learner["env_id"] == "DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v0" and learner["timesteps"] == 8
    assert [s.policy for s in result.summaries] == ["constant", "ppo_schedule"]
    rows = [r for r in result.rows if r["policy"] == "ppo_schedule"]
    assert sorted(r["seed"] for r in rows) == [2000, 2001] and all(r["steps"] in (2, 3) for r in rows)
    assert next(s for s in result.specs if s.label == "ppo_schedule").whole_run
