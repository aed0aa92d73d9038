"""The predictive-validity study (agents/evaluation/validity.py, validity_report.py, cells.py,
scripts/bench_validity.py): the cell store refuses other settings and re-makes corrupt cells; the rank
agreement and gains are computed from hand-made numbers; random policies are reproducible and keep the
learning rate where asked; a tiny study runs every policy on the same seeds of a fast tier and the
validation tier, resumes without re-running, and writes its report."""

from __future__ import annotations

import json

import numpy as np
import pytest

import agents.evaluation.validity as validity
from agents.evaluation.backends import Runner
from agents.evaluation.batched import close_vector_envs
from agents.evaluation.cells import CellStore
from agents.evaluation.episodes import PolicySpec
from agents.evaluation.validity import ValidityConfig, ValidityResult, random_policies, run_validity, tier_name
from agents.evaluation.validity_report import (agreement_table, gain_matrix, gains_csv, markdown_report, policy_kind, rank_agreement,
                                               result_from_files, write_validity)
from env_configs import use_small_fashion_mnist, use_tiny_family

FAST = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
VALIDATION = "DistillGym/SSDKD-FashionMNIST-Paper-Scenarios-v1"


def test_a_cell_store_keeps_refuses_and_remakes(tmp_path):
    store = CellStore(tmp_path, {"trials": 3, "workers": 1}, ignore=("workers",))
    made = []
    payload, found = store.get_or_make("eval/a/constant", {"seeds": [1, 2]}, lambda: made.append(1) or [{"x": 1.5}])
    assert payload == [{"x": 1.5}] and not found
    assert store.get_or_make("eval/a/constant", {"seeds": [1, 2]}, lambda: made.append(1) or [])[0] == [{"x": 1.5}]
    assert made == [1]  # the second call read the cell
    with pytest.raises(ValueError, match="made with other settings"):
        store.read("eval/a/constant", {"seeds": [1, 2, 3]})
    CellStore(tmp_path, {"trials": 3, "workers": 2}, ignore=("workers",))  # a worker count is not a new study
    with pytest.raises(ValueError, match="another configuration \\(trials differ\\)"):
        CellStore(tmp_path, {"trials": 4, "workers": 1}, ignore=("workers",))
    path = store.path("eval/a/constant")
    path.write_text(path.read_text()[:-40])  # a truncated file
    with pytest.warns(UserWarning, match="truncated or corrupt"):
        assert store.read("eval/a/constant", {"seeds": [1, 2]}) is None
    store.write("eval/a/constant", {"seeds": [1, 2]}, [{"x": 1.5}])
    cell = json.loads(path.read_text())
    cell["payload"][0]["x"] = 9.0  # an edit the JSON parser cannot see
    path.write_text(json.dumps(cell))
    with pytest.warns(UserWarning, match="checksum"):
        assert store.read("eval/a/constant", {"seeds": [1, 2]}) is None


def test_gains_are_paired_by_seed_in_points():
    rows = [{"tier": "t", "policy": p, "seed": s, "test_accuracy": a}
            for p, s, a in (("constant", 1, 0.5), ("constant", 2, 0.6), ("x", 2, 0.65), ("x", 1, 0.49), ("y", 1, 0.7))]
    gains = gain_matrix(rows, "t", ["x", "y"], [1, 2])
    assert gains[0] == pytest.approx([-1.0, 5.0])
    assert gains[1, 0] == pytest.approx(20.0) and np.isnan(gains[1, 1])  # y missed seed 2
    with pytest.raises(ValueError, match="constants were not run on seeds \\[3\\]"):
        gain_matrix(rows, "t", ["x"], [1, 3])


def test_rank_agreement_of_hand_made_tiers():
    rng = np.random.default_rng(0)
    truth = np.linspace(-3, 3, 12)[:, None]
    fast = truth + 0.1 * rng.standard_normal((12, 8))
    same = 2 * truth + 0.1 * rng.standard_normal((12, 8))
    rho, low, high = rank_agreement(fast, same, reps=300)
    assert rho == pytest.approx(1.0) and 0.9 < low <= high <= 1.0
    rho, low, high = rank_agreement(fast, -same, reps=300)
    assert rho == pytest.approx(-1.0) and -1.0 <= low <= high < -0.9
    noise = rng.standard_normal((12, 8)) * 5
    rho, low, high = rank_agreement(fast, noise, reps=300)
    assert low < rho < high and low < 0.5  # unrelated tiers: the interval is wide


def test_the_viable_column_ranks_only_the_policies_the_fast_tier_keeps():
    # the tiers agree on which policies break the student and disagree on every one the fast tier keeps
    fast_gain, valid_gain = [-30, -20, 1, 2, 3, 4], [-60, -40, 4, 3, 2, 1]
    config = ValidityConfig(fast_ids=(FAST,), test_seeds=(5000, 5001), learners=(), resamples=200)
    rows = [{"tier": tier, "policy": "constant", "seed": s, "test_accuracy": 0.5} for tier in (FAST, VALIDATION) for s in (5000, 5001)]
    for i, (f, v) in enumerate(zip(fast_gain, valid_gain)):
        rows += [{"tier": tier, "policy": f"random-static-{i}", "seed": s, "test_accuracy": 0.5 + g / 100}
                 for tier, g in ((FAST, f), (VALIDATION, v)) for s in (5000, 5001)]
    result = ValidityResult(config, rows, ["constant", *(f"random-static-{i}" for i in range(6))], 0.0)
    (entry,) = agreement_table(result)
    assert entry["rho"][0] == pytest.approx(1 - 6 * 20 / (6 * 35))  # all six: carried by the two that break it
    assert entry["viable_policies"] == 4 and entry["rho_viable"][0] == pytest.approx(-1.0)
    assert "ρ, above −2 there" in markdown_report(result)


