"""The leaderboard (agents/evaluation/leaderboard.py, scripts/ablate.py): batched evaluation gives the
same episodes as one at a time; finished cells are skipped when it runs again; a failing run is
reported and retried, never fatal; the tidy scores and the report are written; bad configurations are
refused by name."""

from __future__ import annotations

import csv
import json

import pytest

import agents.evaluation.leaderboard as leaderboard
from agents.evaluation import Runner
from agents.evaluation.batched import close_vector_envs, run_batch
from agents.evaluation.episodes import Cell, PolicySpec, run_cell
from agents.evaluation.leaderboard import LeaderboardConfig, cell_path, failure_path, run_leaderboard
from agents.evaluation.leaderboard_report import score_matrices, write_leaderboard
from env_configs import use_tiny_family

SCENARIOS = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
TRAIN, HELDOUT = {"split": "train", "device": "cpu"}, {"split": "heldout", "device": "cpu"}
# a learner small enough for a unit test: 2 slots in this process, a pool of 2 reference runs
TINY_PPO = {"n_envs": 2, "vector_workers": 1, "n_steps": 1, "batch_size": 2, "n_epochs": 1,
            "env_kwargs": {"reward_normalization": "paired", "seed_pool": 2}}


@pytest.fixture
def tiny_small_buffer(monkeypatch, digits_teacher):
    """The small-buffer family at test size, in this process (so every vector env here has one worker)."""
    use_tiny_family(monkeypatch, "digits_small_buffer_fast", (0.01, 0.02))
    yield
    close_vector_envs()


def config(**changes) -> LeaderboardConfig:
    base = dict(env_id=SCENARIOS, learners=(), baselines=("constant", "random"), oracles=("static",),
                train_seeds=(0, 1), search_seeds=(1000,), eval_seeds=(2000, 2001, 2002), train_env_kwargs=TRAIN,
                eval_env_kwargs=HELDOUT, trials=2, parallel_trials=2, workers=1, reps=200)
    return LeaderboardConfig(**{**base, **changes})


def test_a_batch_runs_the_same_episodes_as_one_at_a_time(tiny_small_buffer):
    specs = [PolicySpec("constant", "constant"), PolicySpec("random", "random")]
    pairs = [(spec, seed) for spec in specs for seed in (2000, 2001, 2002)]
    one_by_one = [run_cell(Cell(spec, SCENARIOS, HELDOUT, seed)) for spec, seed in pairs]
    batched = run_batch(pairs, SCENARIOS, HELDOUT, slots=4)  # two chunks, the second padded
    for a, b in zip(one_by_one, batched, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert len({row["test_accuracy"] for row in batched}) > 1  # different seeds, different runs


def test_a_policy_on_seeds_is_batched_on_a_fast_id_and_run_one_by_one_elsewhere(tiny_small_buffer, digits_teacher):
    from agents.evaluation.batched import evaluate_on_seeds
    from env_configs import TINY_SSDKD

    spec = PolicySpec("random", "random")
    batched = evaluate_on_seeds(spec, SCENARIOS, HELDOUT, (2000, 2001), policy_seeds=(7, 8))
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in batched] == [
        {k: v for k, v in run_cell(Cell(spec, SCENARIOS, HELDOUT, seed, policy_seed=p)).items() if k != "seconds"}
        for seed, p in ((2000, 7), (2001, 8))]
    serial_id, tiny = "DistillGym/SSDKD-Digits-v0", dict(TINY_SSDKD)
    rows = evaluate_on_seeds(spec, serial_id, tiny, (3, 4))
    assert [r["seed"] for r in rows] == [3, 4]
    assert rows[0]["test_accuracy"] == run_cell(Cell(spec, serial_id, tiny, 3, policy_seed=3))["test_accuracy"]


def test_a_policy_that_holds_a_knob_fixed_is_evaluated_with_it_held_batched_or_not(tiny_small_buffer):
    import gymnasium as gym

    names = list(gym.make(SCENARIOS, **HELDOUT).unwrapped.action_names)
    asks, at_one = [0.5] * len(names), [0.5] * len(names)
    asks[names.index("lr_scale")], at_one[names.index("lr_scale")] = 1.0, 0.0
    held = PolicySpec("held", "static", {"action": asks}, fixed_knobs=("lr_scale",))
    reference = PolicySpec("reference", "static", {"action": at_one})
    free = PolicySpec("free", "static", {"action": asks})
    seeds = (2000, 2001)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "policy")} for r in rows]  # noqa: E731
    batched = run_batch([(held, s) for s in seeds], SCENARIOS, HELDOUT)
    assert strip(batched) == strip(run_batch([(reference, s) for s in seeds], SCENARIOS, HELDOUT))
    assert strip(batched) == strip([run_cell(Cell(held, SCENARIOS, HELDOUT, s)) for s in seeds])
    assert strip(batched) != strip(run_batch([(free, s) for s in seeds], SCENARIOS, HELDOUT))
    with pytest.raises(ValueError, match="same knobs fixed"):
        run_batch([(held, 2000), (free, 2000)], SCENARIOS, HELDOUT)


