"""Benchmark: how many SSD-KD episodes per second an env id gives, served serially, by worker processes,
and what advancing N runs in lockstep (``vmap`` over stacked parameters) would gain on its kernels.

Issue 18 asked for a batched process that steps N runs at once, expecting ≥ 20× the serial env's
episodes/s because "the time goes into Python and per-op overhead". This script measures that premise
instead of building the process. Every episode runs the constant paper-default action
(``env.unwrapped.action_from_knobs(process.Knobs())``).

1. **serial** — ``gymnasium.make(id)``: episodes/s and env steps/s over ``--episodes`` episodes
   (each episode timed from ``reset`` — which inverts the probe set — to its last step).
2. **sb3-subproc** — SB3 ``SubprocVecEnv`` (``make_vec_env("envs:<id>")``, ``start_method="forkserver"``),
   ``--workers`` workers stepped until ``--episodes`` episodes ended in total (counted from ``dones``).
3. **gym-async** — ``gymnasium.make_vec("envs:<id>", vectorization_mode="async",
   vector_kwargs={"context": "forkserver"})``, likewise (Gymnasium 1.x autoreset: episode ends counted
   from ``terminations | truncations``; the autoreset step of a finished sub-env is not counted as a step).
4. **lockstep kernel probe** — for each N of ``--lockstep-n``: one optimiser step (forward, backward,
   Adam) of N stacked copies of the run's generator and of its student through
   ``torch.func.stack_module_state`` + ``vmap(functional_call)``, against N serial steps of one copy each;
   ms per run and the speedup (serial / vmap). The generator's loss is the frozen teacher's cross-entropy
   on the generated batch (the inversion step's one-hot term), the student's the KD loss against fixed
   teacher logits (what the replay buffer stores); batch sizes are the config's ``synth_batch`` / ``kd_batch``.
5. **profile** — one more serial episode under ``torch.profiler``: the top ops by self CPU time, and the
   process's own ``timings`` split (start = probe inversion, synthesis, KD, score). Run last: the
   profiler's records of a whole episode raise the main process's peak memory (~2 GB on digits).
6. **memory** — peak RSS (``ru_maxrss``) of the main process after each mode; vector-env workers are
   separate processes, each reports its own peak.

Threads are set, not inherited by accident: ``--threads`` (default 1) → ``torch.set_num_threads`` in
the main process (serial mode, profile, kernel probe). Vector-env workers start with ``forkserver``, so
``envs/workers.py`` leaves them alone (it only pins *forked* children to one thread): their torch would
default to ``OMP_NUM_THREADS`` or the core count. A wrapper built in each worker therefore calls
``torch.set_num_threads(--worker-threads)`` (default 1) before the first reset, and the output records
what each worker had and used.

Writes ``--out`` (default ``runs/bench/env_throughput.json``) and the same tables as markdown beside it
(``.md``), both atomically (written to a temporary file, then renamed). Tiny settings for a try-out::

    python scripts/bench_env_throughput.py --episodes 2 --lockstep-n 1 8 --set rounds=3 g_steps=2
    python scripts/bench_env_throughput.py --episodes 8            # the real measurement: a quiet machine
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

# torch.profiler's CPU-only runs otherwise log "gpuGetDeviceCount failed" (kineto looking for a GPU)
os.environ.setdefault("KINETO_LOG_LEVEL", "5")

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
import torch.nn.functional as F
from tqdm import tqdm

import envs  # noqa: F401  (registers DistillGym/*)
from distill_core.common.cli import parse_overrides
from distill_core.common.report import markdown_table, write_json, write_text
from distill_core.inversion import Generator
from distill_core.kd import kd_loss
from distill_core.models import build_model
from distill_core.teachers import DEFAULT_STUDENTS
from envs import registered_config

MODES = ("serial", "sb3-subproc", "gym-async")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024.0 * 1024.0) if sys.platform == "darwin" else kib / 1024.0


class WorkerThreads(gym.Wrapper):
    """Built inside each vector-env worker: puts its torch on ``threads`` intra-op threads before the
    first reset, and reports what it had, what it uses and its own peak memory (through ``get_attr``)."""

    def __init__(self, env: gym.Env, threads: int) -> None:
        super().__init__(env)
        self.torch_threads_inherited = torch.get_num_threads()
        torch.set_num_threads(threads)
        self.torch_threads = torch.get_num_threads()
        self.omp_num_threads = os.environ.get("OMP_NUM_THREADS")

    @property
    def peak_rss_mib(self) -> float:
        return peak_rss_mib()


def _bar(total: int, desc: str, quiet: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="ep", disable=quiet, leave=False)


# ---------------------------------------------------------------------- 1. serial
def run_serial(env: gym.Env, action: np.ndarray, episodes: int, seed: int, quiet: bool) -> dict[str, Any]:
    """``episodes`` episodes of ``env`` one after the other; per-episode wall time and the process's timings."""
    seconds, steps, timings = [], 0, []
    with _bar(episodes, "serial", quiet) as bar:
        for episode in range(episodes):
            start = time.perf_counter()
            env.reset(seed=seed + episode)
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(action)
                steps += 1
                done = terminated or truncated
            seconds.append(time.perf_counter() - start)
            timings.append(dict(info["timings"]))
            bar.update(1)
    total = sum(seconds)
    return {"episodes": episodes, "steps": steps, "seconds": total, "episode_seconds": seconds,
            "episodes_per_second": episodes / total, "steps_per_second": steps / total,
            "timings_mean": {k: float(np.mean([t.get(k, 0.0) for t in timings])) for k in timings[0]}}