def test_random_policies_are_reproducible_and_keep_the_learning_rate_where_asked():
    names = ["alpha", "beta", "gamma", "diversity", "replace_fraction", "lr_scale"]
    config = ValidityConfig(random_policies=4)
    specs = random_policies(config, names)
    assert [s.label for s in specs] == ["random-static-0", "random-static-1", "random-static-2-lr_fixed",
                                        "random-static-3-lr_fixed", "random-schedule-0", "random-schedule-1",
                                        "random-schedule-2-lr_fixed", "random-schedule-3-lr_fixed"]
    assert [json.dumps(s.hyperparams) for s in specs] == [json.dumps(s.hyperparams) for s in random_policies(config, names)]
    assert specs[2].hyperparams["action"][5] == 0.0 and specs[0].hyperparams["action"][5] != 0.0
    assert specs[6].hyperparams["start"][5] == 0.0 == specs[6].hyperparams["end"][5]
    assert {policy_kind(s.label) for s in specs} == {"random"} and policy_kind("constant") == "constant"
    assert policy_kind("oracle-static-learning_rate") == "oracle" and policy_kind("a2c_schedule-seed0") == "learner"


def test_bad_studies_are_refused():
    with pytest.raises(ValueError, match="may not use test seeds \\(\\[5000\\].*5000-5999"):
        ValidityConfig(search_seeds=(5000,))
    with pytest.raises(ValueError, match="no validity settings"):
        ValidityConfig(fast_ids=("DistillGym/SSDKD-Digits-v1",))
    with pytest.raises(ValueError, match="unknown learner"):
        ValidityConfig(learners=("sgd",))
    assert tier_name(VALIDATION) == "FashionMNIST-Paper-v1"


@pytest.fixture
def tiny_tiers(tmp_path, monkeypatch):
    use_small_fashion_mnist(tmp_path, monkeypatch)
    for env_id in (FAST, VALIDATION):
        use_tiny_family(monkeypatch, envs_family(env_id), (0.01, 0.02))
    yield
    close_vector_envs()


def envs_family(env_id: str) -> str:
    import envs

    return envs.REGISTERED[env_id].family


def test_a_tiny_study_runs_the_same_policies_on_both_tiers_and_resumes(tiny_tiers, tmp_path, monkeypatch):
    config = ValidityConfig(fast_ids=(FAST,), test_seeds=(5000, 5001), random_policies=2, search_groups=("learning_rate",),
                            search_kinds=("static",), search_seeds=(1000,), trials=2, learners=(), resamples=100)
    out = tmp_path / "study"
    ready = run_validity(config, out, Runner(), progress=False, tiers=(VALIDATION,), ready_only=True)
    assert ready.policies == ["constant", "random-static-0", "random-static-1-lr_fixed", "random-schedule-0",
                              "random-schedule-1-lr_fixed"]  # no search, no training
    part = run_validity(config, out, Runner(), progress=False, tiers=(VALIDATION,), policies=("oracle-*",))
    assert part.policies == ["oracle-static-learning_rate"]
    with pytest.raises(ValueError, match="no policy of the study matches"):
        run_validity(config, out, Runner(), progress=False, policies=("ppo*",))
    result = run_validity(config, out, Runner(), progress=False)
    assert result.rows[:len(ready.rows)] == ready.rows  # the full run read the cells the first one made
    assert result.policies == ["constant", "random-static-0", "random-static-1-lr_fixed", "random-schedule-0",
                               "random-schedule-1-lr_fixed", "oracle-static-learning_rate"]
    assert len(result.rows) == 6 * 2 * 2
    for tier in (FAST, VALIDATION):
        assert sorted((r["policy"], r["seed"]) for r in result.rows if r["tier"] == tier) == sorted(
            (p, s) for p in result.policies for s in (5000, 5001))
    monkeypatch.setattr(validity, "run_cell", lambda cell: pytest.fail("a finished cell was run again"))
    monkeypatch.setattr(validity, "evaluate_on_seeds", lambda *a, **k: pytest.fail("a finished cell was run again"))
    again = run_validity(config, out, Runner(), progress=False)
    assert again.rows == result.rows
    paths = write_validity(again, out)  # the report beside the cells, as bench_validity writes it
    assert "Spearman" in markdown_report(again) and paths["plot"].stat().st_size > 0
    gains = {line.split(",")[1]: float(line.split(",")[3]) for line in gains_csv(again).splitlines()[1:]
             if line.startswith("FashionMNIST")}
    top = agreement_table(again)[0]["top"][0]  # points stay points in the report (no second x100)
    assert f"{top['policy']} {top['validation_gain']:+.2f}" in markdown_report(again)
    assert top["validation_gain"] == pytest.approx(gains[top["policy"]], abs=1e-3)
    assert run_validity(config, out, Runner(), progress=False).rows == again.rows  # the study's folder still opens
    back = result_from_files(paths["config"], paths["rows"])  # what docs/results keeps is enough to re-plot
    assert back.policies == again.policies and markdown_report(back) == markdown_report(again)
    lines = gains_csv(again).splitlines()
    assert lines[0].startswith("tier,policy,kind,gain_pp") and len(lines) == 1 + 6 * 2
    assert any(line.startswith("FashionMNIST-Paper-v1,constant,constant,0.000") for line in lines)
    from dataclasses import replace

    from distill_core.ssdkd import config as ssdkd_config
    from distill_core.ssdkd.scenarios import FAMILIES

    name = FAMILIES[envs_family(VALIDATION)].preset
    monkeypatch.setitem(ssdkd_config.PRESETS, name, replace(ssdkd_config.PRESETS[name], kd_lr=0.5))
    with pytest.raises(ValueError, match="made with other settings"):  # a changed preset is never mixed in
        run_validity(config, out, Runner(), progress=False)


