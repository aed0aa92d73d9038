"""Benchmark: SSD-KD against its baselines on Fashion-MNIST (ConvNet-BN teacher → half-width student).

Budgets of 6 000 and 600 synthetic samples (10 % and 1 % of the training set); SSD-KD and the memory
bank with several seeds at 6 000; the ablation (φ_div off, φ_diff off, priority sampling off); KD on
the same number of random real images and on the whole training set. Every run is a
``scripts/distill.py`` run (same harness, same timings); results go to ``runs/bench/ssdkd/<run>/`` and
are collected in ``runs/bench/ssdkd.json`` and ``runs/bench/ssdkd.md``, with a plot of test accuracy
against end-to-end time for the 6 000-sample runs.

    python scripts/bench_ssdkd.py                       # everything (about an hour and a half on 2 cores)
    python scripts/bench_ssdkd.py --only ssdkd memory_bank --seeds 0
    python scripts/bench_ssdkd.py --quick               # digits preset, for a smoke test

Every planned run found in the output folder goes into the table, so two invocations with ``--only``
can share the machine (one thread each: ``OMP_NUM_THREADS=1``) and ``--skip-done`` resumes.

Accuracy is the *final* student's test accuracy, never the best over evaluations. "Reaches MB" is the
first end-to-end time at which a run's learning curve reaches the memory bank's final accuracy (same seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from distill_core.common.plots import line_plot
from distill_core.common.report import markdown_table, write_json, write_text
from distill_core.data import load_dataset
from distill_core.ssdkd.config import preset
from distill_core.ssdkd.runner import method_config, run_distillation

#: (name, preset, method, ablation switches, seeds): the full plan.
PLAN = [
    ("ssdkd", "fashion_mnist", "ssdkd", {}, (0, 1, 2)),
    ("memory_bank", "fashion_mnist", "memory_bank", {}, (0, 1, 2)),
    ("deep_inversion", "fashion_mnist", "deep_inversion", {}, (0,)),
    ("real_kd", "fashion_mnist", "real_kd", {}, (0,)),
    ("real_full", "fashion_mnist", "real_full", {}, (0,)),
    ("ssdkd-no-div", "fashion_mnist", "ssdkd", {"use_diversity": False}, (0,)),
    ("ssdkd-no-diff", "fashion_mnist", "ssdkd", {"use_difficulty": False}, (0,)),
    ("ssdkd-no-priority", "fashion_mnist", "ssdkd", {"use_priority": False}, (0,)),
    ("ssdkd", "fashion_mnist_1pct", "ssdkd", {}, (0,)),
    ("memory_bank", "fashion_mnist_1pct", "memory_bank", {}, (0,)),
    ("deep_inversion", "fashion_mnist_1pct", "deep_inversion", {}, (0,)),
    ("real_kd", "fashion_mnist_1pct", "real_kd", {}, (0,)),
]


def time_to_reach(curve: list[dict], target: float) -> float | None:
    """First end-to-end time at which a learning curve reaches ``target`` accuracy (None if never)."""
    for point in curve:
        if point["test_accuracy"] >= target:
            return point["seconds"]
    return None


def reach_memory_bank(run: dict, runs: list[dict]) -> tuple[float, float] | None:
    """When ``run``'s curve first reaches the final accuracy of the memory-bank run with its preset and seed:
    ``(seconds, seconds / the memory bank's end-to-end seconds)``; ``(inf, inf)`` if never, None if there is
    no such memory-bank run."""
    mb = next((r for r in runs if r["name"] == "memory_bank" and r["preset"] == run["preset"] and r["seed"] == run["seed"]), None)
    if mb is None:
        return None
    seconds = time_to_reach(run["curve"], mb["test_accuracy"])
    seconds = float("inf") if seconds is None else seconds
    return seconds, seconds / mb["end_to_end_seconds"]


def goal_lines(runs: list[dict], preset_name: str = "fashion_mnist") -> str:
    """The issue's goals at 10 % data scale, each with what was measured (means over the seeds run)."""

    def mean_accuracy(name: str) -> float | None:
        values = [r["test_accuracy"] for r in runs if r["name"] == name and r["preset"] == preset_name]
        return float(np.mean(values)) if values else None

    ssdkd, mb, real = mean_accuracy("ssdkd"), mean_accuracy("memory_bank"), mean_accuracy("real_kd")
    if ssdkd is None:
        return f"(no {preset_name} SSD-KD run yet)"
    ssdkd_runs = [r for r in runs if r["name"] == "ssdkd" and r["preset"] == preset_name]
    ratios = [reach[1] for reach in (reach_memory_bank(r, runs) for r in ssdkd_runs) if reach is not None]
    slowest = max(r["end_to_end_seconds"] for r in ssdkd_runs)
    checks = [("mean test accuracy ≥ 89.5 %", f"{100 * ssdkd:.2f} %", ssdkd >= 0.895),
              ("each run ≤ 10 min end to end", f"slowest {slowest / 60:.1f} min", slowest <= 600)]
    if mb is not None:
        checks.append(("≥ 3 points over the memory bank", f"{100 * (ssdkd - mb):+.2f} points", ssdkd - mb >= 0.03))
    if ratios:
        checks.append(("reaches the memory bank's final accuracy in ≤ 1/3 of its time",
                       ", ".join("never" if r == float("inf") else f"{r:.2f}×" for r in ratios), max(ratios) <= 1 / 3))
    if real is not None:
        checks.append(("at least KD on as many real images", f"{100 * (ssdkd - real):+.2f} points", ssdkd >= real))
    return markdown_table(["goal", "measured", "met"], [[g, m, "yes" if ok else "**no**"] for g, m, ok in checks])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="run names to keep (e.g. ssdkd memory_bank)")
    parser.add_argument("--presets", nargs="*", default=None, help="presets to keep (fashion_mnist, fashion_mnist_1pct)")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="override the seeds of every run")
    parser.add_argument("--quick", action="store_true", help="digits preset instead of Fashion-MNIST (smoke test)")
    parser.add_argument("--eval-every", type=int, default=3)
    parser.add_argument("--skip-done", action="store_true", help="keep runs that already have a metrics.json in --out")
    parser.add_argument("--out", default="runs/bench/ssdkd")
    args = parser.parse_args(argv)

    out = Path(args.out)
    planned = []  # (name, preset, folder) of every run in the plan, measured now or before
    for name, preset_name, method, switches, seeds in PLAN:
        if args.quick:
            preset_name = "digits" if preset_name == "fashion_mnist" else None
            if preset_name is None:
                continue
        seeds = args.seeds if args.seeds is not None else seeds
        folders = [out / preset_name / f"{name}_s{seed}" for seed in seeds]
        planned += [(name, preset_name, folder) for folder in folders]
        if (args.only and name not in args.only) or (args.presets and preset_name not in args.presets):
            continue
        base = preset(preset_name)
        train_size = len(load_dataset(base.dataset, seed=base.teacher_seed).x_train)
        config = dataclasses.replace(method_config(method, base, train_size), **switches)
        for seed, folder in zip(seeds, folders):
            if args.skip_done and (folder / "metrics.json").is_file():
                continue
            run_distillation(config, seed=seed, out=folder, eval_every=args.eval_every, label=f"{preset_name}/{name}/s{seed}")

    # the table covers every planned run measured in this folder, so invocations can share the cores
    # (e.g. two of them with --only, one thread each) and a killed benchmark keeps what it measured
    runs = []
    for name, preset_name, folder in planned:
        if (folder / "metrics.json").is_file():
            metrics = json.loads((folder / "metrics.json").read_text())
            runs.append({"name": name, "preset": preset_name, **{k: v for k, v in metrics.items() if k != "config"}})
    write_json(runs, out.with_suffix(".json"))

    rows = []
    for run in runs:
        reach = reach_memory_bank(run, runs)
        rows.append([run["preset"], run["name"], run["seed"], f"{100 * run['test_accuracy']:.2f}",
                     f"{100 * run['test_agreement']:.2f}", f"{run['synthesis_seconds']:.1f}", f"{run['kd_seconds']:.1f}",
                     f"{run['end_to_end_seconds']:.1f}", run["samples_made"],
                     "-" if reach is None or reach[0] == float("inf") else f"{reach[0]:.1f} ({reach[1]:.2f}×)"])
    summary = []
    for preset_name in sorted({r["preset"] for r in runs}):
        for name in dict.fromkeys(r["name"] for r in runs if r["preset"] == preset_name):
            accs = [r["test_accuracy"] for r in runs if r["preset"] == preset_name and r["name"] == name]
            times = [r["end_to_end_seconds"] for r in runs if r["preset"] == preset_name and r["name"] == name]
            summary.append([preset_name, name, len(accs), f"{100 * np.mean(accs):.2f} ± {100 * np.std(accs):.2f}",
                            f"{np.mean(times):.0f}"])
    table = markdown_table(["preset", "method", "seed", "test acc %", "agreement %", "synthesis s", "KD s", "end-to-end s",
                            "samples", "reaches MB final at s (× MB's time)"], rows)
    means = markdown_table(["preset", "method", "runs", "test acc % (mean ± std)", "end-to-end s (mean)"], summary)
    goals = "" if args.quick else goal_lines(runs)
    write_text(means + "\n\n" + table + "\n\n" + goals + "\n", out.with_suffix(".md"))
    curves = {f"{r['name']} s{r['seed']}": ([c["seconds"] for c in r["curve"]], [100 * c["test_accuracy"] for c in r["curve"]])
              for r in runs if r["preset"] in ("fashion_mnist", "digits")}
    if curves:
        line_plot(curves, out / "curves.png", xlabel="end-to-end seconds (evaluation excluded)", ylabel="student test accuracy %",
                  title="SSD-KD vs baselines, 10 % data scale")
    print(means + "\n\n" + table + "\n\n" + goals)
    print(f"\nwrote {out.with_suffix('.json')}, {out.with_suffix('.md')}, {out}/curves.png")
    return runs


if __name__ == "__main__":
    main()
