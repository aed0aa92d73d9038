"""ObservationSubset: a policy that reads only named observation entries, named in YAML, saved and
loaded with the model, running on the env's whole observation."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from agents.features import ObservationSubset
from agents.registry import make_agent, resolve_policy_kwargs
from env_configs import TINY_SSDKD

DIGITS = "DistillGym/SSDKD-Digits-v0"
TINY = TINY_SSDKD
SUBSET = {"net_arch": {"pi": [], "vf": [8]}, "features_extractor_class": "ObservationSubset",
          "features_extractor_kwargs": {"keep": ["progress", "probe/kl"]}}


def test_keeps_the_named_entries_in_order_then_a_constant():
    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    extractor = ObservationSubset(space, keep=["d", "b"], names=["a", "b", "c", "d"])
    obs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0]])
    assert extractor.features_dim == 3
    assert torch.equal(extractor(obs), torch.tensor([[0.4, 0.2, 1.0], [4.0, 2.0, 1.0]]))


@pytest.mark.parametrize("keep, names, match", [
    (["z"], ["a", "b"], r"no observation entries named \['z'\]"),
    (["a", "a"], ["a", "b"], "kept twice"),
    ([], ["a", "b"], "at least one"),
    (["a"], ["a"], "one name per entry"),
])
def test_bad_subsets_name_the_problem(keep, names, match):
    with pytest.raises(ValueError, match=match):
        ObservationSubset(gym.spaces.Box(-1, 1, (2,), np.float32), keep=keep, names=names)


def test_yaml_names_resolve_and_unknown_ones_are_refused(digits_teacher):
    env = gym.make(DIGITS, **TINY)
    resolved = resolve_policy_kwargs(SUBSET, env)
    assert resolved["features_extractor_class"] is ObservationSubset
    assert resolved["features_extractor_kwargs"]["names"] == tuple(env.unwrapped.observation_names)
    assert SUBSET["features_extractor_class"] == "ObservationSubset"  # the YAML block is left as it was
    with pytest.raises(ValueError, match="unknown features_extractor_class 'Nope'"):
        resolve_policy_kwargs({"features_extractor_class": "Nope"}, env)


def test_a_subset_policy_trains_saves_and_loads_on_the_whole_observation(tmp_path, digits_teacher):
    env = gym.make(DIGITS, **TINY)
    agent = make_agent("ppo", env, seed=0, env_id=DIGITS, device="cpu", normalize=False,
                       hyperparams={"n_steps": 12, "batch_size": 6, "n_epochs": 1, "use_sde": True, "policy_kwargs": SUBSET})
    agent.learn(total_timesteps=12)
    assert agent.policy.action_net.in_features == 3  # two kept entries and the constant
    agent.save(tmp_path / "model")
    loaded = type(agent).load(tmp_path / "model", device="cpu")
    obs, _ = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape  # the whole observation goes in
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # only the kept entries matter: changing any other leaves the action unchanged
    names = env.unwrapped.observation_names
    other = obs.copy()
    other[[i for i, n in enumerate(names) if n not in ("progress", "probe/kl")]] += 0.5
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], loaded.predict(other, deterministic=True)[0])