def test_the_learners_of_a_study_are_trained_once(tmp_path, monkeypatch):
    trained = []

    def fake_train(task):
        trained.append(task.label)
        return {"model_dir": task.out, "label": task.label}

    monkeypatch.setattr(validity, "train_learner", fake_train)
    config = ValidityConfig(learners=("a2c_schedule",), learner_seeds=(0, 1), recommended_id=None)
    store = CellStore(tmp_path, config.settings())
    specs = validity.learner_cells(config, store, tmp_path, Runner())
    assert [s.label for s in specs] == ["a2c_schedule-seed0", "a2c_schedule-seed1"]
    assert all(isinstance(s, PolicySpec) and s.whole_run and s.agent == "a2c" and not s.fixed_knobs for s in specs)
    validity.learner_cells(config, store, tmp_path, Runner())
    assert trained == ["a2c_schedule-seed0", "a2c_schedule-seed1"]
    # a run killed after training seed 2 but before writing its cell keeps the model
    (tmp_path / "models" / "a2c_schedule" / "seed2").mkdir(parents=True)
    (tmp_path / "models" / "a2c_schedule" / "seed2" / "model.zip").write_bytes(b"model")
    validity.learner_cells(ValidityConfig(learners=("a2c_schedule",), learner_seeds=(0, 1, 2), recommended_id=None),
                           CellStore(tmp_path / "other", config.settings()), tmp_path, Runner())
    assert trained == ["a2c_schedule-seed0", "a2c_schedule-seed1", "a2c_schedule-seed0", "a2c_schedule-seed1"]


def test_learners_on_the_recommended_tier_train_there_once_per_knob_group(tmp_path, monkeypatch):
    tasks = []
    monkeypatch.setattr(validity, "train_learner", lambda task: tasks.append(task) or {"model_dir": task.out})
    free = ValidityConfig(learners=("a2c_schedule",), learner_seeds=(0,))
    specs = validity.learner_cells(free, CellStore(tmp_path / "free", free.settings()), tmp_path / "free", Runner())
    assert [s.label for s in specs] == ["a2c_schedule-seed0", "a2c_schedule-MNIST1D-Paper-v1-seed0"]
    assert tasks[1].env_kwargs == {"split": "train", "class_knobs": False, "priority_knobs": False}  # its shared spaces
    tasks.clear()
    config = ValidityConfig(learners=("a2c_schedule",), learner_seeds=(0,), learner_knobs=("all", "learning_rate"))
    specs = validity.learner_cells(config, CellStore(tmp_path, config.settings()), tmp_path, Runner())
    assert [s.label for s in specs] == ["a2c_schedule-seed0", "a2c_schedule-MNIST1D-Paper-v1-seed0",
                                        "a2c_schedule-MNIST1D-Paper-v1-learning_rate-seed0"]
    others = ("alpha", "beta", "class_priority", "gamma", "diversity", "class_weights", "replace_fraction")
    assert [s.fixed_knobs for s in specs] == [(), (), others]
    held = tasks[2]
    assert held.env_id == "DistillGym/SSDKD-MNIST1D-Paper-Schedule-v1"
    assert held.env_kwargs == {"split": "train", "class_knobs": False, "priority_knobs": False, "fixed_knobs": others}
    assert tasks[0].env_kwargs == {"split": "train"}  # the digits learners' cells keep their settings
    assert "fixed_knobs" not in specs[1].settings() and specs[2].settings()["fixed_knobs"] == others
    groups = validity.learner_groups(ValidityConfig(learner_knobs=("all", "learning_rate", "selection_modulation")))
    assert [g.holds_learning_rate for g in groups] == [False, False, False, True]
    with pytest.raises(ValueError, match=r"learner_knobs \['lr'\].*'all'.*learning_rate"):
        ValidityConfig(learner_knobs=("lr",))
