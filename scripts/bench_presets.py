"""Benchmark: SSD-KD presets (or scenario families) side by side with the paper's constant knobs — final
test accuracy of the student and seconds per run, on the same seeds. How the fast tier's presets were
checked against the ones they replace (``distill_core.ssdkd.config.FAST``).

A preset runs its configuration on every seed; a scenario family draws, per seed, an instance of its
split as ``ScenarioProcess`` does (the same instance for the same seed in every family of one grid).
Runs go through the serial ``SSDKDProcess`` (the plain-algorithm path), or with ``--engine lockstep`` all
seeds together on the lockstep engine (what the fast tier's envs run), one torch thread. Writes ``--out``
(JSON) and the table beside it (``.md``)::

    python scripts/bench_presets.py --presets digits digits_fast --seeds 0-7
    python scripts/bench_presets.py --families digits_small_buffer digits_small_buffer_fast --seeds 0-15
    python scripts/bench_presets.py --families digits_small_buffer_fast --seeds 0-15 --engine lockstep
    python scripts/bench_presets.py --families mnist1d_paper --split heldout --seeds 2000-2059 \
        --methods ssdkd memory_bank real_kd          # the baselines on each drawn instance, beside its teacher

``--methods`` runs each family instance as SSD-KD and as its baselines on the same harness (serial engine):
the memory bank, KD on as many real training samples as SSD-KD synthesises (the teacher's training split),
DeepInversion; the table gives each instance's teacher test accuracy beside them. Those runs are resumable:
each is a cell in the folder beside ``--out`` (its settings and the family's preset recorded), so the same
command after a kill, or processes given other ``--seeds`` of the same grid, only run what is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agents.evaluation.cells import CellStore
from agents.evaluation.cli import parse_seeds
from distill_core.common.report import markdown_table, write_json, write_text
from distill_core.ssdkd.config import preset
from distill_core.ssdkd.lockstep import LockstepSSDKD
from distill_core.ssdkd.lockstep_process import RunSource
from distill_core.ssdkd.process import SSDKDProcess
from distill_core.ssdkd.runner import METHODS, method_config
from distill_core.ssdkd.scenarios import FAMILIES, ScenarioConfig, ScenarioProcess

HEADERS = ["preset / family", "runs", "teacher test accuracy %", "final test accuracy % (mean ± std)", "s / run (mean)",
           "diverged"]


def table_row(name: str, rows: list[dict[str, Any]]) -> list[Any]:
    """A row of :data:`HEADERS` for ``rows`` (the teacher column empty when they have no teacher accuracy)."""
    acc = [r["test_accuracy"] for r in rows]
    teacher = f"{100 * np.mean([r['teacher_accuracy'] for r in rows]):.2f}" if "teacher_accuracy" in rows[0] else ""
    return [name, len(rows), teacher, f"{100 * np.mean(acc):.2f} ± {100 * np.std(acc):.2f}",
            f"{np.mean([r['seconds'] for r in rows]):.2f}", sum(r["diverged"] for r in rows)]


def run_once(process: SSDKDProcess, seed: int) -> dict[str, Any]:
    """One run of ``process`` with the paper's constants: final metrics and seconds (reset included)."""
    start = time.perf_counter()
    process.reset(seed)
    while not process.done:
        process.step(process.Knobs())
    return {"seed": seed, "seconds": time.perf_counter() - start, "diverged": process.diverged, **process.final_metrics()}


