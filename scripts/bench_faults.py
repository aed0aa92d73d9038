"""Benchmark: faults survived. Injects the faults a long job meets and counts what was lost:

- ``jobs``: two resumable jobs — a small leaderboard (``ablate.py``: the constants, ``random``, a searched
  static oracle and a PPO learner over training seeds) and ``bench_presets.py`` family runs (one cell a
  run) — each killed with SIGKILL at random moments and re-run with the same command until it finishes;
  their cells are compared with an uninterrupted run's: cells lost, duplicated, differing, and temporary
  files left behind;
- ``workers``: a 2-worker lockstep vector env whose workers are killed with SIGKILL at random steps; each
  kill must raise ``WorkerDiedError`` naming the worker's pid and signal, and ``reset()`` must carry on;
- ``memory``: a 2-worker vector env reset (and stepped once) many times; the peak resident memory of
  every process, after a warm-up and at the end (growth < 8 MiB a process is the goal).

Prints a table and writes ``--out`` (JSON) with the table beside it (``.md``)::

    python scripts/bench_faults.py --kills leaderboard=4 presets=16 --worker-kills 10 --resets 1000 \
        --out runs/bench/faults.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from distill_core.common.report import markdown_table, write_json, write_text

ROOT = Path(__file__).resolve().parent.parent
#: the jobs that are killed (every result of each is a cell: settings and checksum recorded), by name:
#: the command's arguments before ``--out``
JOBS: dict[str, list[str]] = {
    "leaderboard": ["scripts/ablate.py", "--learners", "ppo_schedule", "--timesteps", "16", "--train-seeds", "0-1",
                    "--baselines", "constant", "random", "--oracles", "static", "--trials", "4", "--search-seeds",
                    "1000-1001", "--eval-seeds", "2000-2003", "--workers", "1", "--no-progress"],
    "presets": ["scripts/bench_presets.py", "--families", "digits_small_buffer_fast", "--methods", "ssdkd",
                "memory_bank", "--seeds", "0-9", "--no-progress"],
}
#: the vector env of the worker and memory parts
VECTOR_ID = "DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1"
MEMORY_GOAL_MIB = 8.0


def job_command(name: str, folder: Path) -> list[str]:
    """The job's command writing into ``folder``."""
    out = ["--out", str(folder)] if name == "leaderboard" else ["--out", str(folder / "presets.json")]
    return [sys.executable, *JOBS[name], *out]


def cells_folder(name: str, folder: Path) -> Path:
    return folder / "cells" if name == "leaderboard" else folder / "presets" / "cells"


def run_job(command: list[str], kill_after: float | None = None) -> bool:
    """Run ``command`` in its own process group; with ``kill_after``, SIGKILL the group then.

    :return: whether it finished (exit code 0) before being killed.
    :raises RuntimeError: it failed on its own (a fault it did not survive).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        _, err = process.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return False
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit code {process.returncode}):\n{err.decode()[-2000:]}")
    return True


def comparable(value: Any) -> Any:
    """``value`` without what may differ between two runs of the same cell (machine time, model folders)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()
                if "seconds" not in k and k not in ("model_dir", "trained_before", "train")}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def cells(folder: Path) -> dict[str, Any]:
    """Every cell under ``folder`` by name, its payload made :func:`comparable`."""
    return {str(path.relative_to(folder)): comparable(json.loads(path.read_text())["payload"])
            for path in sorted(folder.rglob("*.json")) if not path.name.endswith(".failed.json")}


def result_keys(name: str, folder: Path) -> list[tuple[Any, ...]]:
    """The finished job's result rows by key (a key twice is a duplicated result)."""
    if name == "leaderboard":
        with open(folder / "scores.csv") as handle:
            return [(r["policy"], r["run"], r["seed"]) for r in csv.DictReader(handle)]
    rows = json.loads((folder / "presets.json").read_text())["results"]
    return [(key, r["seed"]) for key, rs in rows.items() for r in rs]


def job_faults(name: str, kills: int, work: Path, rng: random.Random) -> dict[str, Any]:
    """Kill job ``name`` ``kills`` times at random moments, finish it, and compare it with an uninterrupted run."""
    start = time.perf_counter()
    run_job(job_command(name, work / name / "reference"))
    reference_seconds = time.perf_counter() - start
    folder = work / name / "killed"
    injected = finished_early = 0
    while injected < kills:
        # uniform over the uninterrupted run's length: kills land in start-up, searches, training and writes
        if run_job(job_command(name, folder), kill_after=rng.uniform(0.2, reference_seconds)):
            finished_early += 1
            for path in cells_folder(name, folder).rglob("*.json"):  # go on with a random half of the cells
                if rng.random() < 0.5:
                    path.unlink()
            continue
        injected += 1
    run_job(job_command(name, folder))
    want, got = cells(cells_folder(name, work / name / "reference")), cells(cells_folder(name, folder))
    keys = result_keys(name, folder)
    return {"part": f"jobs/{name}", "faults": injected, "survived": injected, "cells": len(want),
            "lost": len(set(want) - set(got)), "duplicated": len(keys) - len(set(keys)),
            "differing": sum(got.get(k) != v for k, v in want.items() if k in got),
            "debris": len(list(folder.rglob("*.tmp"))), "finished_before_its_kill": finished_early,
            "reference_seconds": reference_seconds}