# ---------------------------------------------------------------------- 2./3. vector envs
def run_sb3_subproc(env_name: str, env_kwargs: dict[str, Any], action: np.ndarray, *, workers: int, worker_threads: int,
                    episodes: int, seed: int, quiet: bool) -> dict[str, Any]:
    """SB3 ``SubprocVecEnv`` (forkserver): step every worker until ``episodes`` episodes ended in total.

    SB3 resets a finished worker inside the step that ends its episode, so every step call is one real
    transition per worker, and the last call also pays one reset per worker that begins no counted episode.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    start = time.perf_counter()
    vec = make_vec_env(f"envs:{env_name}", n_envs=workers, seed=seed, vec_env_cls=SubprocVecEnv,
                       vec_env_kwargs={"start_method": "forkserver"}, env_kwargs=env_kwargs,
                       wrapper_class=WorkerThreads, wrapper_kwargs={"threads": worker_threads})
    startup = time.perf_counter() - start
    actions = np.tile(action, (workers, 1))
    finished = steps = 0
    try:
        with _bar(episodes, "sb3-subproc", quiet) as bar:
            start = time.perf_counter()
            vec.reset()
            while finished < episodes:
                _, _, dones, _ = vec.step(actions)
                steps += workers
                ended = int(np.sum(dones))
                finished += ended
                bar.update(ended)
            seconds = time.perf_counter() - start
        worker_info = _worker_info(vec.get_attr)
    finally:
        vec.close()
    return {"episodes": finished, "steps": steps, "seconds": seconds, "startup_seconds": startup,
            "episodes_per_second": finished / seconds, "steps_per_second": steps / seconds, **worker_info}


def run_gym_async(env_name: str, env_kwargs: dict[str, Any], action: np.ndarray, *, workers: int, worker_threads: int,
                  episodes: int, seed: int, quiet: bool) -> dict[str, Any]:
    """Gymnasium ``AsyncVectorEnv`` (forkserver): step until ``episodes`` episodes ended in total.

    Gymnasium 1.x autoresets: with ``NEXT_STEP`` (the default) a sub-env that ended is reset by the next
    call, which returns no transition for it, so that call is not counted as one of its steps.
    """
    start = time.perf_counter()
    vec = gym.make_vec(f"envs:{env_name}", num_envs=workers, vectorization_mode="async",
                       vector_kwargs={"context": "forkserver"}, wrappers=[partial(WorkerThreads, threads=worker_threads)],
                       **env_kwargs)
    startup = time.perf_counter() - start
    mode = vec.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    next_step = mode == gym.vector.AutoresetMode.NEXT_STEP
    actions = np.tile(action, (workers, 1))
    finished = steps = 0
    try:
        with _bar(episodes, "gym-async", quiet) as bar:
            start = time.perf_counter()
            vec.reset(seed=seed)
            resetting = np.zeros(workers, dtype=bool)
            while finished < episodes:
                _, _, terminations, truncations, _ = vec.step(actions)
                steps += int(np.sum(~resetting)) if next_step else workers
                ends = np.asarray(terminations) | np.asarray(truncations)
                finished += int(ends.sum())
                bar.update(int(ends.sum()))
                resetting = ends
            seconds = time.perf_counter() - start
        worker_info = _worker_info(vec.get_attr)
    finally:
        vec.close()
    return {"episodes": finished, "steps": steps, "seconds": seconds, "startup_seconds": startup, "autoreset_mode": str(mode),
            "episodes_per_second": finished / seconds, "steps_per_second": steps / seconds, **worker_info}


def _worker_info(get_attr: Callable[[str], Any]) -> dict[str, Any]:
    return {"worker_torch_threads_inherited": [int(v) for v in get_attr("torch_threads_inherited")],
            "worker_torch_threads": [int(v) for v in get_attr("torch_threads")],
            "worker_omp_num_threads": list(get_attr("omp_num_threads")),
            "worker_peak_rss_mib": [float(v) for v in get_attr("peak_rss_mib")]}


# ---------------------------------------------------------------------- 4. lockstep kernel probe
def _time_step(step: Callable[[], None], repeats: int, warmup: int) -> float:
    """Median seconds of ``step()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _compare(models: list[torch.nn.Module], loss_of: Callable[[torch.Tensor, Any], torch.Tensor],
             inputs: torch.Tensor, targets: Any, lr: float, repeats: int, warmup: int) -> tuple[float, float]:
    """Seconds of one Adam step of every model: serially (one model after the other, each with its Adam)
    and in lockstep (the stacked copies through ``vmap(functional_call)``, one Adam over the stacks).
    ``inputs[i]`` / ``targets[i]`` are run ``i``'s batch; a run's loss is ``loss_of(output, target)``."""
    from torch.func import functional_call, stack_module_state, vmap

    n = len(models)
    serial_models = [copy.deepcopy(m) for m in models]
    serial_optimizers = [torch.optim.Adam(m.parameters(), lr=lr) for m in serial_models]

    def serial_step() -> None:
        for i, (model, optimizer) in enumerate(zip(serial_models, serial_optimizers)):
            optimizer.zero_grad(set_to_none=True)
            loss_of(model(inputs[i]), targets[i]).backward()
            optimizer.step()

    params, buffers = stack_module_state([copy.deepcopy(m) for m in models])  # stacked leaves (BN buffers too)
    base = copy.deepcopy(models[0]).to("meta")
    batched = vmap(lambda p, b, x, t: loss_of(functional_call(base, (p, b), (x,)), t))
    optimizer = torch.optim.Adam(list(params.values()), lr=lr)  # elementwise: N independent Adams

    def lockstep_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        batched(params, buffers, inputs, targets).sum().backward()  # run i's gradient is its own loss's
        optimizer.step()

    return _time_step(serial_step, repeats, warmup) / n, _time_step(lockstep_step, repeats, warmup) / n


