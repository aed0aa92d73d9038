"""Every registry agent trains a few hundred steps on a tiny digits env and acts; the training script's
machinery (EvalCallback on held-out seeds, checkpoints, VecNormalize, resume) works. (That each learner
learns is tests/test_learning.py's; the leaderboard is tests/test_leaderboard.py's.)"""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.registry import is_learning, list_agents, load_hyperparams, make_agent
from agents.rollout import run_episode
from agents.checkpoints import latest_checkpoint
from agents.training import load_trained, train_agent

DIGITS = "DistillGym/SSDKD-Digits-v0"
TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")
# small enough that every algorithm updates several times within 256 steps
FAST = {
    "ppo": dict(n_steps=48, batch_size=24, n_epochs=2), "a2c": dict(n_steps=6), "trpo": dict(n_steps=48, batch_size=24),
    "recurrent_ppo": dict(n_steps=48, batch_size=24, n_epochs=2),
    "sac": dict(learning_starts=48, batch_size=32), "td3": dict(learning_starts=48, batch_size=32),
    "ddpg": dict(learning_starts=48, batch_size=32), "tqc": dict(learning_starts=48, batch_size=32),
    "crossq": dict(learning_starts=48, batch_size=32), "ars": dict(n_delta=2, n_top=1),
}


def test_registry_names():
    assert set(list_agents()) == {"ppo", "a2c", "sac", "td3", "ddpg", "tqc", "recurrent_ppo", "trpo", "ars", "crossq",
                                  "random", "constant", "schedule", "static", "progress_schedule", "adaptive"}
    with pytest.raises(ValueError, match="unknown agent 'dqn'"):
        is_learning("dqn")


def test_hyperparams_are_rl_zoo_blocks():
    block = load_hyperparams("ppo", DIGITS)
    assert block["policy"] == "MlpPolicy" and "n_timesteps" in block
    assert load_hyperparams("td3", DIGITS)["policy"] == "MlpPolicy"  # falls back to `default`


def test_unsupported_zoo_settings_are_refused_not_ignored():
    from agents.registry import split_zoo_settings

    with pytest.raises(ValueError, match="'env_wrapper' is not supported here: .*ObservationSubset"):
        split_zoo_settings({"env_wrapper": ["gymnasium.wrappers.TimeLimit"], "learning_rate": 0.001})
    assert split_zoo_settings({"n_envs": 2, "learning_rate": 0.001}) == ({"learning_rate": 0.001}, {"n_envs": 2})


def test_zoo_noise_keys_become_action_noise(digits_teacher):
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    env = gym.make(DIGITS, **TINY)
    agent = make_agent("td3", env, env_id=DIGITS, hyperparams={"noise_type": "normal", "noise_std": 0.2}, device="cpu")
    assert isinstance(agent.action_noise, NormalActionNoise)
    assert np.allclose(agent.action_noise._sigma, 0.2) and agent.action_noise._sigma.shape == env.action_space.shape
    ou = make_agent("ddpg", env, hyperparams={"noise_type": "ornstein-uhlenbeck", "noise_std": 0.1}, device="cpu")
    assert isinstance(ou.action_noise, OrnsteinUhlenbeckActionNoise)
    assert make_agent("td3", env, hyperparams={}, device="cpu").action_noise is None
    with pytest.raises(ValueError, match="unknown noise_type 'gaussian'"):
        make_agent("td3", env, hyperparams={"noise_type": "gaussian"}, device="cpu")
    with pytest.raises(ValueError, match="noise_std without noise_type"):
        make_agent("td3", env, hyperparams={"noise_std": 0.1}, device="cpu")
    with pytest.raises(ValueError, match="noise_std must be a positive number"):
        make_agent("td3", env, hyperparams={"noise_type": "normal", "noise_std": float("nan")}, device="cpu")


