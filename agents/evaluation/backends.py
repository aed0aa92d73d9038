"""Where jobs run: in this process one after another (``local``), or as Ray tasks of one CPU each
(``ray``: a local cluster, or an existing one by its address) — how a sweep outgrows one machine.
Searches, learner training, evaluations and the leaderboard all map their tasks through :class:`Runner`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BACKENDS = ("local", "ray")


class Runner:
    """Runs tasks (a module-level function over picklable arguments) in this process, one after another,
    or as Ray tasks of one CPU each. One Ray session serves
    every ``map`` (a search maps once per batch of trials), started on first use and shut down by
    :meth:`close` if this runner started it.

    :param backend: ``local`` or ``ray``.
    :param address: a Ray cluster to join (default: start a local one).
    :param num_cpus: CPUs of a local Ray cluster.
    """

    def __init__(self, backend: str = "local", *, address: str | None = None, num_cpus: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: use one of {BACKENDS}")
        self.backend, self.address, self.num_cpus = backend, address, num_cpus
        self._ray: Any = None
        self._started_ray = False
        self._remote: dict[Callable[..., Any], Any] = {}

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *, bar: Any = None) -> list[Any]:
        """``[fn(t) for t in tasks]``, in order; ``bar`` (a tqdm bar) advances as each task finishes."""
        if self.backend == "local":
            results = []
            for task in tasks:
                results.append(fn(task))
                if bar is not None:
                    bar.update(1)
            return results
        ray = self._ray_session()
        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1)(fn)
        refs = [self._remote[fn].remote(task) for task in tasks]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            if bar is not None:
                bar.update(len(done))
        return ray.get(refs)

    def _ray_session(self) -> Any:
        """Ray, started (or joined) with the repository on the workers' path, so they import the packages."""
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError as err:
            raise ImportError("the ray backend needs Ray: pip install 'distill-gym[ray]'") from err
        if not ray.is_initialized():
            root = str(Path(__file__).resolve().parents[2])
            env = {"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
            ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                     include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}, ignore_reinit_error=True)
            self._started_ray = True
        self._ray = ray
        return ray

    def close(self) -> None:
        """Shut Ray down if this runner started it."""
        if self._started_ray and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started_ray, self._remote = None, False, {}

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