def lockstep_probe(process: Any, ns: list[int], *, repeats: int, warmup: int, seed: int, quiet: bool) -> dict[str, Any]:
    """The kernel-level speedup of N runs in lockstep for the generator and the student of ``process``'s run."""
    cfg, data = process.config, process.data
    teacher = copy.deepcopy(process.teacher.model).cpu().eval().requires_grad_(False)
    student_arch = cfg.student_arch or DEFAULT_STUDENTS[process.teacher.spec.arch]  # as SSDKDProcess picks it
    classes = data.num_classes
    setup = {"generator": {"input_shape": list(data.input_shape), "latent_dim": cfg.latent_dim, "gen_width": cfg.gen_width,
                           "batch": cfg.synth_batch, "lr": cfg.g_lr,
                           "loss": "cross-entropy of the frozen teacher on the generated batch"},
             "student": {"arch": student_arch, "batch": cfg.kd_batch, "lr": cfg.kd_lr,
                         "loss": f"KD loss (τ={cfg.temperature}) against fixed teacher logits"},
             "optimiser": "Adam (one per run serially; one over the stacked parameters in lockstep)",
             "timing": f"median of {repeats} steps after {warmup} warm-up steps, divided by N",
             "device": "cpu", "torch_threads": torch.get_num_threads()}
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for n in tqdm(ns, desc="lockstep", unit="N", disable=quiet, leave=False):
        torch.manual_seed(seed)
        generators = [Generator(data.input_shape, data.mean, data.std, cfg.latent_dim, cfg.gen_width) for _ in range(n)]
        z = torch.randn(n, cfg.synth_batch, cfg.latent_dim, generator=gen)
        y = torch.randint(0, classes, (n, cfg.synth_batch), generator=gen)
        serial, vmapped = _compare(generators, lambda x, t: F.cross_entropy(teacher(x), t), z, y, cfg.g_lr, repeats, warmup)
        rows.append({"model": "generator", "n": n, "serial_ms_per_run": 1e3 * serial, "vmap_ms_per_run": 1e3 * vmapped,
                     "speedup": serial / vmapped})
        students = [build_model(student_arch, input_shape=data.input_shape, num_classes=classes) for _ in range(n)]
        x = torch.randn(n, cfg.kd_batch, *data.input_shape, generator=gen)
        with torch.no_grad():
            t_logits = teacher(x.flatten(0, 1)).view(n, cfg.kd_batch, classes)
        serial, vmapped = _compare(students, lambda s, t: kd_loss(s, t, cfg.temperature), x, t_logits, cfg.kd_lr, repeats, warmup)
        rows.append({"model": "student", "n": n, "serial_ms_per_run": 1e3 * serial, "vmap_ms_per_run": 1e3 * vmapped,
                     "speedup": serial / vmapped})
    return {"setup": setup, "results": rows}


