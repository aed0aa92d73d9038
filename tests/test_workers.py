"""Vector-env workers start safely whatever start method the caller passes: a forked child of a process
whose torch thread pool has run is put on one thread (without that it hangs) and warned; forkserver
children are left alone."""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the ids and the fork hook)

DIGITS = "DistillGym/SSDKD-Digits-v0"
TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")


@pytest.fixture
def parent_pool_running() -> Iterator[None]:
    """torch's OpenMP pool started with 2 threads in this (the parent) process."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    a = torch.randn(512, 512)
    (a @ a).sum()
    yield
    torch.set_num_threads(before)


def _probe(queue: multiprocessing.Queue) -> None:
    from envs import workers

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        workers.check_worker()
    x = torch.randn(512, 512)
    (x @ x).sum()  # would hang in a forked child still on 2 threads
    queue.put((torch.get_num_threads(), workers._started_by_fork(), [str(w.message) for w in caught]))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_forked_children_use_one_thread_and_are_warned(method, parent_pool_running):
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    child = ctx.Process(target=_probe, args=(queue,), daemon=True)
    child.start()
    threads, by_fork, messages = queue.get(timeout=100)
    child.join(timeout=20)
    assert by_fork == (method == "fork")
    if method == "fork":
        assert threads == 1 and len(messages) == 1 and "forkserver" in messages[0]
    else:
        assert messages == []


@pytest.mark.timeout(120)
def test_async_vector_env_with_fork_after_parallel_torch_does_not_hang(parent_pool_running, digits_teacher):
    venv = gym.make_vec(f"envs:{DIGITS}", num_envs=2, vectorization_mode="async", vector_kwargs={"context": "fork"},
                        **TINY)
    try:
        obs, _ = venv.reset(seed=0)
        obs, reward, terminated, truncated, _ = venv.step(np.zeros(venv.action_space.shape, np.float32))
    finally:
        venv.close()
    assert obs.shape[0] == 2 and np.isfinite(reward).all()
