"""The headroom benchmark (agents/evaluation/, scripts/bench_headroom.py) and its baselines: the statistics
on synthetic numbers, the search space, the static / schedule / adaptive policies, a seeded search on the
tiny digits env, the evaluation, and the script end to end."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.baselines import AdaptivePolicy, ProgressSchedulePolicy, StaticPolicy
from agents.evaluation import HeadroomConfig, Runner, run_headroom, write_report
from agents.evaluation.cli import parse_env_kwargs, parse_seeds
from agents.evaluation.episodes import Cell, PolicySpec, run_cell
from agents.evaluation.oracles import objective_value, search, search_space
from agents.evaluation.statistics import (bootstrap_ci, paired_differences, rank_correlations, spearman, summarise,
                                          t_interval)
from agents.registry import make_agent
from agents.rollout import run_episode
from distill_core.process import StatsBuilder, StepwiseProcess, Update, knob
from envs.process_env import ProcessEnv

DIGITS = "DistillGym/SSDKD-Digits-v0"
TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")
#: the tiny env with per-class target weights, which the adaptive heuristic sets
TINY_CLASSES = dict(TINY, class_knobs=True)


@pytest.fixture(scope="module")
def objective(digits_teacher):
    """``val_accuracy`` where the env reports it, else ``test_accuracy`` (only until it does)."""
    env = gym.make(DIGITS, **TINY)
    metrics = run_episode(env, make_agent("constant", env), 0, env_id=DIGITS).final_metrics
    return "val_accuracy" if "val_accuracy" in metrics else "test_accuracy"


# ---------------------------------------------------------------------------------------------- statistics
def rows_of(values: dict[str, list[float]], returns: dict[str, list[float]] | None = None) -> list[dict]:
    """Rows as run_cell makes them, for policies evaluated on seeds 0..n-1."""
    return [{"policy": name, "seed": seed, "test_accuracy": v, "return": (returns or {}).get(name, vs)[seed],
             "seconds": 0.1, "diverged": False} for name, vs in values.items() for seed, v in enumerate(vs)]


def test_a_known_paired_difference_lies_in_both_intervals():
    rng = np.random.default_rng(0)
    base = rng.normal(0.90, 0.03, 20)  # seeds vary a lot ...
    better = base + 0.02 + rng.normal(0.0, 0.002, 20)  # ... the difference hardly
    seeds, diffs = paired_differences(rows_of({"constant": list(base), "static": list(better)}), "static")
    assert seeds == tuple(range(20)) and diffs.mean() == pytest.approx(0.02, abs=0.002)
    low, high = bootstrap_ci(diffs, seed=1)
    assert low < 0.02 < high and high - low < 0.005  # paired: the seed-to-seed spread cancels
    t_low, t_high = t_interval(diffs)
    assert t_low < 0.02 < t_high
    assert bootstrap_ci(diffs, seed=1) == (low, high)  # seeded
    assert bootstrap_ci(diffs, seed=2) != (low, high)


def test_identical_policies_differ_by_zero():
    values = list(np.linspace(0.8, 0.9, 7))
    summaries = summarise(rows_of({"constant": values, "static": values}))
    for s in summaries:
        assert s.diff_mean == 0.0 and s.diff_bootstrap == (0.0, 0.0) and s.diff_t == (0.0, 0.0)
        assert s.wins == 0.5 and s.episodes == 7 and s.metric_mean == pytest.approx(0.85)
    assert math.isnan(summaries[0].objective_mean)  # no val_accuracy in these rows


def test_spearman_of_a_perfectly_ranked_set_is_one():
    assert spearman([1, 2, 3, 4], [0.1, 0.5, 0.7, 0.9]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2], [1, 2])) and math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    accuracy = {"constant": [0.5, 0.6], "static": [0.7, 0.8], "schedule": [0.9, 1.0]}
    corr = rank_correlations(rows_of(accuracy, returns={"constant": [1, 2], "static": [3, 4], "schedule": [5, 6]}))
    assert corr["over_policies"] == pytest.approx(1.0) and corr["over_episodes"] == pytest.approx(1.0)
    assert (corr["policies"], corr["episodes"]) == (3, 6)


def test_unpaired_seeds_and_small_samples_are_handled():
    rows = rows_of({"constant": [0.5, 0.6, 0.7]}) + [{"policy": "static", "seed": 9, "test_accuracy": 0.1, "return": 0.0}]
    with pytest.raises(ValueError, match="different seeds"):
        paired_differences(rows, "static")
    assert all(math.isnan(v) for v in t_interval([0.3]))
    assert bootstrap_ci([0.3]) == (0.3, 0.3)


# ---------------------------------------------------------------------------------------------- parsing and space
def test_seeds_and_env_settings_parse():
    assert parse_seeds(["1000-1002", "7"]) == (1000, 1001, 1002, 7)
    for bad in (["5-3"], ["a"], ["1", "1"]):
        with pytest.raises(ValueError):
            parse_seeds(bad)
    assert parse_env_kwargs(["kd_steps=4", "class_knobs=true", "reward_normalization=constant",
                             "divergence_penalty=-2", "seed_pool=48"], DIGITS) == {
        "kd_steps": 4, "class_knobs": True, "reward_normalization": "constant", "divergence_penalty": -2.0,
        "seed_pool": 48}  # typed by the annotation (int | None), not by the default None
    with pytest.raises(ValueError, match="unknown configuration field 'kd_stepz'"):
        parse_env_kwargs(["kd_stepz=4"], DIGITS)


def test_config_refuses_overlapping_seeds_and_adds_the_reference():
    with pytest.raises(ValueError, match=r"overlap in \[5\]"):
        HeadroomConfig(train_seeds=(4, 5), eval_seeds=(5, 6))
    with pytest.raises(ValueError, match="unknown policies"):
        HeadroomConfig(policies=("dqn",))
    assert HeadroomConfig(policies=("static",)).policies == ("constant", "static")


def test_search_space_ties_or_splits_per_class_knobs(digits_teacher):
    env = gym.make(DIGITS, **TINY_CLASSES)
    penv = env.unwrapped
    everything = search_space(env)
    assert everything.dims == penv.action_names and len(everything.dims) == 14  # the whole action space
    space = search_space(env, ["beta", "class_weights"])
    assert space.entries == ((1,), tuple(range(4, 14)))
    action = space.action([1.0, 0.5])
    assert action[1] == 1.0 and np.all(action[4:] == 0.5)
    assert np.allclose(np.delete(action, [1, *range(4, 14)]), np.delete(space.base, [1, *range(4, 14)]))
    assert np.allclose(space.base, penv.action_from_knobs(penv.process.Knobs()))
    one = search_space(env, ["class_weights/3", "alpha"])
    assert one.entries == ((7,), (0,)) and one.values_of(one.action([-1.0, 0.25])) == [-1.0, 0.25]
    with pytest.raises(ValueError, match="'replace_fraction' is not exposed"):
        search_space(env, ["replace_fraction"])
    with pytest.raises(ValueError, match="'zeta' is not a knob"):
        search_space(env, ["zeta"])
    with pytest.raises(ValueError, match="searched twice"):
        search_space(env, ["class_weights", "class_weights/2"])
    with pytest.raises(ValueError, match="only a per-class knob takes /i"):
        search_space(env, ["class_weights/10"])


# ---------------------------------------------------------------------------------------------- policies
def test_static_and_schedule_policies_act_their_vectors(digits_teacher):
    env = gym.make(DIGITS, **TINY)
    penv = env.unwrapped
    constants = penv.action_from_knobs(penv.process.Knobs())
    obs, _ = env.reset(seed=0)
    assert np.array_equal(make_agent("static", env).predict(obs)[0], constants)  # from the env alone: constant
    vector = np.array([0.5, -0.5, 1.0, -1.0], np.float32)
    static = make_agent("static", env, hyperparams={"action": vector.tolist()})
    assert isinstance(static, StaticPolicy) and np.array_equal(static.predict(obs)[0], vector)
    assert np.array_equal(static.predict(np.stack([obs, obs]))[0], np.stack([vector, vector]))
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(4,\)"):
        StaticPolicy(env, action=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"inside \[-1, 1\]"):
        StaticPolicy(env, action=[2.0, 0.0, 0.0, 0.0])
    end = -vector
    schedule = make_agent("progress_schedule", env, hyperparams={"start": vector.tolist(), "end": end.tolist()})
    assert isinstance(schedule, ProgressSchedulePolicy)
    at = penv.observation_names.index("progress")
    for t, expected in ((0.0, vector), (1.0, end), (0.5, np.zeros(4))):
        seen = obs.copy()
        seen[at] = t
        assert np.allclose(schedule.predict(seen)[0], expected)
    assert np.array_equal(ProgressSchedulePolicy(env, start=vector).predict(obs)[0], vector)  # end defaults to start
    trace = run_episode(env, schedule, 3, env_id=DIGITS)
    assert trace.outcome["steps"] == 3 and np.allclose(trace.actions[0], vector)  # progress 0 on the first round


def test_adaptive_weights_follow_the_per_class_disagreement(digits_teacher):
    env = gym.make(DIGITS, **TINY_CLASSES)
    penv = env.unwrapped
    policy = make_agent("adaptive", env)
    assert isinstance(policy, AdaptivePolicy) and policy.adapts and policy.knobs == ("class_weights",)
    obs, _ = env.reset(seed=0)
    agreement = np.linspace(0.0, 0.9, 10)  # class 0 worst, class 9 best
    for c, a in enumerate(agreement):
        obs[penv.observation_names.index(f"probe/agreement/{c}")] = a
    knobs = penv.knobs_from_action(policy.predict(obs)[0])
    weights = np.array(knobs.class_weights)
    assert np.all(np.diff(weights) < 0)  # the more disagreement, the more weight
    assert np.all((weights >= 0.25) & (weights <= 4.0))
    expected = (1 - agreement) / np.exp(np.log(1 - agreement).mean())  # ∝ disagreement, geometric mean 1
    assert np.allclose(weights, np.clip(expected, 0.25, 4.0), rtol=1e-4)
    assert (knobs.alpha, knobs.beta) == pytest.approx((0.6, 0.4))  # the rest are the constants
    assert run_episode(env, policy, 1, env_id=DIGITS).outcome["steps"] == 3


def test_adaptive_is_the_constants_without_per_class_knobs(digits_teacher):
    env = gym.make(DIGITS, **TINY)  # class_knobs=False: nothing per class to set
    policy = AdaptivePolicy(env)
    obs, _ = env.reset(seed=0)
    assert not policy.adapts and policy.knobs == ()
    assert np.array_equal(policy.predict(obs)[0], make_agent("constant", env).predict(obs)[0])


@dataclass(frozen=True)
class ToyKnobs:
    lr: float = knob(0.1, 0.01, 1.0, "log", "step size")
    class_weights: tuple[float, ...] | None = knob(1.0, 0.25, 4.0, "log", "per-class weight", per_class=True)


class ToyProcess(StepwiseProcess):
    """Per-class knobs, but no per-class observation: the adaptive heuristic has nothing to read."""

    Knobs = ToyKnobs

    def __init__(self) -> None:
        super().__init__(None)
        self.num_classes = 3

    @property
    def budget(self) -> int:
        return 2

    def _start(self, seed: int) -> None:
        pass

    def _update(self, knobs: ToyKnobs) -> Update:
        return Update()

    def score(self) -> float:
        return 0.0

    def _observe(self, builder: StatsBuilder) -> None:
        builder.add("x", 0.5)


def test_adaptive_is_the_constants_without_per_class_entries():
    env = ProcessEnv(ToyProcess())
    policy = AdaptivePolicy(env)
    obs, _ = env.reset(seed=0)
    assert not policy.adapts
    assert np.array_equal(policy.predict(obs)[0], env.action_from_knobs(ToyKnobs()))


# ---------------------------------------------------------------------------------------------- search and evaluation
def test_objective_must_be_reported():
    with pytest.raises(KeyError, match="must report 'val_accuracy'"):
        objective_value({"policy": "static", "seed": 0, "test_accuracy": 0.5}, "val_accuracy")


def test_a_cell_runs_the_same_episode_as_a_fresh_env(digits_teacher):
    cell = Cell(PolicySpec("random", "random"), DIGITS, TINY, 4)
    first, again = run_cell(cell), run_cell(cell)
    env = gym.make(DIGITS, **TINY)
    fresh = run_episode(env, make_agent("random", env, seed=4), 4, env_id=DIGITS)
    first.pop("seconds"), again.pop("seconds")  # the machine's, not the episode's
    assert first == again and first["return"] == fresh.episode_return
    assert first["test_accuracy"] == fresh.outcome["test_accuracy"]


@pytest.mark.parametrize("kind", ["static", "schedule"])
def test_search_is_seeded_starts_at_the_constants_and_records_every_trial(kind, objective, digits_teacher):
    env = gym.make(DIGITS, **TINY)
    space = search_space(env, ["alpha", "beta"])
    runner = Runner("local")
    first = search(kind, DIGITS, TINY, (1000, 1001), space, trials=3, runner=runner, objective=objective, seed=3)
    again = search(kind, DIGITS, TINY, (1000, 1001), space, trials=3, runner=runner, objective=objective, seed=3)
    assert [t["params"] for t in first.trials] == [t["params"] for t in again.trials]
    assert [t["value"] for t in first.trials] == [t["value"] for t in again.trials]
    assert len(first.trials) == 3 and all(len(t["scores"]) == 2 for t in first.trials)
    constants = space.values_of(space.base)
    assert list(first.trials[0]["params"].values()) == pytest.approx(constants * (1 if kind == "static" else 2))
    assert first.best["value"] == max(t["value"] for t in first.trials)
    assert first.trials[0]["value"] == pytest.approx(np.mean(first.trials[0]["scores"]))
    assert first.spec.agent == ("static" if kind == "static" else "progress_schedule")


def test_evaluation_pairs_every_policy_on_the_held_out_seeds(tmp_path, objective, digits_teacher):
    config = HeadroomConfig(DIGITS, train_env_kwargs=TINY, eval_env_kwargs=TINY, train_seeds=(1000, 1001),
                            eval_seeds=(2000, 2001, 2002), policies=("constant", "static", "ppo"), trials=2,
                            knobs=("beta",), objective=objective, timesteps={"ppo": 48})
    with Runner("local") as runner:
        result = run_headroom(config, runner, out=tmp_path, progress=False)
    assert [s.policy for s in result.summaries] == ["constant", "static", "ppo"]
    for name in ("constant", "static", "ppo"):
        assert sorted(r["seed"] for r in result.rows if r["policy"] == name) == [2000, 2001, 2002]
    assert result.summaries[0].diff_mean == 0.0
    assert (tmp_path / "agents" / "ppo" / "model.zip").exists() and result.learners["ppo"]["timesteps"] == 48
    assert len(result.traces) == 9 and {t["seed"] for t in result.traces} == {2000, 2001, 2002}
    static_rows = [r for r in result.rows if r["policy"] == "static"]
    assert all(r["steps"] == 3 for r in static_rows)
    paths = write_report(result, tmp_path / "report")
    assert json.loads(paths["json"].read_text())["searches"]["static"]["dims"] == ["beta"]


def test_the_ray_backend_gives_the_local_results(objective, digits_teacher):
    pytest.importorskip("ray")
    env = gym.make(DIGITS, **TINY)
    space = search_space(env, ["alpha"])
    kwargs = dict(trials=2, objective=objective, seed=0, batch=2)
    local = search("static", DIGITS, TINY, (1000,), space, runner=Runner("local"), **kwargs)
    with Runner("ray", num_cpus=2) as runner:
        remote = search("static", DIGITS, TINY, (1000,), space, runner=runner, **kwargs)
    assert [t["value"] for t in remote.trials] == [t["value"] for t in local.trials]


# ---------------------------------------------------------------------------------------------- the script
def test_script_end_to_end_writes_json_markdown_and_plot(tmp_path, monkeypatch, capsys, objective, digits_teacher):
    from test_scripts import run_script

    out = tmp_path / "headroom"
    tiny = [f"{k}={v}" for k, v in TINY_CLASSES.items()]
    args = ["--train-env-kwargs", *tiny, "--eval-env-kwargs", *tiny, "--train-seeds", "1000-1001",
            "--eval-seeds", "2000-2002", "--trials", "3", "--knobs", "alpha", "beta", "class_weights/0",
            "--agents", "constant", "random", "static", "schedule", "adaptive", "--objective", objective,
            "--resamples", "1000", "--no-progress", "--out", str(out)]
    assert run_script("bench_headroom.py", args, monkeypatch) == 0
    report = json.loads((out / "headroom.json").read_text())
    assert [s["policy"] for s in report["summaries"]] == ["constant", "random", "static", "schedule", "adaptive"]
    assert {k: len(s["trials"]) for k, s in report["searches"].items()} == {"static": 3, "schedule": 3}
    assert len(report["episodes"]) == 15 and report["config"]["eval_seeds"] == [2000, 2001, 2002]
    assert report["notes"] == ["adaptive sets class_weights from probe/agreement/c"]
    markdown = (out / "headroom.md").read_text()
    assert "| static | 3 |" in markdown and "Spearman" in markdown
    assert (out / "headroom.png").read_bytes()[:4] == b"\x89PNG"
    assert "| adaptive | 3 |" in capsys.readouterr().out
    assert run_script("rollout.py", ["--replay", str(out / "episodes.jsonl")], monkeypatch) == 0  # reproducible


def test_script_refuses_overlapping_seeds(monkeypatch, capsys):
    from test_scripts import run_script

    code = run_script("bench_headroom.py", ["--train-seeds", "1-3", "--eval-seeds", "3-4", "--agents", "constant"], monkeypatch)
    assert code == 2 and "overlap in [3]" in capsys.readouterr().err
