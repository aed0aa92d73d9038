"""Every registered id: built from its one preset, rendered in every render mode, and documented by an
action table that matches its knobs."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest

import envs
from distill_core.condense.presets import condense_config
from distill_core.process import knob_specs
from distill_core.ssdkd.config import preset
from distill_core.ssdkd.scenarios import ScenarioConfig
from env_configs import ALL_IDS, tiny_kwargs, use_small_fashion_mnist

PRESET_OF = {
    "DistillGym/SSDKD-Digits-v0": preset("digits"),
    "DistillGym/SSDKD-MNIST1D-v0": preset("mnist1d"),
    "DistillGym/SSDKD-FashionMNIST-v0": preset("fashion_mnist"),
    **{f"DistillGym/Condense-{m.upper()}-{label}-v0": condense_config(m, d, ipc, episode=True)
       for m, ipc in (("dm", 10), ("dc", 10), ("dd", 1)) for d, label in (("digits", "Digits"), ("fashion_mnist", "FashionMNIST"))},
}


def test_every_id_is_registered_from_its_preset():
    assert sorted(PRESET_OF) == sorted(ALL_IDS)
    every = {**PRESET_OF, "DistillGym/SSDKD-Digits-Scenarios-v0": ScenarioConfig(family="digits"),
             "DistillGym/SSDKD-MNIST1D-Scenarios-v0": ScenarioConfig(family="mnist1d"),
             "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v0": ScenarioConfig(family="digits_small_buffer", class_knobs=False, priority_knobs=False),
             "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v0": ScenarioConfig(family="mnist1d_small_buffer", class_knobs=False, priority_knobs=False)}
    assert sorted(every) == sorted(envs.ENTRY_POINTS)
    for env_id, config in every.items():
        assert gym.spec(env_id).kwargs == dataclasses.asdict(config), env_id
        assert envs.registered_config(env_id) == config
        entry = gym.spec(env_id).entry_point
        assert envs.ENTRY_POINTS[env_id] == entry and gym.envs.registration.load_env_creator(entry).config_cls is type(config)


def test_the_scenario_env_acts_on_every_ssdkd_knob():
    assert envs.SSDKDScenarioEnv.process_cls.Knobs is envs.SSDKDEnv.process_cls.Knobs  # so SSDKDEnv's table is its table


def test_episode_presets_score_every_update():
    for env_id in envs.CONDENSE_IDS:
        assert envs.registered_config(env_id).score_every == 1, env_id


def test_an_unknown_id_names_the_registered_ones():
    with pytest.raises(ValueError, match="DistillGym/SSDKD-Digits-v0"):
        envs.registered_config("DistillGym/Nope-v0")


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_every_id_renders_in_every_mode(env_id, tmp_path, monkeypatch, digits_teacher):
    if "Fashion" in env_id:
        use_small_fashion_mnist(tmp_path, monkeypatch)
    for mode in ("rgb_array", "ansi"):
        env = gym.make(env_id, render_mode=mode, **tiny_kwargs(env_id))
        env.reset(seed=0)
        env.step(np.zeros(env.action_space.shape, np.float32))
        frame = env.render()
        if mode == "ansi":
            assert isinstance(frame, str) and "progress" in frame
        else:
            assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] > 8
        env.close()


def _table_rows(doc: str) -> list[list[str]]:
    """The rows of the ``## Action space`` table of an env docstring."""
    section = doc.split("## Action space", 1)[1].split("##", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.strip().startswith("|")]
    return [row for row in rows[1:] if not set(row[0]) <= set("-")]  # drop the header and the rule


def _number(text: str) -> float:
    return float(Fraction(text))


@pytest.mark.parametrize("env_cls", [envs.SSDKDEnv, envs.CondenseDMEnv, envs.CondenseDCEnv, envs.CondenseDDEnv])
def test_the_action_table_of_every_env_matches_its_knobs(env_cls):
    rows = _table_rows(env_cls.__doc__)
    specs = knob_specs(env_cls.process_cls.Knobs, num_classes=10)
    assert [row[1] for row in rows] == [s.name for s in specs]
    for row, spec in zip(rows, specs):
        low, high = re.match(r"\[([^,]+), ([^\]]+)\]", row[2]).groups()
        assert (_number(low), _number(high)) == (spec.low, spec.high), spec.name
        assert ("(log)" in row[2]) == (spec.scale == "log"), spec.name
        assert _number(row[3]) == spec.default, spec.name


@pytest.mark.parametrize("env_id", [i for i in ALL_IDS if "Digits" in i])
def test_every_id_takes_the_env_keywords(env_id, digits_teacher):
    env = gym.make(env_id, divergence_penalty=-0.5, reward_normalization="constant", **tiny_kwargs(env_id))
    assert env.unwrapped.divergence_penalty == -0.5 and env.unwrapped.reward_normalization == "constant"