@pytest.mark.parametrize("name", list_agents())
def test_every_agent_trains_and_acts(name, digits_teacher):
    env = gym.make(DIGITS, **TINY)
    agent = make_agent(name, env, seed=0, env_id=DIGITS, hyperparams=FAST.get(name, {}), device="cpu")
    agent.learn(total_timesteps=256)
    trace = run_episode(env, agent, seed=5, env_id=DIGITS, env_kwargs=TINY, agent_name=name)
    assert trace.outcome["steps"] == TINY["rounds"]
    assert all(env.action_space.contains(np.asarray(a, np.float32)) for a in trace.actions)


def test_make_agent_applies_the_yaml_normalize(digits_teacher):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env = gym.make(DIGITS, **TINY)
    assert load_hyperparams("ppo", DIGITS)["normalize"] is True
    agent = make_agent("ppo", env, env_id=DIGITS, hyperparams=FAST["ppo"], device="cpu")  # the README's call
    stats = agent.get_vec_normalize_env()
    assert isinstance(stats, VecNormalize) and stats.gamma == load_hyperparams("ppo", DIGITS)["gamma"]
    agent.learn(total_timesteps=48)
    assert stats.obs_rms.count > 48  # every observation went through VecNormalize
    assert len(agent.ep_info_buffer) > 0  # the Monitor SB3 would have added is there
    opted_out = make_agent("ppo", env, env_id=DIGITS, hyperparams=FAST["ppo"], device="cpu", normalize=False)
    assert opted_out.get_vec_normalize_env() is None
    already = VecNormalize(DummyVecEnv([lambda: env]))
    assert make_agent("ppo", already, env_id=DIGITS, hyperparams=FAST["ppo"], device="cpu").get_env() is already
    assert make_agent("ppo", env, hyperparams=FAST["ppo"], device="cpu").get_vec_normalize_env() is None  # `default`


def test_baselines_behave_as_named(digits_teacher):
    env = gym.make(DIGITS, **TINY)
    penv = env.unwrapped
    constant = make_agent("constant", env)
    obs, _ = env.reset(seed=0)
    assert np.allclose(penv.knobs_from_action(constant.predict(obs)[0]).alpha, 0.6)
    schedule = make_agent("schedule", env)
    start = obs.copy()
    end = obs.copy()
    end[penv.observation_names.index("progress")] = 1.0
    assert penv.knobs_from_action(schedule.predict(start)[0]).beta == pytest.approx(0.4, abs=1e-6)
    assert penv.knobs_from_action(schedule.predict(end)[0]).beta == pytest.approx(1.0, abs=1e-6)
    rand = make_agent("random", env, seed=1)
    assert not np.allclose(rand.predict(obs)[0], rand.predict(obs)[0])
    with pytest.raises(ValueError, match="unknown knobs"):
        make_agent("schedule", env, hyperparams={"schedule": {"zeta": 1.0}})


def test_training_with_eval_checkpoints_vecnormalize_and_resume(tmp_path, digits_teacher):
    kwargs = dict(out=tmp_path / "ppo", env_kwargs=TINY, hyperparams=FAST["ppo"], normalize=True, eval_seeds=(900, 901),
                  progress_bar=False, device="cpu")
    first = train_agent("ppo", DIGITS, timesteps=96, eval_freq=48, checkpoint_freq=48, **kwargs)
    assert first.model_path.exists() and first.vecnormalize_path.exists()
    assert (tmp_path / "ppo" / "eval" / "evaluations.npz").exists()
    assert (tmp_path / "ppo" / "logs" / "progress.csv").exists()
    assert latest_checkpoint(tmp_path / "ppo" / "checkpoints")[1] == 96
    resumed = train_agent("ppo", DIGITS, timesteps=144, eval_freq=48, checkpoint_freq=48, resume=True, **kwargs)
    assert resumed.resumed_from is not None and latest_checkpoint(tmp_path / "ppo" / "checkpoints")[1] == 144
    env = gym.make(DIGITS, **TINY)
    policy = load_trained("ppo", tmp_path / "ppo", env)
    assert run_episode(env, policy, 3, env_id=DIGITS, env_kwargs=TINY).outcome["steps"] == TINY["rounds"]