def run_lockstep(source: RunSource, seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    """The same runs advanced together on the lockstep engine (one slot per seed), as the fast tier's envs
    run them; seconds are the whole batch's divided among its runs."""
    engine = LockstepSSDKD(len(seeds), source.device, pad_to=source.max_synth_batch)
    start = time.perf_counter()
    for slot, seed in enumerate(seeds):
        engine.start(slot, source.process(seed), seed)
    paper = source.template.Knobs()
    while not engine.all_done:
        engine.step([None if engine.run(i).done else paper for i in range(len(seeds))])
    seconds = (time.perf_counter() - start) / len(seeds)
    return [{"seed": s, "seconds": seconds, "diverged": engine.run(i).diverged, **engine.final_metrics(i)}
            for i, s in enumerate(seeds)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="*", default=[], help="SSD-KD presets (distill_core.ssdkd.config.PRESETS)")
    parser.add_argument("--families", nargs="*", default=[], help="scenario families (distill_core.ssdkd.scenarios.FAMILIES)")
    parser.add_argument("--split", default="train", help="the families' split")
    parser.add_argument("--seeds", nargs="+", default=["0-7"])
    parser.add_argument("--engine", choices=["serial", "lockstep"], default="serial",
                        help="serial SSDKDProcess runs, or all seeds together on the lockstep engine (fast-tier presets)")
    parser.add_argument("--methods", nargs="+", default=["ssdkd"], choices=[m for m in METHODS if m != "real_full"],
                        help="the families' runs as SSD-KD and / or its baselines (serial engine; default %(default)s)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/bench/presets.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.presets and not args.families:
        parser.error("name at least one preset (--presets) or scenario family (--families)")
    torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)

    results: dict[str, list[dict[str, Any]]] = {}
    if args.engine == "lockstep":
        configs = {**{n: replace(preset(n), device="cpu") for n in args.presets},
                   **{f: ScenarioConfig(family=f, split=args.split, device="cpu") for f in args.families}}
        results = {f"{name} (lockstep)": run_lockstep(RunSource(config), seeds) for name, config in configs.items()}
    for name in args.presets if args.engine == "serial" else ():
        process = SSDKDProcess(replace(preset(name), device="cpu"))
        results[name] = [run_once(process, s) for s in tqdm(seeds, desc=name, disable=args.no_progress)]
    if args.engine == "lockstep" and args.methods != ["ssdkd"]:
        parser.error("--methods runs on the serial engine (the lockstep engine runs SSD-KD only)")
    store = CellStore(Path(args.out).with_suffix(""), {"benchmark": "bench_presets"}) if args.families else None
    for family in args.families if args.engine == "serial" else ():
        scenarios = ScenarioProcess(ScenarioConfig(family=family, split=args.split, device="cpu"))
        definition = {"family": asdict(FAMILIES[family]), "preset": asdict(preset(FAMILIES[family].preset))}
        for method in args.methods:
            rows = []
            for s in tqdm(seeds, desc=f"{family} {method}", disable=args.no_progress):
                def run(s: int = s, method: str = method) -> dict[str, Any]:
                    index = scenarios.instance_index(s)
                    inner = scenarios.instance_process(index)
                    process = inner if method == "ssdkd" else SSDKDProcess(
                        method_config(method, inner.config, len(inner.data.x_train)), teacher=inner.teacher, data=inner.data)
                    return {**run_once(process, s), "instance": scenarios.instances[index].name,
                            "imbalance": scenarios.instances[index].imbalance,
                            "teacher_accuracy": inner.teacher.metrics.get("test_accuracy", float("nan"))}

                settings = {"family": family, "split": args.split, "method": method, "seed": s, "threads": args.threads,
                            "definition": definition}
                rows.append(store.get_or_make(f"{family}-{args.split}/{method}/seed{s}", settings, run)[0])
            results[family if args.methods == ["ssdkd"] else f"{family} / {method}"] = rows
    table = markdown_table(HEADERS, [table_row(name, rows) for name, rows in results.items()])
    by_teacher = [table_row(f"{name}, teacher ×{imbalance:g}", [r for r in rows if r["imbalance"] == imbalance])
                  for name, rows in results.items() if "imbalance" in rows[0]
                  for imbalance in sorted({r["imbalance"] for r in rows})]
    if len(by_teacher) > sum("imbalance" in rows[0] for rows in results.values()):  # more than one teacher set
        table += "\n\nBy the teacher's training set (head / tail ratio; ×1 = balanced):\n\n" + markdown_table(HEADERS, by_teacher)
    command = "python scripts/bench_presets.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    write_json({"command": command, "threads": args.threads, "seeds": list(seeds), "results": results}, out)
    write_text(f"`{command}` ({args.threads} torch thread)\n\n{table}\n", out.with_suffix(".md"))
    print(table)
    return results


if __name__ == "__main__":
    main()