def test_the_leaderboard_resumes_reports_failures_and_writes_its_files(tiny_small_buffer, tmp_path, monkeypatch):
    cfg = config(learners=("ppo_schedule",), timesteps={"ppo_schedule": 4}, hyperparams={"ppo_schedule": TINY_PPO})
    real_train = leaderboard.train_learner
    calls = []

    def failing_once(task):
        calls.append(task.seed)
        if task.seed == 1 and calls.count(1) == 1:
            raise RuntimeError("diverged on purpose")
        return real_train(task)

    monkeypatch.setattr(leaderboard, "train_learner", failing_once)
    with Runner("local") as runner:
        first = run_leaderboard(cfg, runner, tmp_path, progress=False)
    assert [(f["policy"], f["run"]) for f in first.failed] == [("ppo_schedule", 1)]
    assert "diverged on purpose" in first.failed[0]["error"] and failure_path(tmp_path, "ppo_schedule", 1).exists()
    assert {(c["policy"], c["run"]) for c in first.cells} == {("constant", 0), ("random", 0), ("random", 1),
                                                              ("static", 0), ("ppo_schedule", 0)}
    # the second start runs only the failed cell: every finished one is read back
    monkeypatch.setattr(leaderboard, "evaluate", _counting(leaderboard.evaluate, seen := []))
    with Runner("local") as runner:
        second = run_leaderboard(cfg, runner, tmp_path, progress=False)
    assert seen == [("ppo_schedule", 1)] and not second.failed and calls == [0, 1, 1]
    assert not failure_path(tmp_path, "ppo_schedule", 1).exists()
    old = {(r["policy"], r["run"], r["seed"]): r["test_accuracy"] for r in first.rows}
    assert all(old[(r["policy"], r["run"], r["seed"])] == r["test_accuracy"] for r in second.rows if (r["policy"], r["run"], r["seed"]) in old)
    gains = score_matrices(second.rows, "test_accuracy")
    assert gains["constant"].shape == (1, 3) and (gains["constant"] == 0).all()
    assert gains["random"].shape == gains["ppo_schedule"].shape == (2, 3)
    assert (gains["random"][0] != gains["random"][1]).any()  # random's two runs draw from different seeds
    paths = write_leaderboard(second, tmp_path)
    with paths["scores"].open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 3 * (1 + 2 + 1 + 2) and {"policy", "run", "seed", "instance", "gain_pp", "test_accuracy"} <= set(table[0])
    report = json.loads(paths["json"].read_text())
    assert [e["policy"] for e in report["entries"]] == ["constant", "random", "static", "ppo_schedule"]
    assert "IQM gain" in paths["md"].read_text() and paths["png"].stat().st_size > 10_000
    # another budget of the same learner would mix two experiments in one table: refused before any work
    with Runner("local") as runner, pytest.raises(ValueError, match="another budget of ppo_schedule"):
        run_leaderboard(config(learners=("ppo_schedule",), timesteps={"ppo_schedule": 8},
                               hyperparams={"ppo_schedule": TINY_PPO}), runner, tmp_path, progress=False)
    # other held-out seeds would not be comparable: the folder is refused, naming what differs
    with Runner("local") as runner, pytest.raises(ValueError, match=r"another configuration \(eval_seeds differ\)"):
        run_leaderboard(config(eval_seeds=(2000, 2001)), runner, tmp_path, progress=False)


def _counting(fn, seen):
    def wrapper(config, spec, run):
        seen.append((spec.label, run))
        return fn(config, spec, run)
    return wrapper


def test_a_folder_holds_one_configuration(tiny_small_buffer, tmp_path):
    with Runner("local") as runner:
        run_leaderboard(config(oracles=(), train_seeds=(0,)), runner, tmp_path, progress=False)
        # more seeds extend it; other held-out seeds would not be comparable
        extended = run_leaderboard(config(oracles=(), train_seeds=(0, 1)), runner, tmp_path, progress=False)
        assert {(c["policy"], c["run"]) for c in extended.cells} == {("constant", 0), ("random", 0), ("random", 1)}
        assert cell_path(tmp_path, "random", 1).exists()
        with pytest.raises(ValueError, match="eval_seeds differ"):
            run_leaderboard(config(oracles=(), eval_seeds=(2000, 2005)), runner, tmp_path, progress=False)


@pytest.mark.parametrize("changes, message", [
    (dict(learners=("walk",)), "unknown learner 'walk'"),
    (dict(baselines=("oracle",)), "unknown baselines"),
    (dict(oracles=("best",)), "unknown oracles"),
    (dict(eval_seeds=(1000, 2000)), "overlap in \\[1000\\]"),
    (dict(train_seeds=()), "at least one training seed"),
    (dict(workers=0), "must be >= 1"),
    (dict(env_id="DistillGym/SSDKD-Digits-v1", learners=("ppo_schedule",)), "no one-decision-per-run id"),
])
def test_bad_configurations_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        config(**changes)


def test_the_leaderboard_runs_unchanged_on_a_condensation_id(tmp_path):
    # no lockstep engine there: the episodes run one at a time, with the same cells and report
    env_id, tiny = "DistillGym/Condense-DD-Digits-v0", dict(iterations=3, real_batch=16, net_width=8, device="cpu")
    cfg = LeaderboardConfig(env_id=env_id, learners=(), baselines=("constant", "scripted"), oracles=(), train_seeds=(0,),
                            search_seeds=(), eval_seeds=(700, 701), train_env_kwargs=tiny, eval_env_kwargs=tiny, reps=100)
    with Runner("local") as runner:
        result = run_leaderboard(cfg, runner, tmp_path, progress=False)
    assert {r["policy"] for r in result.rows} == {"constant", "scripted"} and len(result.rows) == 4
    assert all(0 < r["test_accuracy"] <= 1 for r in result.rows)
    assert write_leaderboard(result, tmp_path)["md"].exists()


def test_the_command_line_reads_budgets_per_learner():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ablate", Path(__file__).resolve().parents[1] / "scripts" / "ablate.py")
    ablate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablate)
    learners = ("ppo_schedule", "sac")
    assert ablate.parse_timesteps(["320", "sac=4000"], learners) == {"ppo_schedule": 320, "sac": 4000}
    for bad, message in (("-3", "positive integer"), ("td3=10", "not among the learners"), ("x", "positive integer")):
        with pytest.raises(ValueError, match=message):
            ablate.parse_timesteps([bad], learners)
