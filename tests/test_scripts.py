"""The command-line entry points, end to end on tiny digits configurations."""

import json
import runpy
import sys

import pytest
import torch

from distill_core.common.checkpoint import load_checkpoint
from distill_core.common.cli import parse_overrides
from distill_core.ssdkd.config import SSDKDConfig

TINY = ["rounds=3", "synth_batch=16", "buffer_capacity=32", "g_steps=2", "kd_steps=4", "probe_size=40", "probe_steps=2", "device=cpu"]


def run_script(name, args, monkeypatch):
    """Run ``scripts/<name>`` as ``__main__`` with ``args``; return its exit code (0 when it just returns)."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    try:
        runpy.run_path(f"scripts/{name}", run_name="__main__")
    except SystemExit as exit_:
        return exit_.code
    return 0


def test_distill_writes_student_metrics_and_pictures(tmp_path, monkeypatch, digits_teacher):
    out = tmp_path / "run"
    run_script("distill.py", ["--preset", "digits", "--method", "ssdkd", "--set", *TINY, "--out", str(out), "--no-progress"], monkeypatch)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples_made"] == 48 and len(metrics["curve"]) == 3
    assert metrics["end_to_end_seconds"] >= metrics["synthesis_seconds"] + metrics["kd_seconds"]
    payload = load_checkpoint(out / "student.pt", expected_format="distill-gym/student/v1")
    assert payload["arch"] == "mlp_bn_half" and isinstance(payload["state_dict"]["classifier.weight"], torch.Tensor)
    for picture in ("samples.png", "curve.png"):
        assert (out / picture).read_bytes()[:4] == b"\x89PNG"


def test_rollout_records_and_replays(tmp_path, monkeypatch, digits_teacher):
    trace = tmp_path / "c.jsonl"
    code = run_script("rollout.py", ["--agent", "constant", "--seeds", "1", "2", "--set", *TINY, "--trace", str(trace)], monkeypatch)
    assert code == 0 and len(trace.read_text().splitlines()) == 2
    assert run_script("rollout.py", ["--replay", str(trace)], monkeypatch) == 0  # every episode reproduced


def test_overrides_are_typed_and_checked():
    assert parse_overrides(["kd_steps=40", "kd_hflip=true", "g_lr=0.5", "student_arch=none"], SSDKDConfig) == {
        "kd_steps": 40, "kd_hflip": True, "g_lr": 0.5, "student_arch": None}
    with pytest.raises(ValueError, match="unknown configuration field 'kd_stepz'"):
        parse_overrides(["kd_stepz=4"], SSDKDConfig)
    with pytest.raises(ValueError, match="kd_steps='four'"):
        parse_overrides(["kd_steps=four"], SSDKDConfig)
    with pytest.raises(ValueError, match="expected key=value"):
        parse_overrides(["kd_steps"], SSDKDConfig)


#: tiny configurations of the condensation methods on digits (seconds per run)
TINY_CONDENSE = {
    "dm": ["images_per_class=2", "real_batch=8", "score_epochs=2", "net_width=16"],
    "dc": ["images_per_class=2", "real_batch=8", "score_epochs=2", "net_width=16", "outer_loop=2", "inner_loop=1"],
    "dd": ["real_batch=16", "net_width=8", "init=random", "num_eval_inits=1"],
}


@pytest.mark.parametrize("method", ["dm", "dc", "dd"])
def test_rollout_works_unchanged_on_condensation_ids(method, tmp_path, monkeypatch):
    trace = tmp_path / f"{method}.jsonl"
    args = ["--env-id", f"DistillGym/Condense-{method.upper()}-Digits-v0", "--agent", "random", "--seeds", "0",
            "--trace", str(trace), "--set", "iterations=2", "device=cpu", *TINY_CONDENSE[method]]
    assert run_script("rollout.py", args, monkeypatch) == 0
    assert run_script("rollout.py", ["--replay", str(trace)], monkeypatch) == 0


@pytest.mark.parametrize("method", ["dm", "dd"])
def test_condense_writes_set_metrics_and_pictures_and_reevaluates_the_same(method, tmp_path, monkeypatch, capsys):
    out = tmp_path / method
    settings = [s for s in TINY_CONDENSE[method] if not s.startswith("images_per_class")]
    args = ["--method", method, "--dataset", "digits", "--ipc", "2", "--eval-models", "2", "--eval-epochs", "10",
            "--set", "iterations=3", *settings, "--out", str(out), "--no-progress"]
    assert run_script("condense.py", args, monkeypatch) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 20 and len(metrics["test_accuracies"]) == 2 and 0.0 <= metrics["test_mean"] <= 1.0
    assert [point["iteration"] for point in metrics["curve"]] == [0, 1, 2, 3]
    assert metrics["torch_threads"] == torch.get_num_threads()  # the times depend on it
    for picture in ("synthetic.png", "score.png"):
        assert (out / picture).read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # the saved set alone reproduces the reported numbers (same recipe, same seed)
    assert run_script("condense.py", ["--evaluate", str(out / "synthetic.pt")], monkeypatch) == 0
    assert f"test accuracy {100 * metrics['test_mean']:.2f} ± {100 * metrics['test_std']:.2f} %" in capsys.readouterr().out


def test_condense_refuses_unknown_fields_and_settings_for_coresets(tmp_path, monkeypatch, capsys):
    assert run_script("condense.py", ["--method", "dd", "--set", "step_sizez=3"], monkeypatch) == 2
    assert "unknown configuration field 'step_sizez'" in capsys.readouterr().err
    assert run_script("condense.py", ["--method", "random", "--set", "iterations=3"], monkeypatch) == 2
    assert "--set does not apply to random" in capsys.readouterr().err


def test_ssdkd_benchmark_judges_the_goals_from_the_curves():
    bench = runpy.run_path("scripts/bench_ssdkd.py", run_name="bench")
    curve = [{"seconds": 100.0, "test_accuracy": 0.80}, {"seconds": 200.0, "test_accuracy": 0.90}]
    assert bench["time_to_reach"](curve, 0.85) == 200.0 and bench["time_to_reach"](curve, 0.95) is None

    def run(name, acc, seconds, curve):
        return {"name": name, "preset": "fashion_mnist", "seed": 0, "test_accuracy": acc, "end_to_end_seconds": seconds, "curve": curve}

    mb = run("memory_bank", 0.85, 600.0, [{"seconds": 600.0, "test_accuracy": 0.85}])
    fast = run("ssdkd", 0.90, 500.0, [{"seconds": 150.0, "test_accuracy": 0.86}, {"seconds": 500.0, "test_accuracy": 0.90}])
    lines = bench["goal_lines"]([fast, mb, run("real_kd", 0.89, 100.0, [])]).splitlines()
    assert all(line.endswith("| yes |") for line in lines[2:]), lines  # 90 % ≥ 89.5, +5 points, 0.25× MB's time, ≥ real
    slow = run("ssdkd", 0.86, 700.0, [{"seconds": 700.0, "test_accuracy": 0.86}])
    verdicts = {line.split(" | ")[0].lstrip("| "): line.rsplit(" | ", 2)[-1] for line in bench["goal_lines"]([slow, mb]).splitlines()[2:]}
    assert verdicts == {"mean test accuracy ≥ 89.5 %": "**no** |", "each run ≤ 10 min end to end": "**no** |",
                        "≥ 3 points over the memory bank": "**no** |",
                        "reaches the memory bank's final accuracy in ≤ 1/3 of its time": "**no** |"}


def test_demo_says_where_the_knobs_moved_within_the_run(digits_teacher):
    from types import SimpleNamespace

    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401

    demo = runpy.run_path("scripts/demo.py")  # its functions, without running main
    env = gym.make("DistillGym/SSDKD-Digits-v0", rounds=3, device="cpu")
    rising = np.linspace(-1, 1, 6)[:, None] * np.ones((1, env.action_space.shape[0]), np.float32)  # one 6-round episode
    result = SimpleNamespace(traces=[{"agent": demo["LEARNER"], "actions": rising.tolist()}, {"agent": "constant", "actions": [[0.5] * 4]}])
    text = demo["learned_knobs"](result, env)
    paper = demo["knob_values"](env, np.zeros(env.action_space.shape, np.float32))
    early, late = demo["knob_values"](env, rising[:2].mean(axis=0)), demo["knob_values"](env, rising[-2:].mean(axis=0))
    assert early["alpha"] < paper["alpha"] < late["alpha"]
    assert f"alpha {paper['alpha']:.3g} → {early['alpha']:.3g} → {late['alpha']:.3g}" in text
