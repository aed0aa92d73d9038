"""The generic env over the SSD-KD process: both env checkers, determinism, traces, bad actions,
divergence, vectorisation, rendering and memory."""

import gc
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from agents.rollout import read_traces, replay, run_episode, write_traces
from agents.baselines import ConstantPolicy

# a whole episode in a fraction of a second
TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")
DIGITS = "DistillGym/SSDKD-Digits-v0"


@pytest.fixture
def env(digits_teacher):
    env = gym.make(DIGITS, **TINY)
    yield env
    env.close()


def test_ids_are_registered():
    for env_id in envs.SSDKD_IDS:
        assert env_id in gym.registry


@pytest.mark.parametrize("env_id", list(envs.SSDKD_IDS))
def test_every_id_passes_both_env_checkers(env_id, digits_teacher, tmp_path, monkeypatch):
    kwargs = dict(TINY)
    if "Fashion" in env_id:  # never 60 000 images in a test: small IDX files in the real format
        import distill_core.data.registry as registry
        from data_files import write_idx_set

        monkeypatch.setenv("DISTILL_GYM_FASHION_MNIST", str(write_idx_set(tmp_path / "fm", n_train=200, n_test=50)))
        monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
        kwargs.update(gen_width=8, latent_dim=16)
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_spaces_names_and_info(env):
    penv = env.unwrapped
    assert env.action_space.shape == (4,) and env.action_space.dtype == np.float32
    assert len(penv.observation_names) == env.observation_space.shape[0]
    assert penv.action_names == ("alpha", "beta", "gamma", "diversity")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert isinstance(reward, float) and not terminated and not truncated
    assert info["knobs"]["alpha"] == pytest.approx(0.6) and info["knobs"]["gamma"] == pytest.approx(1.0)  # zero action = the paper
    assert info["timings"]["synthesis_seconds"] > 0 and set(info["stats"]) == set(penv.observation_names)


def test_action_mapping_round_trips(env):
    penv = env.unwrapped
    knobs = penv.process.Knobs()
    back = penv.knobs_from_action(penv.action_from_knobs(knobs))  # float32 actions: equal to ~1e-7
    assert [v for s in penv.knob_specs for v in s.values(back)] == pytest.approx(
        [v for s in penv.knob_specs for v in s.values(knobs)], rel=1e-6)


def test_episode_truncates_and_returns_telescope(env):
    env.reset(seed=1)
    rewards, infos = [], []
    for _ in range(TINY["rounds"]):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        infos.append(info)
    assert truncated and not terminated
    assert sum(rewards) == pytest.approx(infos[-1]["score"] - (infos[0]["score"] - rewards[0]), abs=1e-9)
    assert 0.0 <= infos[-1]["final_metrics"]["test_accuracy"] <= 1.0


def test_same_seed_same_episode_and_trace_replays(env, tmp_path):
    policy = ConstantPolicy(env)
    a = run_episode(env, policy, 7, env_id=DIGITS, env_kwargs=TINY, agent_name="constant")
    b = run_episode(env, policy, 7, env_id=DIGITS, env_kwargs=TINY, agent_name="constant")
    assert a.observations == b.observations and a.rewards == b.rewards
    c = run_episode(env, policy, 8, env_id=DIGITS, env_kwargs=TINY, agent_name="constant")
    assert c.observations != a.observations
    path = write_traces([a, c], tmp_path / "t.jsonl")
    for trace in read_traces(path):
        assert replay(trace).reproduced
    tampered = read_traces(path)[0]
    tampered.rewards[-1] += 1e-3
    assert not replay(tampered).reproduced


@pytest.mark.parametrize("bad,match", [
    (np.array([np.nan, 0, 0, 0], np.float32), "NaN or Inf"),
    (np.array([np.inf, 0, 0, 0], np.float32), "NaN or Inf"),
    (np.zeros(3, np.float32), r"shape \(3,\), expected \(4,\)"),
])
def test_bad_actions_raise_clear_errors(env, bad, match):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)


