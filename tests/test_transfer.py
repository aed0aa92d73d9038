"""Transfer (agents/evaluation/transfer.py, scripts/bench_transfer.py): a headroom run's policies run unchanged on
another configuration, paired with the constants there; foreign reports, vanished models and envs on
which the policies cannot act are named."""

from __future__ import annotations

import json

import pytest

import envs  # noqa: F401
from agents.evaluation import HeadroomConfig, Runner, run_headroom, write_report
from agents.evaluation.transfer import TransferConfig, run_transfer
from agents.evaluation.transfer import write_report as write_transfer

DIGITS = "DistillGym/SSDKD-Digits-v0"
TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")
#: another run the policies never saw: another budget and buffer
OTHER = dict(TINY, rounds=2, buffer_capacity=24, synth_batch=12)


@pytest.fixture(scope="module")
def source(tmp_path_factory, digits_teacher):
    """A finished headroom run on the tiny digits env: constant, a searched static action and PPO."""
    out = tmp_path_factory.mktemp("headroom")
    config = HeadroomConfig(DIGITS, train_env_kwargs=TINY, eval_env_kwargs=TINY, train_seeds=(1000,), eval_seeds=(2000, 2001),
                            policies=("constant", "static", "ppo"), trials=2, knobs=("alpha",), objective="test_accuracy",
                            timesteps={"ppo": 24})
    with Runner("local") as runner:
        result = run_headroom(config, runner, out=out, progress=False)
    write_report(result, out)
    return out / "headroom.json"


def test_the_policies_run_unchanged_and_paired_on_the_other_configuration(source, tmp_path):
    with Runner("local") as runner:
        result = run_transfer(TransferConfig(source, DIGITS, OTHER, eval_seeds=(3000, 3001, 3002)), runner, progress=False)
    assert [s.policy for s in result.summaries] == ["constant", "static", "ppo"]
    for name in ("constant", "static", "ppo"):
        rows = [r for r in result.rows if r["policy"] == name]
        assert sorted(r["seed"] for r in rows) == [3000, 3001, 3002] and all(r["steps"] == OTHER["rounds"] for r in rows)
    report = json.loads(source.read_text())
    static = next(p for p in report["policies"] if p["label"] == "static")
    assert result.specs[1].hyperparams == static["hyperparams"]  # the searched action, not searched again
    paths = write_transfer(result, tmp_path / "transfer")
    written = json.loads(paths["json"].read_text())
    assert written["source_env_id"] == DIGITS and len(written["episodes"]) == 9
    assert "| ppo | 3 |" in paths["md"].read_text() and paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_a_subset_of_policies_keeps_the_reference(source):
    with Runner("local") as runner:
        result = run_transfer(TransferConfig(source, DIGITS, OTHER, eval_seeds=(3000,), policies=("static",)), runner,
                              progress=False)
    assert [s.policy for s in result.summaries] == ["constant", "static"]


def test_what_cannot_transfer_is_named(source, tmp_path):
    with Runner("local") as runner:
        with pytest.raises(ValueError, match="other action names"):  # per-class knobs: a wider action
            run_transfer(TransferConfig(source, DIGITS, dict(TINY, class_knobs=True), eval_seeds=(3000,)), runner)
        with pytest.raises(ValueError, match="no policy \\['sac'\\]"):
            run_transfer(TransferConfig(source, DIGITS, OTHER, eval_seeds=(3000,), policies=("sac",)), runner)
        foreign = tmp_path / "foreign.json"
        foreign.write_text(json.dumps({"hello": 1}))
        with pytest.raises(ValueError, match="is not a headroom report"):
            run_transfer(TransferConfig(foreign, DIGITS, OTHER), runner)
        with pytest.raises(ValueError, match="cannot read the headroom report"):
            run_transfer(TransferConfig(tmp_path / "missing.json", DIGITS, OTHER), runner)
        moved = json.loads(source.read_text())
        for policy in moved["policies"]:
            if policy["model_dir"]:
                policy["model_dir"] = str(tmp_path / "gone")
        (tmp_path / "moved.json").write_text(json.dumps(moved))
        with pytest.raises(ValueError, match="ppo's trained model is gone"):
            run_transfer(TransferConfig(tmp_path / "moved.json", DIGITS, OTHER), runner)


def test_the_script_writes_its_report_and_names_errors(source, tmp_path, monkeypatch, capsys):
    from test_scripts import run_script

    out = tmp_path / "out"
    args = [str(source), "--env-id", DIGITS, "--env-kwargs", *[f"{k}={v}" for k, v in OTHER.items()],
            "--eval-seeds", "3000-3001", "--policies", "static", "--no-progress", "--out", str(out)]
    assert run_script("bench_transfer.py", args, monkeypatch) == 0
    assert (out / "transfer.md").exists() and "| static | 2 |" in capsys.readouterr().out
    assert run_script("bench_transfer.py", [str(tmp_path / "none.json"), "--env-id", DIGITS], monkeypatch) == 2
    assert "cannot read the headroom report" in capsys.readouterr().err
