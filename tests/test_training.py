"""Resuming a training run continues every log and curve (Monitor CSV, evaluations.npz, progress.csv), an
unreadable newest checkpoint falls back to the previous one with a warning, and subprocess training envs
start their workers with forkserver."""

from __future__ import annotations

import csv
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.save_util import load_from_pkl

import envs  # noqa: F401
from agents.checkpoints import AppendingCSVOutputFormat, checkpoint_companions, load_checkpoint
from agents.training import make_train_env, train_agent

DIGITS = "DistillGym/SSDKD-Digits-v0"
TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")
# a rollout, an evaluation and a checkpoint every 12 steps (4 episodes of 3 rounds)
PPO = dict(n_steps=12, batch_size=12, n_epochs=1)
EVERY = 12


def _train(out: Path, timesteps: int, resume: bool = False, agent: str = "ppo", **extra) -> object:
    hyperparams = PPO if agent == "ppo" else dict(learning_starts=6, batch_size=8)
    return train_agent(agent, DIGITS, out=out, timesteps=timesteps, env_kwargs=TINY, hyperparams=hyperparams,
                       normalize=agent == "ppo", eval_seeds=(900, 901), eval_freq=EVERY, checkpoint_freq=EVERY,
                       resume=resume, progress_bar=False, tensorboard=False, device="cpu", **extra)


def _progress_steps(out: Path) -> list[int]:
    with open(out / "logs" / "progress.csv") as handle:
        return [int(float(row["time/total_timesteps"])) for row in csv.DictReader(handle)]


def _assert_logs_cover(out: Path, timesteps: int) -> None:
    lines = (out / "monitor" / "0.monitor.csv").read_text().splitlines()
    assert lines[0].startswith("#") and lines[1] == "r,l,t"  # one header (as SB3's load_results expects)
    rows = list(csv.DictReader(lines[1:]))
    assert len(rows) == timesteps // TINY["rounds"] and sum(int(row["l"]) for row in rows) == timesteps
    times = [float(row["t"]) for row in rows]
    assert times == sorted(times)  # episode times continue from the first part's start
    with np.load(out / "eval" / "evaluations.npz") as saved:
        assert saved["timesteps"].tolist() == list(range(EVERY, timesteps + 1, EVERY))
        assert saved["results"].shape == (timesteps // EVERY, 2)
    # every 12 steps EvalCallback dumps a row and PPO dumps its rollout's row
    assert _progress_steps(out) == [step for step in range(EVERY, timesteps + 1, EVERY) for _ in range(2)]


def test_resume_appends_to_every_log(tmp_path, digits_teacher):
    out = tmp_path / "run"
    first = _train(out, 24)
    assert first.resumed_from is None
    _assert_logs_cover(out, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # every checkpoint is readable: no fallback
        resumed = _train(out, 48, resume=True)
    assert resumed.resumed_from.name == "rl_model_24_steps.zip"
    assert resumed.agent.num_timesteps == 48
    _assert_logs_cover(out, 48)


def test_unreadable_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, digits_teacher):
    out = tmp_path / "run"
    _train(out, 24)
    newest = out / "checkpoints" / "rl_model_24_steps.zip"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a kill while it was written
    with pytest.warns(RuntimeWarning, match=r"rl_model_24_steps\.zip cannot be read .*previous one"):
        loaded = load_checkpoint("ppo", out / "checkpoints", normalize=True, device="cpu")
    assert loaded.steps == 12
    stats_12, _ = checkpoint_companions(loaded.path)
    with open(stats_12, "rb") as handle:
        saved = pickle.load(handle)
    # the statistics are the loaded checkpoint's, not the newest file's (which has seen 24 steps)
    assert loaded.vecnormalize.obs_rms.count == saved.obs_rms.count
    assert np.allclose(loaded.vecnormalize.obs_rms.mean, saved.obs_rms.mean)

    with pytest.warns(RuntimeWarning, match=r"rl_model_24_steps\.zip"):
        resumed = _train(out, 48, resume=True)
    assert resumed.resumed_from.name == "rl_model_12_steps.zip"
    _assert_logs_cover(out, 48)  # what the first run logged after step 12 was dropped, not duplicated


def test_a_missing_replay_buffer_falls_back_with_the_older_buffer(tmp_path, digits_teacher):
    out = tmp_path / "sac"
    _train(out, 24, agent="sac")
    _, replay_24 = checkpoint_companions(out / "checkpoints" / "rl_model_24_steps.zip")
    replay_24.unlink()  # killed between the model and its replay buffer
    with pytest.warns(RuntimeWarning, match=r"rl_model_24_steps\.zip cannot be read \(FileNotFoundError"):
        loaded = load_checkpoint("sac", out / "checkpoints", normalize=False, device="cpu")
    _, replay_12 = checkpoint_companions(loaded.path)
    # (CheckpointCallback runs before the step's transition is stored: 11 transitions at step 12)
    assert loaded.steps == 12 and loaded.agent.replay_buffer.size() == load_from_pkl(replay_12).size() == 11


def test_no_readable_checkpoint_starts_afresh(tmp_path, digits_teacher):
    out = tmp_path / "run"
    _train(out, 12)
    (out / "checkpoints" / "rl_model_12_steps.zip").write_bytes(b"")
    with pytest.warns(RuntimeWarning, match=r"rl_model_12_steps\.zip cannot be read .*no earlier checkpoint"):
        result = _train(out, 12, resume=True)
    assert result.resumed_from is None
    _assert_logs_cover(out, 12)


def test_appending_csv_keeps_rows_and_widens_the_header(tmp_path):
    path = tmp_path / "progress.csv"
    first = Logger(str(tmp_path), [AppendingCSVOutputFormat(str(path))])  # no file yet: as SB3's
    first.record("a", 1)
    first.dump(1)
    first.close()
    second = Logger(str(tmp_path), [AppendingCSVOutputFormat(str(path))])
    second.record("a", 2)
    second.record("b", 3)  # a key the first part never logged
    second.dump(2)
    second.close()
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"a": "1", "b": ""}, {"a": "2", "b": "3"}]