# ---------------------------------------------------------------------- 5. profile
def profile_episode(env: gym.Env, action: np.ndarray, seed: int, top: int = 10) -> dict[str, Any]:
    """One serial episode under ``torch.profiler``: top ops by self CPU time and the process's timings split."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        seconds = time.perf_counter() - start
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    timings = {k: float(v) for k, v in info["timings"].items()}
    return {"episode_seconds_profiled": seconds, "self_cpu_seconds_total": total / 1e6,
            "top_ops": [{"name": e.key, "self_cpu_share_percent": 100.0 * e.self_cpu_time_total / total,
                         "self_cpu_ms": e.self_cpu_time_total / 1e3, "calls": int(e.count)} for e in ranked],
            "timings": timings,
            "timings_share_percent": {k: 100.0 * v / seconds for k, v in timings.items()},
            "timings_note": "synthesis_seconds and kd_seconds lie inside update_seconds; start_seconds is reset "
                            "(fresh student, generator, buffer and the probe inversion); shares are of the profiled "
                            "episode's wall time, which the profiler inflates"}


# ---------------------------------------------------------------------- output
def _mode_rows(result: dict[str, Any]) -> list[list[str]]:
    serial_eps = result["modes"][0]["episodes_per_second"]
    rows = []
    for m in result["modes"]:
        peak = f"{m['peak_rss_mib']:.0f}"
        threads = str(m["threads"])
        if "worker_peak_rss_mib" in m:
            peak = f"main {peak}; workers " + ", ".join(f"{v:.0f}" for v in m["worker_peak_rss_mib"])
            threads = ", ".join(str(t) for t in m["worker_torch_threads"]) + " (per worker)"
        rows.append([m["mode"], str(m["workers"]), str(m["episodes"]), f"{m['episodes_per_second']:.3f}",
                     f"{m['steps_per_second']:.2f}", f"{m['episodes_per_second'] / serial_eps:.2f}", peak, threads])
    lockstep = result["lockstep"] or {"results": []}
    for r in lockstep["results"]:
        rows.append([f"lockstep {r['model']} step (vmap)", f"N={r['n']}", "—", "—", "—", f"{r['speedup']:.2f}",
                     f"{lockstep['peak_rss_mib']:.0f}", str(lockstep["setup"]["torch_threads"])])
    return rows


def render_markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    parts = [f"# Env throughput: {result['env_id']}",
             f"overrides {result['overrides'] or 'none'}; {result['episodes']} episodes per mode; "
             f"load average {machine['load_average_start'][0]:.2f} at start, {machine['load_average_end'][0]:.2f} at end "
             f"({machine['cpu_count']} CPUs); main-process torch threads {result['threads']['main']}",
             "",
             markdown_table(["mode", "N / workers", "episodes", "episodes/s", "steps/s", "× serial", "peak MiB", "threads"],
                            _mode_rows(result)),
             "",
             "Lockstep rows: × serial is the kernel-level speedup per run of one optimiser step (serial ms / vmap ms); "
             "no episodes are run. Peak MiB: ru_maxrss of the main process so far (workers are separate processes "
             "and report their own)."]
    if result["lockstep"]:
        parts += ["", "## Lockstep kernel probe", "",
                  markdown_table(["model", "N", "serial ms / run", "vmap ms / run", "speedup (serial / vmap)"],
                                 [[r["model"], str(r["n"]), f"{r['serial_ms_per_run']:.2f}", f"{r['vmap_ms_per_run']:.2f}",
                                   f"{r['speedup']:.2f}"] for r in result["lockstep"]["results"]])]
    prof = result["profile"]
    parts += ["", f"## Profile of one serial episode ({prof['episode_seconds_profiled']:.2f} s under the profiler; "
                  f"main-process peak afterwards {prof['peak_rss_mib']:.0f} MiB)", "",
              markdown_table(["op (self CPU)", "share %", "ms", "calls"],
                             [[o["name"], f"{o['self_cpu_share_percent']:.1f}", f"{o['self_cpu_ms']:.1f}", str(o["calls"])]
                              for o in prof["top_ops"]]),
              "",
              markdown_table(["process timing", "s (profiled episode)", "% of episode", "s (mean, serial episodes)"],
                             [[k, f"{v:.3f}", f"{prof['timings_share_percent'][k]:.1f}",
                               f"{result['modes'][0]['timings_mean'].get(k, float('nan')):.3f}"]
                              for k, v in prof["timings"].items()])]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="DistillGym/SSDKD-Digits-v0")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="env configuration overrides")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per mode (vector envs: in total over the workers)")
    parser.add_argument("--workers", type=int, default=2, help="vector-env worker processes")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of the main process")
    parser.add_argument("--worker-threads", type=int, default=1, help="torch intra-op threads of each worker")
    parser.add_argument("--lockstep-n", type=int, nargs="*", default=[1, 8, 32, 64], help="N of the kernel probe (none: skip)")
    parser.add_argument("--kernel-repeats", type=int, default=10, help="timed optimiser steps per kernel measurement")
    parser.add_argument("--kernel-warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench/env_throughput.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for name in ("episodes", "workers", "threads", "worker_threads", "kernel_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if any(n < 1 for n in args.lockstep_n):
        parser.error("--lockstep-n values must be at least 1")
    try:
        env_kwargs = parse_overrides(args.set, type(registered_config(args.env_id)))
    except ValueError as err:
        parser.error(str(err))
    env_name = args.env_id.split(":")[-1]
    out = Path(args.out)
    load_start = os.getloadavg()

    torch.set_num_threads(args.threads)
    quiet = args.no_progress
    env = gym.make(env_name, **env_kwargs)  # first: a teacher not cached yet is trained here, not by two workers at once
    unwrapped = env.unwrapped
    action = unwrapped.action_from_knobs(unwrapped.process.Knobs())
    modes = []
    common = {"threads": torch.get_num_threads()}

    serial = run_serial(env, action, args.episodes, args.seed, quiet)
    modes.append({"mode": "serial", "workers": 1, **common, **serial, "peak_rss_mib": peak_rss_mib()})
    vector_kwargs = dict(workers=args.workers, worker_threads=args.worker_threads, episodes=args.episodes, seed=args.seed, quiet=quiet)
    for name, run in (("sb3-subproc", run_sb3_subproc), ("gym-async", run_gym_async)):
        measured = run(env_name, env_kwargs, action, **vector_kwargs)
        modes.append({"mode": name, "workers": args.workers, **common, **measured, "peak_rss_mib": peak_rss_mib()})

    process = getattr(unwrapped.process, "inner", unwrapped.process)  # a scenario set's current SSD-KD run
    lockstep = None
    if args.lockstep_n and hasattr(process.config, "gen_width"):
        lockstep = lockstep_probe(process, list(args.lockstep_n), repeats=args.kernel_repeats, warmup=args.kernel_warmup,
                                  seed=args.seed, quiet=quiet)
        lockstep["peak_rss_mib"] = peak_rss_mib()
    # last: the profiler's event records of a whole episode raise the main process's peak memory by far more
    # than any mode (about 2 GB on the digits preset), which would otherwise show in every later mode's peak
    profile = profile_episode(env, action, seed=args.seed + args.episodes)
    profile["peak_rss_mib"] = peak_rss_mib()
    env.close()

    for m in modes:
        m["x_serial"] = m["episodes_per_second"] / modes[0]["episodes_per_second"]
    result = {
        "env_id": env_name, "overrides": env_kwargs, "episodes": args.episodes, "seed": args.seed,
        "action": action.tolist(),
        "machine": {"cpu_count": os.cpu_count(), "load_average_start": list(load_start), "load_average_end": list(os.getloadavg()),
                    "python": platform.python_version(), "torch": torch.__version__, "gymnasium": gym.__version__,
                    "stable_baselines3": stable_baselines3.__version__},
        "threads": {"main": torch.get_num_threads(), "main_requested": args.threads,
                    "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
                    "workers_requested": args.worker_threads,
                    "workers": {m["mode"]: m["worker_torch_threads"] for m in modes if "worker_torch_threads" in m},
                    "workers_inherited": {m["mode"]: m["worker_torch_threads_inherited"] for m in modes if "worker_torch_threads" in m},
                    "how": "main: torch.set_num_threads(--threads). Workers start by forkserver, which envs/workers.py leaves "
                           "alone (it pins only forked children to 1 thread), so each inherits torch's default "
                           "(OMP_NUM_THREADS, else the core count: 'workers_inherited'); a wrapper built in the worker "
                           "sets torch.set_num_threads(--worker-threads) before the first reset ('workers')."},
        "modes": modes,
        "lockstep": lockstep,
        "profile": profile,
        "peak_rss_mib": peak_rss_mib(),
        "notes": [f"x_serial of a vector env compares {args.workers} workers on {args.worker_threads} thread(s) each "
                  f"(up to {args.workers * args.worker_threads} cores) with one process on {args.threads} thread(s)",
                  "episodes/s of a vector env is episodes ended in total over wall time from its first reset; its "
                  "start-up (worker processes, imports, teacher load) is 'startup_seconds', not counted",
                  "SB3 resets a finished worker within the step that ends its episode: the last step also pays one "
                  "reset per worker for an episode that is not counted",
                  "peak_rss_mib is ru_maxrss of the main process (the peak so far, after each mode; modes run in the "
                  "order listed, then the lockstep probe, then the profile); vector-env workers are separate processes "
                  "and report theirs in worker_peak_rss_mib"],
    }
    markdown = render_markdown(result)
    write_json(result, out)
    md_path = write_text(markdown, out.with_suffix(".md"))
    print(markdown)
    print(f"wrote {out} and {md_path}")
    return result


if __name__ == "__main__":
    main()
