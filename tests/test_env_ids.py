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
from distill_core.ssdkd.config import FAST, preset
from distill_core.ssdkd.scenarios import FAMILIES, ScenarioConfig
from env_configs import ALL_IDS, condense_method, tiny_kwargs, use_small_fashion_mnist
from envs.whole_run import WholeRunSchedule, make_whole_run_env

PRESET_OF = {
    "DistillGym/SSDKD-Digits-v0": preset("digits"),
    "DistillGym/SSDKD-MNIST1D-v0": preset("mnist1d"),
    "DistillGym/SSDKD-FashionMNIST-v0": preset("fashion_mnist"),
    "DistillGym/SSDKD-Digits-Scenarios-v0": ScenarioConfig(family="digits"),
    "DistillGym/SSDKD-MNIST1D-Scenarios-v0": ScenarioConfig(family="mnist1d"),
    "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v0": ScenarioConfig(family="digits_small_buffer", class_knobs=False, priority_knobs=False),
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v0": ScenarioConfig(family="mnist1d_small_buffer", class_knobs=False, priority_knobs=False),
    **{f"DistillGym/Condense-{m.upper()}-{label}-v0": condense_config(m, d, ipc, episode=True)
       for m, ipc in (("dm", 10), ("dc", 10), ("dd", 1)) for d, label in (("digits", "Digits"), ("fashion_mnist", "FashionMNIST"))},
    # the fast tier
    "DistillGym/SSDKD-Digits-v1": preset("digits_fast"),
    "DistillGym/SSDKD-MNIST1D-v1": preset("mnist1d_fast"),
    "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1": ScenarioConfig(family="digits_small_buffer_fast", class_knobs=False, priority_knobs=False),
    "DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v1": ScenarioConfig(family="mnist1d_small_buffer_fast", class_knobs=False, priority_knobs=False),
    "DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1": ScenarioConfig(family="mnist1d_paper"),
    # the validation tier: the fast tier's spaces, convolutional runs one a process (no vector env)
    "DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1": ScenarioConfig(family="fashion_mnist_paper", class_knobs=False,
                                                                     priority_knobs=False),
}
VALIDATION = ("DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1",)
#: each schedule id and the per-round id whose runs it schedules
SCHEDULE_OF = {f"DistillGym/SSDKD-{data}-SmallBuffer-Schedule-{v}": f"DistillGym/SSDKD-{data}-SmallBuffer-Scenarios-{v}"
               for data in ("Digits", "MNIST1D") for v in ("v0", "v1")}
SCHEDULE_OF["DistillGym/SSDKD-MNIST1D-Paper-Schedule-v1"] = "DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1"
SCHEDULE_OF["DistillGym/SSDKD-FashionMNIST-Paper-Schedule-v1"] = "DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1"
#: the env class each per-round id's entry point names
ENV_CLASS_OF = {
    **{i: envs.SSDKDEnv for i in ("DistillGym/SSDKD-Digits-v0", "DistillGym/SSDKD-MNIST1D-v0", "DistillGym/SSDKD-FashionMNIST-v0")},
    **{i: envs.SSDKDScenarioEnv for i in PRESET_OF if "-Scenarios-v0" in i or i in VALIDATION},
    **{i: getattr(envs, f"Condense{condense_method(i)}Env") for i in PRESET_OF if "Condense-" in i},
    "DistillGym/SSDKD-Digits-v1": envs.SSDKDFastEnv, "DistillGym/SSDKD-MNIST1D-v1": envs.SSDKDFastEnv,
    **{i: envs.SSDKDFastScenarioEnv for i in PRESET_OF if "-Scenarios-v1" in i and i not in VALIDATION},
}


