"""The fast tier's native vector envs (``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``):
batched spaces and shapes, Gymnasium's SAME_STEP autoreset with ``final_obs`` / ``final_info``, slot ``i`` of
a vector env reset with seed ``s`` bit for bit the single env reset with ``s + i`` (across its autoreset),
bad input refused by name, and memory flat over 200 resets (measured in a child process of its own).

Three ids: the per-round digits id (one configuration: every slot ends on the same step), the per-round
small-buffer scenario id (budgets of 2 and 3 rounds: slots end and restart on different steps) and the
schedule id over it (one step runs every slot's whole run; the shorter runs wait).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

import envs
from env_configs import tiny_kwargs

DIGITS = "DistillGym/SSDKD-Digits-v1"
SCENARIOS = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
SCHEDULE = "DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v1"
VECTOR_IDS = [DIGITS, SCENARIOS, SCHEDULE]
N = 3
SEED = 11
#: the single-configuration id's runs here: 2 rounds of one inversion and one KD step
SHORT = dict(rounds=2, kd_steps=1, probe_size=16)


def _kwargs(env_id: str, monkeypatch, **extra) -> dict:
    """Test-size keywords of ``env_id`` (a scenario or schedule id: its family made tiny in this process)."""
    kwargs = tiny_kwargs(env_id, monkeypatch)
    if env_id == DIGITS:
        kwargs.update(SHORT)
    return {**kwargs, **extra}


def _make_vec(env_id: str, monkeypatch, num_envs: int = N, **extra) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **_kwargs(env_id, monkeypatch, **extra))


def _actions(rng: np.random.Generator, venv: gym.vector.VectorEnv) -> np.ndarray:
    """Actions of every slot, drawn to include the box's edges (what clipping agents send)."""
    return np.clip(rng.uniform(-1.3, 1.3, venv.action_space.shape), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------- (a) spaces, shapes, autoreset
@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_the_vector_env_batches_the_single_envs_spaces(env_id, monkeypatch, digits_teacher):
    venv = _make_vec(env_id, monkeypatch)
    single = gym.make(env_id, **_kwargs(env_id, monkeypatch))
    assert isinstance(venv, envs.WholeRunVectorEnv if env_id == SCHEDULE else envs.SSDKDVectorEnv)
    assert type(venv.runs.template) is type(single.unwrapped)  # its slots run the id's own single env
    assert venv.runs.template.process.config == single.unwrapped.process.config
    assert venv.num_envs == N and venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.single_action_space == single.action_space and venv.single_observation_space == single.observation_space
    assert venv.action_space == batch_space(single.action_space, N)
    assert venv.observation_space == batch_space(single.observation_space, N)
    assert tuple(venv.action_names) == tuple(single.get_wrapper_attr("action_names"))
    assert tuple(venv.observation_names) == tuple(single.unwrapped.observation_names)


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_reset_and_step_return_batches_in_their_spaces_and_report_ended_runs(env_id, monkeypatch, digits_teacher):
    venv = _make_vec(env_id, monkeypatch)
    obs, info = venv.reset(seed=SEED)
    assert obs.shape == venv.observation_space.shape and obs.dtype == np.float32 and venv.observation_space.contains(obs)
    assert np.asarray(info["run_seed"]).shape == (N,)
    rng, ended = np.random.default_rng(0), np.zeros(N, int)
    for _ in range(7):
        obs, reward, terminated, truncated, info = venv.step(_actions(rng, venv))
        assert obs.shape == venv.observation_space.shape and obs.dtype == np.float32 and venv.observation_space.contains(obs)
        assert reward.shape == (N,) and np.isfinite(reward).all()
        assert terminated.shape == truncated.shape == (N,) and terminated.dtype == truncated.dtype == np.bool_
        done = terminated | truncated
        if env_id == SCHEDULE:  # one step is one whole run: every episode ends
            assert terminated.all() and not truncated.any()
        if not done.any():
            assert "final_obs" not in info and "final_info" not in info
            continue
        ended += done
        assert np.array_equal(info["_final_obs"], done) and np.array_equal(info["_final_info"], done)
        for slot in np.flatnonzero(done):
            final_obs = info["final_obs"][slot]
            assert final_obs.shape == venv.single_observation_space.shape and venv.single_observation_space.contains(final_obs)
            diverged = info["final_info"]["diverged"][slot]
            assert diverged or final_obs[venv.observation_names.index("progress")] == 1.0  # the ended run's last observation
            assert obs[slot][venv.observation_names.index("progress")] == 0.0  # the next run's first (same step)
            metrics = info["final_info"]["final_metrics"]
            assert metrics["_test_accuracy"][slot] and 0.0 <= metrics["test_accuracy"][slot] <= 1.0
            if env_id != DIGITS:
                assert metrics["_rounds"][slot] and metrics["rounds"][slot] in (2.0, 3.0)
        if env_id == SCHEDULE:
            assert set(info["final_info"]["rounds"]) <= {2, 3}
    assert (ended >= 2).all(), f"every slot should have ended twice in 7 steps, got {ended.tolist()}"
    venv.close()


# ---------------------------------------------------------------------- (b) slot i is the single env of seed s + i
def _assert_same_metrics(vector_metrics: dict, slot: int, single_metrics: dict, where: str) -> None:
    assert vector_metrics.keys() - {f"_{k}" for k in single_metrics} == single_metrics.keys(), where
    for key, value in single_metrics.items():
        assert vector_metrics[f"_{key}"][slot] and vector_metrics[key][slot] == value, f"{where}: final_metrics[{key!r}]"


@pytest.mark.parametrize("reward_normalization", [None, "paired"])
@pytest.mark.parametrize("env_id", [DIGITS, SCENARIOS])
def test_each_slot_is_the_single_env_of_its_seed_across_an_autoreset(env_id, reward_normalization, monkeypatch, digits_teacher):
    venv = _make_vec(env_id, monkeypatch, reward_normalization=reward_normalization)
    singles = [gym.make(env_id, **_kwargs(env_id, monkeypatch, reward_normalization=reward_normalization)) for _ in range(N)]
    obs, info = venv.reset(seed=SEED)
    expected = []
    for i, single in enumerate(singles):
        single_obs, single_info = single.reset(seed=SEED + i)
        assert np.array_equal(obs[i], single_obs), f"slot {i}: first observation"
        assert info["run_seed"][i] == single_info["run_seed"], f"slot {i}: run seed"
        expected.append(single_obs)
    rng, episodes, step = np.random.default_rng(1), [0] * N, 0
    while min(episodes) < 2:  # two episodes of every slot: the second one after its autoreset
        step += 1
        assert step <= 10, f"episodes ended per slot: {episodes}"
        actions = _actions(rng, venv)
        obs, reward, terminated, truncated, info = venv.step(actions)
        for i, single in enumerate(singles):
            if episodes[i] >= 2:
                continue
            where = f"slot {i}, step {step}, episode {episodes[i] + 1}"
            single_obs, single_reward, single_terminated, single_truncated, single_info = single.step(actions[i])
            assert reward[i] == single_reward, f"{where}: reward {reward[i]!r} != {single_reward!r}"
            assert (terminated[i], truncated[i]) == (single_terminated, single_truncated), where
            if single_terminated or single_truncated:
                assert np.array_equal(info["final_obs"][i], single_obs), f"{where}: final_obs"
                _assert_same_metrics(info["final_info"]["final_metrics"], i, single_info["final_metrics"], where)
                assert info["final_info"]["run_seed"][i] == single_info["run_seed"], where
                single_obs, single_info = single.reset()  # the single env's next episode, unseeded, as the slot's autoreset
                episodes[i] += 1
            assert np.array_equal(obs[i], single_obs), f"{where}: observation"


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_a_list_of_seeds_seeds_each_slot(env_id, monkeypatch, digits_teacher):
    venv = _make_vec(env_id, monkeypatch)
    seeds = [7, 3, 7]  # any seeds, repeats included
    obs, info = venv.reset(seed=seeds)
    for i, seed in enumerate(seeds):
        single_obs, single_info = gym.make(env_id, **_kwargs(env_id, monkeypatch)).reset(seed=seed)
        assert np.array_equal(obs[i], single_obs) and info["run_seed"][i] == single_info["run_seed"], f"slot {i}"


def test_each_schedule_slot_is_the_single_schedule_env_of_its_seed(monkeypatch, digits_teacher):
    venv = _make_vec(SCHEDULE, monkeypatch)
    singles = [gym.make(SCHEDULE, **_kwargs(SCHEDULE, monkeypatch)) for _ in range(N)]
    obs, _ = venv.reset(seed=SEED)
    for i, single in enumerate(singles):
        assert np.array_equal(obs[i], single.reset(seed=SEED + i)[0]), f"slot {i}: first observation"
    rng, budgets = np.random.default_rng(2), set()
    for episode in (1, 2):  # the second episode after the autoreset
        actions = _actions(rng, venv)
        obs, returns, terminated, truncated, info = venv.step(actions)
        assert terminated.all() and not truncated.any()
        for i, single in enumerate(singles):
            where = f"slot {i}, episode {episode}"
            single_obs, single_return, single_terminated, _, single_info = single.step(actions[i])
            assert single_terminated
            assert returns[i] == single_return, f"{where}: return {returns[i]!r} != {single_return!r}"
            assert info["final_info"]["rounds"][i] == single_info["rounds"], where
            assert np.array_equal(info["final_obs"][i], single_obs), f"{where}: final_obs"
            _assert_same_metrics(info["final_info"]["final_metrics"], i, single_info["final_metrics"], where)
            budgets.add(single_info["rounds"])
            assert np.array_equal(obs[i], single.reset()[0]), f"{where}: the next run's first observation"
    assert budgets == {2, 3}, f"the slots should have run both budgets (runs of different lengths in one step), got {budgets}"


# ---------------------------------------------------------------------- (c) bad input
@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_bad_input_is_refused_by_name_and_changes_nothing(env_id, monkeypatch, digits_teacher):
    venv, twin = _make_vec(env_id, monkeypatch), _make_vec(env_id, monkeypatch)
    n, k = venv.action_space.shape
    with pytest.raises(RuntimeError, match=r"reset\(\) before step\(\)"):
        venv.step(np.zeros((n, k), np.float32))
    venv.reset(seed=SEED)
    twin.reset(seed=SEED)
    for shape in ((n, k + 1), (n - 1, k), (n * k,), (k,)):
        with pytest.raises(ValueError, match=r"shape"):
            venv.step(np.zeros(shape, np.float32))
    for bad in (np.nan, np.inf):
        actions = np.zeros((n, k), np.float32)
        actions[n - 1, k - 1] = bad  # one entry of the last slot: no slot may have run
        with pytest.raises(ValueError, match=r"NaN|finite"):
            venv.step(actions)
    with pytest.raises(ValueError, match=rf"one seed per env \({n}\)"):
        venv.reset(seed=[1, 2])
    # nothing was stepped: the env goes on as its twin that never saw the bad input
    actions = _actions(np.random.default_rng(3), venv)
    for a, b in zip(venv.step(actions)[:4], twin.step(actions)[:4]):
        assert np.array_equal(a, b)


def test_a_fixed_knob_ignores_its_action_entries_in_every_slot_and_a_bad_name_is_refused(monkeypatch, digits_teacher):
    venv = _make_vec(SCHEDULE, monkeypatch, fixed_knobs=("lr_scale",))
    plain = _make_vec(SCHEDULE, monkeypatch)
    names = list(venv.runs.template.action_names)
    lr = [names.index("lr_scale"), len(names) + names.index("lr_scale")]  # a schedule's start and end
    actions = _actions(np.random.default_rng(4), venv)
    actions[:, lr] = [[1.0, 1.0], [-1.0, 1.0], [0.3, -0.7]]
    held_at_one = actions.copy()
    held_at_one[:, lr] = 0.0  # the zero action is the knob's default
    venv.reset(seed=SEED)
    held = venv.step(actions)[1]
    plain.reset(seed=SEED)
    unheld = plain.step(actions)[1]
    plain.reset(seed=SEED)
    reference = plain.step(held_at_one)[1]
    assert np.array_equal(held, reference), "a fixed knob must act as its default whatever the action says"
    assert not np.array_equal(held, unheld), "the lr entries should have mattered without fixed_knobs"
    with pytest.raises(ValueError, match=r"fixed_knobs \['lr'\] are not knobs of this env.*lr_scale"):
        gym.make(SCHEDULE, **_kwargs(SCHEDULE, monkeypatch, fixed_knobs=("lr",)))
    # a knob this id does not expose is held already: one list of fixed knobs fits every id
    unexposed = gym.make(SCHEDULE, **_kwargs(SCHEDULE, monkeypatch, fixed_knobs=("class_weights", "lr_scale")))
    assert "class_weights" not in unexposed.unwrapped.knob_names
    assert unexposed.action_space == venv.single_action_space


@pytest.mark.parametrize("num_envs", [0, -1, 1.5, True])
def test_a_bad_num_envs_is_refused(num_envs, monkeypatch, digits_teacher):
    with pytest.raises(ValueError, match="num_envs"):
        _make_vec(DIGITS, monkeypatch, num_envs=num_envs)


# ---------------------------------------------------------------------- (d) memory
#: RSS growth allowed between the 20th and the 200th reset of the child process. Measured on the scenario
#: id: under 1 MiB (of a child of about 790 MiB, most of it torch's libraries); with every ended run kept
#: alive (its buffer, random streams and history: a leak per slot per reset), 12.7 MiB.
MAX_GROWTH_MIB = 8
#: the child: a vector env of 4 slots reset 200 times, a step after every ``step_every``-th reset (so a reset
#: replaces runs that did something; a schedule id's step is 4 whole runs), its own RSS read after 20 and 200
CHILD = textwrap.dedent("""
    import gc, json, os, sys
    import numpy as np, pytest, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_vector_env import _make_vec

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    monkeypatch = pytest.MonkeyPatch()
    venv = _make_vec({env_id!r}, monkeypatch, num_envs=4)
    rng, rss = np.random.default_rng(0), {{}}
    for n in range(1, 201):
        venv.reset(seed=n)
        if n % {step_every} == 0:
            venv.step(rng.uniform(-1, 1, venv.action_space.shape).astype(np.float32))
        if n in (20, 200):
            gc.collect()
            rss[n] = rss_mib()
    venv.close()
    print(json.dumps(rss))
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("env_id,step_every", [(SCENARIOS, 1), (SCHEDULE, 5)])
def test_memory_stays_flat_over_200_resets(env_id, step_every, digits_teacher):
    tests = str(Path(__file__).resolve().parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # with the session's cache (its teacher)
    code = CHILD.format(tests=tests, env_id=env_id, step_every=step_every)
    child = subprocess.run([sys.executable, "-c", code], env=env, cwd=tests, capture_output=True, text=True, timeout=110)
    assert child.returncode == 0, child.stderr[-3000:]
    rss = {int(k): v for k, v in json.loads(child.stdout.strip().splitlines()[-1]).items()}
    growth = rss[200] - rss[20]
    assert growth < MAX_GROWTH_MIB, (f"{env_id}: the child's RSS grew {growth:.1f} MiB between reset 20 ({rss[20]:.1f} MiB) "
                                     f"and reset 200 ({rss[200]:.1f} MiB); allowed {MAX_GROWTH_MIB} MiB")


def test_a_nan_in_one_slots_kd_or_probe_ends_that_run_alone_with_finite_observations(monkeypatch, digits_teacher):
    """Fault injection: a NaN in slot 1's student weights (its KD loss) and in slot 2's BatchNorm statistics
    (its probe) end those runs as diverged, saying where; slot 0 goes on bit for bit as in a clean batch,
    and the agent sees finite observations and rewards."""
    import torch

    hurt, clean = _make_vec(DIGITS, monkeypatch), _make_vec(DIGITS, monkeypatch)
    rng = np.random.default_rng(6)
    hurt.reset(seed=SEED)
    clean.reset(seed=SEED)
    actions = _actions(rng, hurt)
    hurt.step(actions)
    clean.step(actions)
    student = hurt.runs.engine.student
    with torch.no_grad():
        student.params[0][1].fill_(float("nan"))
        next(e for e in student._layers if "running_var" in e)["running_var"][2].fill_(float("nan"))
    obs, rewards, terminated, _, info = hurt.step(actions)
    reference = clean.step(actions)
    final = info["final_info"]  # the ended runs' last infos (the slots start new runs at once)
    assert terminated[1:].all() and final["diverged"][1:].all() and final["diverged_in"][1:].tolist() == ["kd_loss", "probe"]
    assert not terminated[0]
    assert np.array_equal(obs[0], reference[0][0]) and rewards[0] == reference[1][0]
    assert np.isfinite(obs).all() and np.isfinite(np.stack(info["final_obs"][1:])).all() and np.isfinite(rewards).all()


# ---------------------------------------------------------------------- worker processes
def test_two_worker_processes_run_what_one_process_runs_and_refuse_bad_input_up_front(monkeypatch, digits_teacher):
    """``workers=2`` splits the slots over two processes; every number stays the same, and bad input is
    refused before any worker steps (the workers start a fresh Python, so this uses the plain digits id)."""
    one = _make_vec(DIGITS, monkeypatch)
    two = _make_vec(DIGITS, monkeypatch, workers=2)
    try:
        n, k = two.action_space.shape
        with pytest.raises(RuntimeError, match=r"reset\(\) before step\(\)"):
            two.step(np.zeros((n, k), np.float32))
        for a, b in zip(one.reset(seed=SEED)[:1], two.reset(seed=SEED)[:1]):
            assert np.array_equal(a, b)
        with pytest.raises(ValueError, match=rf"one seed per env \({n}\)"):
            two.reset(seed=[1, 2])
        bad = np.zeros((n, k), np.float32)
        bad[0, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            two.step(bad)
        rng = np.random.default_rng(4)
        for _ in range(SHORT["rounds"] + 1):  # across the autoreset
            actions = _actions(rng, one)
            first, second = one.step(actions), two.step(actions)
            for a, b in zip(first[:4], second[:4]):
                assert np.array_equal(a, b)
            assert np.array_equal(first[4].get("_final_obs", np.zeros(n, bool)), second[4].get("_final_obs", np.zeros(n, bool)))
    finally:
        two.close()
    with pytest.raises(RuntimeError, match="closed"):
        two.step(np.zeros((n, k), np.float32))
    with pytest.raises(ValueError, match="workers"):
        _make_vec(DIGITS, monkeypatch, workers=N + 1)


def test_a_killed_worker_is_named_with_its_signal_and_slots_and_reset_starts_fresh_workers(monkeypatch, digits_teacher):
    import os
    import signal
    import time

    from envs.worker_vector import WorkerDiedError

    one = _make_vec(DIGITS, monkeypatch)
    two = _make_vec(DIGITS, monkeypatch, workers=2)
    try:
        two.reset(seed=SEED)
        victim = two._processes[1]
        os.kill(victim.pid, signal.SIGKILL)
        actions = _actions(np.random.default_rng(5), two)
        start = time.perf_counter()
        with pytest.raises(WorkerDiedError, match=rf"worker 1 \(pid {victim.pid}, envs 2\.\.2 of {N}\) ended: killed by SIGKILL"):
            two.step(actions)
        assert time.perf_counter() - start < 15
        assert not victim.is_alive() and not any(p.is_alive() for p in two._processes)  # the other one stopped too
        with pytest.raises(RuntimeError, match=r"killed by SIGKILL: call reset\(\) to start fresh workers"):
            two.step(actions)
        # a reset starts fresh workers, and they run what one process runs
        for a, b in zip(one.reset(seed=SEED)[:1], two.reset(seed=SEED)[:1]):
            assert np.array_equal(a, b)
        for a, b in zip(one.step(actions)[:4], two.step(actions)[:4]):
            assert np.array_equal(a, b)
        workers = list(two._processes)
    finally:
        two.close()
        one.close()
    assert not any(p.is_alive() for p in workers), "close() must leave no worker behind"
    two.close()  # a second close returns too


def test_a_worker_that_raises_is_reported_with_its_traceback_and_leaves_no_process(monkeypatch, digits_teacher):
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(RuntimeError, match=r"(?s)vector-env worker failed.*reward_normalization"):
        _make_vec(DIGITS, monkeypatch, workers=2, reward_normalization="bogus")
    assert {p.pid for p in multiprocessing.active_children()} <= before


# ---------------------------------------------------------------------- the fast tier's single envs
@pytest.mark.parametrize("env_id", [*envs.FAST_IDS, *(i for i, inner in envs.SCHEDULE_IDS.items() if inner in envs.FAST_IDS)])
def test_every_fast_tier_id_passes_both_env_checkers(env_id, monkeypatch, digits_teacher):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, **tiny_kwargs(env_id, monkeypatch))
    checked = env if env_id in envs.SCHEDULE_IDS else env.unwrapped  # a schedule id is a wrapper over its per-round env
    check_env(checked, skip_render_check=True)
    sb3_check_env(checked, warn=True)
    env.close()
