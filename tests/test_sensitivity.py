"""Knob-group headroom (agents/evaluation/sensitivity.py, scripts/bench_sensitivity.py): each group searches
only its own action entries, per-class knobs entry by entry; the paired gain is computed seed by seed;
finished cells are kept; the map's table and heat map are written; bad configurations are refused."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import agents.evaluation.sensitivity as sensitivity
import envs  # noqa: F401
from agents.evaluation.batched import close_vector_envs
from agents.evaluation.sensitivity import BASIC_GROUPS, SensitivityConfig, group_dims, paired_gain, run_sensitivity
from agents.evaluation.sensitivity_report import compact_knobs, gain_matrix, group_label, plot_sensitivity, sensitivity_markdown
from env_configs import TINY_SSDKD

DIGITS = "DistillGym/SSDKD-Digits-v1"
TINY = {**TINY_SSDKD, "priority_knobs": True, "class_knobs": True}


@pytest.fixture
def tiny_config(digits_teacher):
    yield lambda **changes: SensitivityConfig(**{**dict(
        env_id=DIGITS, groups=("selection", "replacement"), kinds=("static",), train_env_kwargs=TINY,
        eval_env_kwargs=TINY, search_seeds=(1000, 1001), eval_seeds=(2000, 2001, 2002), trials=3, resamples=200), **changes})
    close_vector_envs()


def test_groups_expand_per_class_knobs_and_keep_only_what_the_env_exposes(digits_teacher):
    env = gym.make(DIGITS, **TINY)
    assert group_dims(env, "selection") == ["alpha", "beta", *(f"class_priority/{c}" for c in range(10))]
    assert group_dims(env, "modulation") == ["gamma", "diversity", *(f"class_weights/{c}" for c in range(10))]
    assert group_dims(env, "learning_rate") == []  # lr_knob is off in this configuration
    plain = gym.make(DIGITS, **TINY_SSDKD)
    assert group_dims(plain, "selection") == ["alpha", "beta"]
    assert group_dims(env, "selection_modulation") == group_dims(env, "selection") + group_dims(env, "modulation")
    # every knob of the SSD-KD env belongs to exactly one basic group
    every = [k for knobs in BASIC_GROUPS.values() for k in knobs]
    assert sorted(every) == sorted(spec.name for spec in gym.make(DIGITS, **{**TINY, "replace_knob": True,
                                                                              "lr_knob": True}).unwrapped.knob_specs)
    with pytest.raises(ValueError, match="unknown knob group 'speed'.*selection"):
        group_dims(env, "speed")


def test_the_paired_gain_is_taken_seed_by_seed():
    reference = [{"seed": s, "test_accuracy": a} for s, a in ((1, 0.50), (2, 0.60), (3, 0.70))]
    rows = [{"seed": s, "test_accuracy": a} for s, a in ((3, 0.73), (1, 0.49), (2, 0.62))]  # another order
    gain = paired_gain(rows, reference, resamples=500)
    assert gain["diffs"] == pytest.approx([3.0, -1.0, 2.0])
    assert gain["gain"] == pytest.approx(4.0 / 3.0) and gain["win_rate"] == pytest.approx(2 / 3)
    assert -1.0 - 1e-9 <= gain["ci"][0] < gain["gain"] < gain["ci"][1] <= 3.0 + 1e-9
    with pytest.raises(ValueError, match="same held-out seeds"):
        paired_gain(rows[:2], reference)


def test_per_class_knobs_are_reported_as_their_range():
    values = {"alpha": 0.6, "class_priority/0": 0.5, "class_priority/1": 2.0, "class_priority/2": 1.0}
    assert compact_knobs(values) == "alpha 0.6, class_priority 0.5–2 (3)"
    assert group_label("selection_modulation") == "selection + modulation" and group_label("learning_rate") == "learning rate"


def test_bad_configurations_are_refused_by_name():
    with pytest.raises(ValueError, match="overlap in \\[2000\\]"):
        SensitivityConfig(search_seeds=(1000, 2000), eval_seeds=(2000,))
    with pytest.raises(ValueError, match="unknown groups or kinds \\['speed'\\]"):
        SensitivityConfig(groups=("speed",))
    with pytest.raises(ValueError, match="trials >= 1"):
        SensitivityConfig(trials=0)


def test_a_group_moves_only_its_own_entries_cells_are_kept_and_the_map_is_written(tiny_config, tmp_path, monkeypatch):
    config = tiny_config()
    result = run_sensitivity(config, tmp_path / "run", progress=False)
    assert result["skipped_groups"] == ["replacement"]  # this configuration exposes no replace fraction
    (cell,) = result["cells"]
    assert cell["group"] == "selection" and len(cell["dims"]) == 12 and len(cell["trial_values"]) == 3
    env = gym.make(DIGITS, **TINY)
    penv = env.unwrapped
    base = penv.action_from_knobs(penv.process.Knobs())
    action = np.asarray(cell["spec"]["hyperparams"]["action"])
    moved = [penv.action_names[i] for i in np.flatnonzero(~np.isclose(action, base))]
    assert set(moved) <= set(cell["dims"])  # γ, diversity and the class targets stay at the constants
    reference = json.loads((tmp_path / "run" / "cells" / "reference" / "constant.json").read_text())["payload"]
    assert [r["seed"] for r in cell["rows"]] == [r["seed"] for r in reference] == [2000, 2001, 2002]
    assert cell["diffs"] == pytest.approx([100 * (a["test_accuracy"] - b["test_accuracy"])
                                           for a, b in zip(cell["rows"], reference)])

    def no_search(*args, **kwargs):
        raise AssertionError("a finished cell was searched again")

    monkeypatch.setattr(sensitivity, "search", no_search)
    again = run_sensitivity(config, tmp_path / "run", progress=False)
    assert again["cells"] == result["cells"]
    # groups may be added to a study's folder; a setting that changes its numbers may not
    assert run_sensitivity(tiny_config(groups=("selection",)), tmp_path / "run", progress=False)["cells"] == result["cells"]
    with pytest.raises(ValueError, match=r"another configuration \(trials differ\)"):
        run_sensitivity(tiny_config(trials=4), tmp_path / "run", progress=False)

    labels, groups, gain, low, high = gain_matrix([again])
    assert labels == ["SSDKD-Digits-v1 (static)"] and groups == ["selection"] and gain[0, 0] == pytest.approx(cell["gain"])
    table = sensitivity_markdown([again])
    assert "| SSDKD-Digits-v1 (static) |" in table and "class_priority " in table and "(10)" in table
    png = plot_sensitivity([again], tmp_path / "map.png", title="test")
    assert png.stat().st_size > 1000


def test_the_script_writes_the_map(tiny_config, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_sensitivity.py"
    spec = importlib.util.spec_from_file_location("bench_sensitivity", path)
    bench_sensitivity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_sensitivity)
    bench_sensitivity.main(["--env-ids", DIGITS, "--groups", "selection", "--kinds", "schedule", "--trials", "2",
                            "--search-seeds", "1000", "--eval-seeds", "2000-2001", "--workers", "1",
                            "--train-env-kwargs", *[f"{k}={v}" for k, v in TINY.items()],
                            "--eval-env-kwargs", *[f"{k}={v}" for k, v in TINY.items()],
                            "--resamples", "100", "--out", str(tmp_path), "--no-progress"])
    assert "SSDKD-Digits-v1 (schedule)" in capsys.readouterr().out
    for name in ("sensitivity.json", "sensitivity.md", "sensitivity.png", "SSDKD-Digits-v1/sensitivity.json"):
        assert (tmp_path / name).is_file(), name
    with pytest.raises(SystemExit):
        bench_sensitivity.main(["--search-seeds", "2000", "--eval-seeds", "2000"])
    assert "overlap" in capsys.readouterr().err
