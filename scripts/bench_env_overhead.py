"""Benchmark: what the Gymnasium env adds on top of the bare process.

Runs the same episodes (same seeds, the paper's constant knobs) twice: through ``gymnasium.make(id)``
and through the bare ``SSDKDProcess``; reports the wall time of each and, more precisely, the time spent
inside ``env.step`` / ``env.reset`` outside ``process.step`` / ``process.reset`` (the env's own overhead:
action mapping, checks, info). Writes ``runs/bench/env_overhead.json``.

    python scripts/bench_env_overhead.py [--env-id DistillGym/SSDKD-Digits-v0] [--episodes 10]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401
from distill_core.common.report import markdown_table, write_json


class TimedProcess:
    """Wraps a process and accumulates the time spent in its reset/step."""

    def __init__(self, process) -> None:
        self.process = process
        self.seconds = 0.0

    def __getattr__(self, name):
        return getattr(self.process, name)

    def _timed(self, call, *args):
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def reset(self, seed):
        return self._timed(self.process.reset, seed)

    def step(self, knobs):
        return self._timed(self.process.step, knobs)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="DistillGym/SSDKD-Digits-v0")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", default="runs/bench/env_overhead.json")
    args = parser.parse_args(argv)

    env = gym.make(args.env_id).unwrapped
    timed = TimedProcess(env.process)
    env.process = timed
    constant = env.action_from_knobs(timed.Knobs())
    seeds = list(range(args.episodes))

    env_seconds, run_seeds, episode_seconds = 0.0, [], []
    for seed in seeds:
        start = time.perf_counter()
        env.reset(seed=seed)
        run_seeds.append(env._run_seed)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(constant)
            done = terminated or truncated
        episode_seconds.append(time.perf_counter() - start)
        env_seconds += episode_seconds[-1]
    inside_process = timed.seconds

    bare = timed.process
    bare_seconds = 0.0
    for run_seed in run_seeds:  # the very runs the env made, stepped directly
        start = time.perf_counter()
        bare.reset(run_seed)
        while not bare.done:
            bare.step(bare.Knobs())
        bare_seconds += time.perf_counter() - start

    own = env_seconds - inside_process
    result = {
        "env_id": args.env_id, "episodes": args.episodes,
        "env_seconds": env_seconds, "bare_process_seconds": bare_seconds,
        "env_own_seconds": own, "env_own_overhead_percent": 100 * own / inside_process,
        "wall_overhead_percent": 100 * (env_seconds - bare_seconds) / bare_seconds,
        "episode_seconds_mean": float(np.mean(episode_seconds)), "episode_seconds_max": float(np.max(episode_seconds)),
    }
    write_json(result, args.out)
    print(markdown_table(
        ["env id", "episodes", "env s", "bare process s", "env's own time", "wall-clock difference", "s / episode (max)"],
        [[args.env_id, args.episodes, f"{env_seconds:.2f}", f"{bare_seconds:.2f}",
          f"{result['env_own_overhead_percent']:.2f} %", f"{result['wall_overhead_percent']:+.2f} %",
          f"{result['episode_seconds_mean']:.2f} ({result['episode_seconds_max']:.2f})"]]))
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