@pytest.mark.timeout(300)
def test_subprocess_train_env_starts_workers_with_forkserver(tmp_path, digits_teacher):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_train_env(DIGITS, TINY, 0, tmp_path / "monitor", False, n_envs=2, vec_env_cls=SubprocVecEnv)
    try:
        assert {process._start_method for process in venv.processes} == {"forkserver"}
        assert venv.reset().shape[0] == 2
    finally:
        venv.close()


@pytest.mark.timeout(300)
def test_the_zoo_n_envs_trains_on_that_many_worker_envs(tmp_path, digits_teacher):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    result = train_agent("ppo", DIGITS, out=tmp_path / "two", timesteps=24, env_kwargs=TINY,
                         hyperparams={**PPO, "n_steps": 6, "n_envs": 2}, normalize=True, eval_seeds=(900,),
                         progress_bar=False, tensorboard=False, device="cpu")
    venv = result.agent.get_env()
    try:
        assert venv.num_envs == 2 and isinstance(venv.venv, SubprocVecEnv)  # VecNormalize over the workers
        assert sorted(p.name for p in (tmp_path / "two" / "monitor").glob("*.csv")) == ["0.monitor.csv", "1.monitor.csv"]
        with np.load(tmp_path / "two" / "eval" / "evaluations.npz") as saved:
            assert saved["timesteps"].tolist() == [6, 12, 18, 24]  # every timesteps // 4 timesteps, not vector steps
    finally:
        venv.close()
    with pytest.raises(ValueError, match="n_envs must be >= 1"):
        train_agent("ppo", DIGITS, out=tmp_path / "none", timesteps=12, env_kwargs=TINY, hyperparams={**PPO, "n_envs": 0},
                    progress_bar=False, tensorboard=False, device="cpu")


def test_a_worker_env_is_built_on_one_torch_thread(digits_teacher):
    import torch

    from agents.training import make_worker_env

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        env = make_worker_env(DIGITS, **TINY)  # what each SubprocVecEnv worker runs first
        assert torch.get_num_threads() == 1 and env.unwrapped.process.config.rounds == TINY["rounds"]
    finally:
        torch.set_num_threads(before)


