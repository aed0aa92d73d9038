"""Benchmark: episodes per second of the learning ids, v0 served serially against the fast tier (v1)
served serially and by its lockstep vector env at N runs in one and in two processes.

Each row is measured in a fresh process (``agents/evaluation/throughput.py``): its own peak memory, and
``--threads`` torch threads in every process (default 1: the networks are small, and two threads per
process on two cores thrash). Every episode acts the paper's constants (the zero action). Pairs:

* ``schedule``: ``DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v0`` / ``-v1`` (one decision per run; what
  the learners train on);
* ``digits``: ``DistillGym/SSDKD-Digits-v0`` / ``-v1`` (a round per step, buffer of 256).

Writes ``--out`` (JSON) and the table beside it (``.md``), both atomically, and prints the table::

    python scripts/bench_env_throughput.py                                   # the real measurement (quiet machine)
    python scripts/bench_env_throughput.py --pairs digits --episodes 2 --lockstep-n 1 2 --set rounds=2 g_steps=1
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from agents.evaluation.throughput import ThroughputCase, measure
from distill_core.common.cli import parse_overrides
from distill_core.common.report import markdown_table, write_json, write_text
from distill_core.ssdkd.config import SSDKDConfig

PAIRS = {
    "schedule": ("DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v0", "DistillGym/SSDKD-Digits-SmallBuffer-Schedule-v1"),
    "digits": ("DistillGym/SSDKD-Digits-v0", "DistillGym/SSDKD-Digits-v1"),
}
HEADERS = ["id", "mode", "N", "workers", "threads", "episodes", "seconds", "episodes/s", "× v0 serial", "peak MiB",
           "worker peak MiB"]


def cases(pair: str, args: argparse.Namespace, overrides: dict[str, Any]) -> list[ThroughputCase]:
    """The rows of one pair: v0 serial, v1 serial, v1 lockstep at every N and worker count."""
    v0, v1 = PAIRS[pair]
    common = dict(threads=args.threads, env_kwargs={"device": "cpu", **overrides} if pair == "digits" else {"split": "train", "device": "cpu"},
                  seed=args.seed)
    rows = [ThroughputCase(v0, "serial", episodes=args.serial_episodes or args.episodes, **common),
            ThroughputCase(v1, "serial", episodes=args.episodes, **common)]
    for workers in args.workers:
        for n in args.lockstep_n:
            if n >= workers:
                rows.append(ThroughputCase(v1, "lockstep", num_envs=n, workers=workers, episodes=max(args.episodes, n),
                                           profile=True, **common))
    return rows


def table_rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    rows, base = [], {}
    for r in results:
        if r.get("error"):
            rows.append([r["env_id"], r["mode"], r["num_envs"], r["workers"], r["threads"], "—", "—", f"failed: {r['error']}", "—", "—", "—"])
            continue
        if r["mode"] == "serial" and r["env_id"].endswith("-v0"):
            base[r["env_id"][:-3]] = r["episodes_per_second"]
        speedup = r["episodes_per_second"] / base[r["env_id"][:-3]] if r["env_id"][:-3] in base else float("nan")
        worker = " + ".join(f"{m:.0f}" for m in r["worker_peak_rss_mib"]) if r.get("worker_peak_rss_mib") else "—"
        rows.append([r["env_id"].removeprefix("DistillGym/"), r["mode"], r["num_envs"], r["workers"], r["torch_threads"],
                     r["episodes_timed"], round(r["seconds"], 1), round(r["episodes_per_second"], 2), f"{speedup:.1f}×",
                     f"{r['peak_rss_mib']:.0f}", worker])
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--episodes", type=int, default=32, help="episodes timed per row (lockstep: at least N)")
    parser.add_argument("--serial-episodes", type=int, default=None, help="episodes of the v0 serial rows (default --episodes)")
    parser.add_argument("--lockstep-n", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="processes of the lockstep rows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every process")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="SSDKDConfig overrides of the digits pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench/env_throughput.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set, SSDKDConfig)

    todo = [c for pair in args.pairs for c in cases(pair, args, overrides)]
    start = time.perf_counter()
    results = []
    for case in tqdm(todo, desc="throughput", disable=args.no_progress):
        results.append(measure(case))
    report = {"command": "python scripts/bench_env_throughput.py " + " ".join(argv if argv is not None else os.sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "load_average_at_start": os.getloadavg()},
              "threads_per_process": args.threads, "seconds": time.perf_counter() - start, "results": results}
    table = markdown_table(HEADERS, table_rows(results))
    out = Path(args.out)
    write_json(report, out)
    write_text(f"`{report['command']}` ({args.threads} torch thread(s) per process, {os.cpu_count()} CPUs)\n\n{table}\n",
               out.with_suffix(".md"))
    print(table)
    return report


if __name__ == "__main__":
    main()