def test_divergence_terminates_with_flag_and_penalty(digits_teacher):
    env = gym.make(DIGITS, **{**TINY, "kd_lr": 1e30}, divergence_penalty=-0.5)
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert terminated and info["diverged"] and reward == -0.5
    env.reset(seed=1)  # and the env is usable afterwards


def test_unknown_configuration_is_refused():
    with pytest.raises(TypeError, match=r"unknown SSDKDConfig field\(s\) \['kd_stepz'\]"):
        gym.make(DIGITS, kd_stepz=3)


def test_render_modes(digits_teacher):
    env = gym.make(DIGITS, render_mode="ansi", **TINY)
    env.reset(seed=0)
    env.step(np.zeros(4, np.float32))
    text = env.render()
    assert "probe/agreement" in text
    env = gym.make(DIGITS, render_mode="rgb_array", **TINY)
    env.reset(seed=0)
    env.step(np.zeros(4, np.float32))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_normalised_reward_divides_by_the_constant_policy_gain(digits_teacher):
    raw = gym.make(DIGITS, **TINY)
    norm = gym.make(DIGITS, reward_normalization="constant", **TINY)
    policy = ConstantPolicy(raw)
    a = run_episode(raw, policy, 3, env_id=DIGITS, agent_name="constant")
    b = run_episode(norm, policy, 3, env_id=DIGITS, agent_name="constant")
    assert b.episode_return == pytest.approx(np.sign(a.episode_return), rel=1e-6)  # the constant policy scores ±1


def test_pickles_and_runs_vectorised(digits_teacher):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    env = gym.make(DIGITS, **TINY)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.reset(seed=0)[0].shape == env.observation_space.shape
    # "envs:<id>" makes worker processes import the package (and so register the ids) before make()
    venv = make_vec_env(f"envs:{DIGITS}", n_envs=2, seed=0, env_kwargs=TINY, vec_env_cls=SubprocVecEnv)
    venv.reset()
    obs, rewards, dones, infos = venv.step(np.zeros((2, 4), np.float32))
    assert obs.shape == (2, env.observation_space.shape[0]) and rewards.shape == (2,)
    venv.close()
    # forkserver, not gymnasium's default fork: forking a process whose torch thread pool is running deadlocks
    vec = gym.make_vec(f"envs:{DIGITS}", num_envs=2, vectorization_mode="async",
                       vector_kwargs={"context": "forkserver"}, **TINY)
    obs, _ = vec.reset(seed=0)
    obs, rewards, *_ = vec.step(np.zeros((2, 4), np.float32))
    assert obs.shape[0] == 2 and np.isfinite(rewards).all()
    vec.close()


def test_memory_stays_flat_over_many_resets(digits_teacher):
    import resource

    env = gym.make(DIGITS, **{**TINY, "probe_steps": 1, "probe_size": 10})
    for seed in range(50):  # warm-up: allocator pools and caches settle
        env.reset(seed=seed)
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for seed in range(1000):
        env.reset(seed=seed)
    gc.collect()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50, f"peak memory grew by {grown_mib:.0f} MiB over 1000 resets"


@pytest.mark.parametrize("env_id", list(envs.CONDENSE_IDS))
def test_condensation_ids_pass_both_env_checkers_through_the_same_env_class(env_id, tmp_path, monkeypatch):
    tiny = {"DM": dict(images_per_class=2, real_batch=8, score_epochs=2, net_width=16),
            "DC": dict(images_per_class=2, real_batch=8, score_epochs=2, net_width=16, outer_loop=2, inner_loop=1),
            "DD": dict(real_batch=16, net_width=8)}
    kwargs = dict(iterations=3, device="cpu", **tiny[env_id.split("Condense-")[1].split("-")[0]])
    if "Fashion" in env_id:
        import distill_core.data.registry as registry
        from data_files import write_idx_set

        monkeypatch.setenv("DISTILL_GYM_FASHION_MNIST", str(write_idx_set(tmp_path / "fm", n_train=200, n_test=50)))
        monkeypatch.setattr(registry, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    env = gym.make(env_id, **kwargs)
    assert isinstance(env.unwrapped, envs.ProcessEnv)
    assert env.action_space.shape == (11,)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
