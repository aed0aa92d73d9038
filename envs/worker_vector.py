"""A lockstep vector env split over worker processes: one per core, each holding a share of the runs.

One process steps its N runs on one core (one torch thread: the networks are small). With two cores,
two workers of N/2 runs each step at once; ``docs/benchmarks.md`` measures when that is faster than one
process of N. Workers start with ``forkserver`` (``spawn`` where there is none) on one torch thread;
slot ``i`` of the whole is seeded ``s + i``, so the split does not change any run.

A worker that dies (killed, crashed, out of memory) raises :class:`WorkerDiedError` naming it, its exit
code or signal and the slots it held, as soon as its pipe closes; ``reset()`` then starts fresh workers.

    gymnasium.make_vec(id, num_envs=32, vectorization_mode="vector_entry_point", workers=2)
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class WorkerDiedError(RuntimeError):
    """A vector-env worker process ended while the env was using it (its runs are lost; ``reset()`` starts
    fresh workers)."""


def exit_text(exitcode: int | None) -> str:
    """``killed by SIGKILL``, ``exit code 1``, or ``still running`` for a process's ``exitcode``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def lockstep_vector_env(num_envs: int, *, env_id: str, make_vector: Callable[..., VectorEnv], workers: int = 1,
                        **env_kwargs: Any) -> VectorEnv:
    """The vector entry point of the fast-tier ids: ``num_envs`` runs of ``env_id`` in one process
    (``workers=1``) or split over ``workers`` processes.

    :param make_vector: builds the id's vector env in one process, ``make_vector(num_envs, **env_kwargs)``
        (set at registration).
    :raises ValueError: a bad ``num_envs`` or ``workers``, or fewer runs than workers.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if workers > num_envs:
        raise ValueError(f"{workers} workers need at least as many envs, got num_envs={num_envs}")
    if workers > 1:
        return WorkerVectorEnv(env_id, num_envs, workers, env_kwargs, make_vector)
    return make_vector(num_envs, **env_kwargs)


def _worker(pipe: Any, make_vector: Callable[..., VectorEnv], num_envs: int, env_kwargs: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(1)
    try:
        venv = make_vector(num_envs, **env_kwargs)
        pipe.send(("ok", None))
    except Exception:  # the parent raises it with the worker's traceback
        pipe.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, payload = pipe.recv()
        except (EOFError, KeyboardInterrupt):  # the parent went away without closing the env: just end
            return
        try:
            if command == "reset":
                pipe.send(("ok", venv.reset(seed=payload)))
            elif command == "step":
                pipe.send(("ok", venv.step(payload)))
            elif command == "attr":
                pipe.send(("ok", getattr(venv, payload)))
            elif command == "peak_rss":
                pipe.send(("ok", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
            elif command == "close":
                venv.close()
                pipe.send(("ok", None))
                return
        except Exception:
            pipe.send(("error", traceback.format_exc()))


class WorkerVectorEnv(VectorEnv):
    """``num_envs`` runs of a fast-tier id, split as evenly as possible over ``workers`` processes that
    each step their share in lockstep; the results are joined in slot order.

    :param env_id: the registered id (its single env gives the spaces).
    :param num_envs: N.
    :param workers: processes.
    :param env_kwargs: the env's keyword arguments.
    :param make_vector: builds each worker's share, ``make_vector(n, **env_kwargs)`` (pickled to the workers).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env_id: str, num_envs: int, workers: int, env_kwargs: dict[str, Any],
                 make_vector: Callable[..., VectorEnv]) -> None:
        import gymnasium as gym

        self.num_envs = num_envs
        self.sizes = [num_envs // workers + (1 if i < num_envs % workers else 0) for i in range(workers)]
        self.offsets = np.cumsum([0, *self.sizes[:-1]]).tolist()
        self._env_kwargs, self._make_vector = env_kwargs, make_vector
        self._pipes: list[Any] = []
        self._processes: list[Any] = []
        self._closed = False
        self._broken: str | None = None  # why the workers are gone (a reset starts fresh ones)
        self._started = False
        self._start_workers()
        single = gym.make(env_id, **env_kwargs)
        self.single_action_space = single.action_space
        self.single_observation_space = single.observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.observation_names = single.unwrapped.observation_names
        single.close()

    def _start_workers(self) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        for size in self.sizes:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, self._make_vector, size, self._env_kwargs), daemon=True)
            process.start()
            child.close()  # the parent keeps one end: a worker's death then reads as end-of-file at once
            self._pipes.append(parent)
            self._processes.append(process)
        self._broken = None
        for i in range(len(self._pipes)):
            self._receive(i)

    def _stop_workers(self) -> None:
        """Ask every live worker to close, then end any that does not within seconds; never raises."""
        for pipe, process in zip(self._pipes, self._processes):
            if process.is_alive():
                try:
                    pipe.send(("close", None))
                    if pipe.poll(5):
                        pipe.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self._pipes:
            pipe.close()
        self._pipes, self._processes = [], []

    def _died(self, i: int) -> WorkerDiedError:
        """Stop the other workers and say which one died, how, and which slots it held."""
        process = self._processes[i]
        process.join(timeout=5)
        first, size = self.offsets[i], self.sizes[i]
        self._broken = (f"vector-env worker {i} (pid {process.pid}, envs {first}..{first + size - 1} of {self.num_envs}) "
                        f"ended: {exit_text(process.exitcode)}")
        self._stop_workers()
        return WorkerDiedError(f"{self._broken}. Its runs are lost; reset() starts fresh workers (a worker killed by "
                               "SIGKILL unasked is often the kernel's out-of-memory killer: fewer envs a worker help)")

    def _receive(self, i: int) -> Any:
        try:
            status, payload = self._pipes[i].recv()
        except (EOFError, ConnectionResetError, OSError):
            raise self._died(i) from None
        if status == "error":
            self._broken = f"vector-env worker {i} raised an error"
            self._stop_workers()
            raise RuntimeError(f"a vector-env worker failed (reset() starts fresh workers):\n{payload}")
        return payload

    def _ask(self, command: str, payloads: list[Any]) -> list[Any]:
        if self._closed:
            raise RuntimeError("the vector env is closed (close() was called): make a new one")
        if self._broken is not None:
            raise RuntimeError(f"{self._broken}: call reset() to start fresh workers")
        for i, payload in enumerate(payloads):
            try:
                self._pipes[i].send((command, payload))
            except (BrokenPipeError, ConnectionResetError, OSError):
                raise self._died(i) from None
        return [self._receive(i) for i in range(len(self._pipes))]

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seeds = [None] * len(self._pipes)
        elif isinstance(seed, (int, np.integer)):
            seeds = [[int(seed) + o + i for i in range(size)] for o, size in zip(self.offsets, self.sizes)]
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"reset needs one seed per env ({self.num_envs}), got {len(seed)}")
            seeds = [list(seed[o : o + size]) for o, size in zip(self.offsets, self.sizes)]
        if self._broken is not None and not self._closed:
            self._start_workers()
        results = self._ask("reset", seeds)
        self._started = True
        return np.concatenate([r[0] for r in results]), self._join_infos([r[1] for r in results])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected {self.action_space.shape} (one row per env)")
        bad = np.flatnonzero(~np.isfinite(actions.reshape(self.num_envs, -1)).all(axis=1))
        if bad.size:  # refused here, before any worker steps, so no slot advances on a bad batch
            raise ValueError(f"actions of envs {bad.tolist()} contain NaN or Inf — check the policy's outputs")
        results = self._ask("step", [actions[o : o + size] for o, size in zip(self.offsets, self.sizes)])
        joined = [np.concatenate([r[i] for r in results]) for i in range(4)]
        return (*joined, self._join_infos([r[4] for r in results]))

    def _join_infos(self, infos: list[dict[str, Any]]) -> dict[str, Any]:
        """The workers' vector infos as one: each key's array (and ``_key`` mask) over every slot."""
        out: dict[str, Any] = {}
        keys = {k for info in infos for k in info}
        for key in keys:
            parts = [info.get(key) for info in infos]
            if any(isinstance(p, dict) for p in parts):
                out[key] = self._join_infos([p or {} for p in parts])
                continue
            pieces = []
            for part, size in zip(parts, self.sizes):
                if part is None:
                    mask_key = key.startswith("_")
                    part = np.zeros(size, dtype=bool) if mask_key else np.full(size, None, dtype=object)
                pieces.append(np.asarray(part) if not isinstance(part, np.ndarray) else part)
            dtype = object if any(p.dtype == object for p in pieces) else None
            out[key] = np.concatenate([p.astype(object) if dtype is object else p for p in pieces])
        return out

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (none after ``close()`` or a worker's death)."""
        return [process.pid for process in self._processes]

    def worker_peak_rss_mib(self) -> list[float]:
        """Each worker process's peak resident memory so far, in MiB."""
        return self._ask("peak_rss", [None] * len(self._pipes))

    def get_worker_attr(self, name: str) -> list[Any]:
        """``name`` of each worker's vector env (e.g. its lockstep engine's timings)."""
        return self._ask("attr", [name] * len(self._pipes))

    def close_extras(self, **kwargs: Any) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_workers()


__all__ = ["WorkerDiedError", "WorkerVectorEnv", "exit_text", "lockstep_vector_env"]