def worker_faults(kills: int, num_envs: int, rng: random.Random) -> dict[str, Any]:
    """Kill a random worker at a random step ``kills`` times; each must be named, and reset must carry on."""
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.worker_vector import WorkerDiedError

    venv = gym.make_vec(VECTOR_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", workers=2)
    named = survived = 0
    detect, seen = [], []
    try:
        for k in range(kills):
            venv.reset(seed=1000 + 100 * k)
            actions = np.zeros(venv.action_space.shape, np.float32)
            for _ in range(rng.randrange(3)):
                venv.step(actions)
            worker = rng.randrange(2)
            pid = venv.worker_pids[worker]
            seen += venv.worker_pids
            os.kill(pid, signal.SIGKILL)
            tick = time.perf_counter()
            try:
                venv.step(actions)
            except WorkerDiedError as err:
                detect.append(time.perf_counter() - tick)
                named += f"worker {worker} (pid {pid}" in str(err) and "SIGKILL" in str(err)
            venv.reset(seed=7)
            venv.step(actions)
            survived += 1
        seen += venv.worker_pids
    finally:
        venv.close()
    leftover = sum(_alive(pid) for pid in set(seen))
    return {"part": "workers", "faults": kills, "survived": survived, "named": named,
            "seconds_to_error (max)": max(detect) if detect else float("nan"), "processes_left": leftover}


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie no longer does)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def memory_soak(resets: int, num_envs: int) -> dict[str, Any]:
    """Peak resident memory of the parent and both workers after a tenth of ``resets`` and at the end."""
    import resource

    import gymnasium as gym

    import envs  # noqa: F401

    venv = gym.make_vec(VECTOR_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", workers=2)
    actions = np.zeros(venv.action_space.shape, np.float32)

    def peaks() -> list[float]:
        return [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *venv.worker_peak_rss_mib()]

    try:
        warm = max(1, resets // 10)
        for i in range(resets):
            if i == warm:
                before = peaks()
            venv.reset(seed=i)
            venv.step(actions)
        after = peaks()
    finally:
        venv.close()
    growth = [a - b for a, b in zip(after, before)]
    return {"part": "memory", "resets": resets, "peak_mib_after_warmup": before, "peak_mib_at_end": after,
            "growth_mib": growth, "goal_met": max(growth) < MEMORY_GOAL_MIB}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", nargs="+", default=["leaderboard=4", "presets=16"], metavar="JOB=K",
                        help=f"SIGKILLs of each resumable job ({', '.join(JOBS)}; default %(default)s)")
    parser.add_argument("--worker-kills", type=int, default=10)
    parser.add_argument("--resets", type=int, default=1000, help="resets of the memory soak")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--parts", nargs="+", choices=["jobs", "workers", "memory"], default=["jobs", "workers", "memory"])
    parser.add_argument("--seed", type=int, default=0, help="seeds when and what is killed")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/faults.json"))
    args = parser.parse_args(argv)
    kills: dict[str, int] = {}
    for token in args.kills:
        name, _, count = token.partition("=")
        if name not in JOBS or not count.isdigit():
            parser.error(f"--kills takes JOB=K with JOB one of {list(JOBS)} and K a count, got {token!r}")
        kills[name] = int(count)
    rng = random.Random(args.seed)
    start = time.perf_counter()
    report: dict[str, Any] = {"command": "python scripts/bench_faults.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as work:
        for name in kills if "jobs" in args.parts else ():
            report[f"jobs/{name}"] = job_faults(name, kills[name], Path(work), rng)
            print(report[f"jobs/{name}"], flush=True)
    if "workers" in args.parts:
        report["workers"] = worker_faults(args.worker_kills, args.num_envs, rng)
        print(report["workers"], flush=True)
    if "memory" in args.parts:
        report["memory"] = memory_soak(args.resets, args.num_envs)
        print(report["memory"], flush=True)
    report["seconds"] = time.perf_counter() - start
    rows = []
    for name in kills if "jobs" in args.parts else ():
        j = report[f"jobs/{name}"]
        rows.append([f"SIGKILL of a resumable job ({name}, {j['reference_seconds']:.0f} s uninterrupted)", j["faults"], j["survived"],
                     f"{j['lost']} lost, {j['duplicated']} duplicated, {j['differing']} differing of {j['cells']}; "
                     f"{j['debris']} temporary files", "—"])
    if "workers" in report:
        w = report["workers"]
        rows.append(["SIGKILL of a vector-env worker", w["faults"], w["survived"],
                     f"{w['named']} named with pid and signal, error within {w['seconds_to_error (max)']:.2f} s; "
                     f"{w['processes_left']} processes left", "—"])
    if "memory" in report:
        m = report["memory"]
        rows.append([f"memory soak: {m['resets']} resets, 2 workers", "—", "—", "—",
                     " / ".join(f"{g:+.1f}" for g in m["growth_mib"]) + " MiB (parent / workers)"])
    table = markdown_table(["fault", "injected", "survived", "what was lost", "peak memory growth"], rows)
    write_json(report, args.out)
    write_text(f"`{report['command']}` (one torch thread a process, {os.cpu_count()} CPUs, "
               f"{report['seconds'] / 60:.1f} min)\n\n{table}\n", args.out.with_suffix(".md"))
    print(table)
    return report


if __name__ == "__main__":
    main()