def test_every_id_is_registered_from_its_preset():
    assert sorted(ALL_IDS) == sorted([*PRESET_OF, *SCHEDULE_OF])
    assert sorted(PRESET_OF) == sorted(envs.ENTRY_POINTS) == sorted(envs.REGISTERED) == sorted(ENV_CLASS_OF)
    assert envs.SCHEDULE_IDS == SCHEDULE_OF
    assert sorted(envs.FAST_IDS) == sorted(i for i in PRESET_OF if i.endswith("-v1") and i not in VALIDATION)
    assert tuple(envs.VALIDATION_IDS) == VALIDATION
    for env_id, config in PRESET_OF.items():
        spec = gym.spec(env_id)
        assert spec.kwargs == dataclasses.asdict(config), env_id
        assert envs.registered_config(env_id) == config
        assert envs.ENTRY_POINTS[env_id] == spec.entry_point
        env_cls = gym.envs.registration.load_env_creator(spec.entry_point)
        assert env_cls is ENV_CLASS_OF[env_id] and env_cls.config_cls is type(config), env_id
        # a -v1 id has a native vector env (tests/test_vector_env.py: its slots run this id's env class)
        assert (spec.vector_entry_point is not None) == (env_id in envs.FAST_IDS) == envs.has_vector_env(env_id), env_id
    for env_id, inner_id in SCHEDULE_OF.items():
        spec = gym.spec(env_id)
        assert spec.kwargs == {"inner_id": inner_id}, env_id
        assert gym.envs.registration.load_env_creator(spec.entry_point) is make_whole_run_env
        assert envs.registered_config(env_id) == PRESET_OF[inner_id]  # a schedule id takes its per-round id's configuration
        assert (spec.vector_entry_point is not None) == (inner_id in envs.FAST_IDS) == envs.has_vector_env(env_id), env_id


def test_the_fast_tier_changes_only_the_networks_and_the_probe():
    """A -v1 id runs the same runs as its -v0 id (same data, budgets, steps and scenario instances), with
    the fast tier's generator and shared probe."""
    assert preset("digits_fast") == dataclasses.replace(preset("digits"), **FAST)
    assert preset("mnist1d_fast") == dataclasses.replace(preset("mnist1d"), **FAST)
    for fast, slow in (("digits_small_buffer_fast", "digits_small_buffer"), ("mnist1d_small_buffer_fast", "mnist1d_small_buffer")):
        assert dataclasses.replace(FAMILIES[fast], preset=FAMILIES[slow].preset) == FAMILIES[slow]
        assert FAMILIES[fast].preset == FAMILIES[slow].preset + "_fast"
    for v1 in envs.FAST_IDS:
        v0 = v1.replace("-v1", "-v0")
        if v0 not in PRESET_OF:  # a family born on the fast tier (the paper regime) has no v0 to match
            continue
        if isinstance(PRESET_OF[v1], ScenarioConfig):
            assert dataclasses.replace(PRESET_OF[v1], family=PRESET_OF[v0].family) == PRESET_OF[v0]


def test_the_schedule_ids_take_a_schedule_of_their_per_round_ids_knobs(monkeypatch, digits_teacher):
    for env_id, inner_id in SCHEDULE_OF.items():
        if "Digits" not in env_id:
            continue
        env = gym.make(env_id, **tiny_kwargs(env_id, monkeypatch))
        inner = gym.make(inner_id, **tiny_kwargs(inner_id, monkeypatch))
        wrapper = env.env
        while not isinstance(wrapper, WholeRunSchedule):
            wrapper = wrapper.env
        k = inner.action_space.shape[0]
        assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2 * k,), np.float32)
        assert env.observation_space == inner.observation_space
        assert wrapper.action_names == tuple(f"start:{n}" for n in inner.unwrapped.action_names) + tuple(
            f"end:{n}" for n in inner.unwrapped.action_names)
        assert type(env.unwrapped) is type(inner.unwrapped)


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
        env = gym.make(env_id, render_mode=mode, **tiny_kwargs(env_id, monkeypatch))
        assert env.render_mode == mode == env.unwrapped.render_mode
        env.reset(seed=0)
        env.step(np.zeros(env.action_space.shape, np.float32))
        frame = env.render()
        if mode == "ansi":
            assert isinstance(frame, str) and "progress" in frame
        else:
            assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] > 8
        if env_id in envs.SCHEDULE_IDS:  # a schedule env renders its inner env (after its whole run)
            inner = env.unwrapped.render()
            assert frame == inner if mode == "ansi" else np.array_equal(frame, inner)
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
def test_every_id_takes_the_env_keywords(env_id, monkeypatch, digits_teacher):
    env = gym.make(env_id, divergence_penalty=-0.5, reward_normalization="constant", **tiny_kwargs(env_id, monkeypatch))
    assert env.unwrapped.divergence_penalty == -0.5 and env.unwrapped.reward_normalization == "constant"