def test_the_zoo_env_kwargs_configure_training_and_the_evaluation_drops_the_seed_pool(tmp_path, digits_teacher, monkeypatch):
    import agents.training as training

    evaluated_with = []
    make_eval_env = training.make_eval_env
    monkeypatch.setattr(training, "make_eval_env", lambda env_id, kwargs, *rest: evaluated_with.append(kwargs) or
                        make_eval_env(env_id, kwargs, *rest))
    zoo = {"env_kwargs": {"reward_normalization": "paired", "seed_pool": 2, "rounds": 5}}
    result = train_agent("ppo", DIGITS, out=tmp_path / "paired", timesteps=12, env_kwargs=TINY,
                         hyperparams={**PPO, **zoo}, normalize=False, eval_seeds=(900,), progress_bar=False,
                         tensorboard=False, device="cpu")
    train_env = result.agent.get_env().envs[0].unwrapped
    assert (train_env.reward_normalization, train_env.seed_pool) == ("paired", 2)
    assert train_env.process.config.rounds == TINY["rounds"]  # the caller's settings win over the YAML's
    assert train_env.reference_runs <= 2  # 4 episodes, at most 2 distinct runs
    assert evaluated_with == [{**TINY, "reward_normalization": "paired"}]  # held-out seeds, never the pool
    with pytest.raises(ValueError, match="env_kwargs must be a YAML mapping"):
        train_agent("ppo", DIGITS, out=tmp_path / "bad", timesteps=12, env_kwargs=TINY,
                    hyperparams={**PPO, "env_kwargs": "seed_pool=2"}, progress_bar=False, tensorboard=False, device="cpu")


def test_a_checkpoint_holds_the_updates_before_it(tmp_path, digits_teacher):
    """SB3 saves a checkpoint while it collects, so the one at 24 steps (two rollouts of 12 collected, one
    trained on) holds the weights of the 12-step run, however often either run evaluated: PPO's rate and
    clip range are constants and the evaluations draw nothing from the training's random streams."""
    import torch

    from agents.registry import load_agent

    short = train_agent("ppo", DIGITS, out=tmp_path / "short", timesteps=12, env_kwargs=TINY, hyperparams=PPO,
                        normalize=True, eval_seeds=(900,), eval_freq=4, checkpoint_freq=12, progress_bar=False,
                        tensorboard=False, device="cpu")
    _train(tmp_path / "long", 48)  # evaluates and checkpoints every 12 steps
    ours = load_agent("ppo", tmp_path / "long" / "checkpoints" / "rl_model_24_steps.zip").policy.state_dict()
    theirs = short.agent.policy.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_killed_vector_worker_stops_training_with_its_name_and_resume_goes_on(tmp_path, monkeypatch, digits_teacher):
    import os
    import signal

    from env_configs import tiny_kwargs
    from envs.worker_vector import WorkerDiedError, WorkerVectorEnv

    fast = "DistillGym/SSDKD-Digits-v1"
    kwargs = {**tiny_kwargs(fast, monkeypatch), "rounds": 2, "kd_steps": 1, "probe_size": 16}
    hyperparams = dict(n_envs=2, vector_workers=2, n_steps=2, batch_size=4, n_epochs=1)
    step, calls, workers = WorkerVectorEnv.step, [], []

    def killing_step(self, actions):
        calls.append(1)
        workers.extend(self._processes)
        if len(calls) == 5:  # after the checkpoints of steps 4 and 8
            os.kill(self._processes[1].pid, signal.SIGKILL)
        return step(self, actions)

    monkeypatch.setattr(WorkerVectorEnv, "step", killing_step)
    out = tmp_path / "run"
    train = dict(out=out, timesteps=16, env_kwargs=kwargs, hyperparams=hyperparams, eval_seeds=(900,), eval_freq=4,
                 checkpoint_freq=4, progress_bar=False, tensorboard=False, device="cpu")
    with pytest.raises(WorkerDiedError, match=r"worker 1 .* killed by SIGKILL") as raised:
        train_agent("ppo", fast, **train)
    assert any("--resume" in note and str(out / "checkpoints") in note for note in raised.value.__notes__)
    assert not any(p.is_alive() for p in workers), "a failed training run must not leave its workers behind"
    monkeypatch.setattr(WorkerVectorEnv, "step", step)
    resumed = train_agent("ppo", fast, resume=True, **train)
    assert resumed.resumed_from.name == "rl_model_8_steps.zip" and resumed.agent.num_timesteps == 16
    resumed.agent.get_env().close()
