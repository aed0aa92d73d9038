"""Sensitivity map: each env's headroom per knob group. For every env and group (selection: α, β, per-class
priority; modulation: γ, diversity, per-class targets; replacement; learning rate), the static and schedule
searches move that group alone (or selection and modulation together), the rest at the paper's constants (training instances and seeds, scored
by validation accuracy); each best runs on the held-out instances and seeds beside the constants, and the
paired gain in final test accuracy gets a bootstrap 95 % CI.

Resumable (finished cells in --out are kept). Writes <out>/<env>/sensitivity.json per env, and
sensitivity.json / .md / .png over all envs in --out; prints the map.

    python scripts/bench_sensitivity.py --env-ids DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1 \\
        DistillGym/SSDKD-MNIST1D-Paper-Scenarios-v1 --trials 30 --search-seeds 1000-1007 --eval-seeds 2000-2059
    python scripts/bench_sensitivity.py --groups selection learning_rate --kinds static     # part of the map
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from agents.evaluation.cli import parse_env_kwargs, parse_seeds
from agents.evaluation.oracles import SAMPLERS, SEARCHED
from agents.evaluation.sensitivity import KNOB_GROUPS, SensitivityConfig, run_sensitivity
from agents.evaluation.sensitivity_report import env_label, plot_sensitivity, sensitivity_markdown
from distill_core.common.report import write_json, write_text

DEFAULTS = SensitivityConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-ids", nargs="+", default=[DEFAULTS.env_id], metavar="ID")
    parser.add_argument("--groups", nargs="+", default=list(DEFAULTS.groups), choices=list(KNOB_GROUPS),
                        help="knob groups (default %(default)s; selection_modulation searches both together)")
    parser.add_argument("--kinds", nargs="+", default=list(SEARCHED), choices=list(SEARCHED))
    parser.add_argument("--search-seeds", nargs="+", default=["1000-1009"], metavar="SEED",
                        help="training seeds every trial runs on (default %(default)s)")
    parser.add_argument("--eval-seeds", nargs="+", default=["2000-2059"], metavar="SEED",
                        help="held-out seeds, disjoint from the search seeds (default %(default)s)")
    parser.add_argument("--train-env-kwargs", nargs="*", default=["split=train"], metavar="KEY=VALUE")
    parser.add_argument("--eval-env-kwargs", nargs="*", default=["split=heldout"], metavar="KEY=VALUE")
    parser.add_argument("--trials", type=int, default=DEFAULTS.trials, help="trials per search, the constants first")
    parser.add_argument("--sampler", choices=SAMPLERS, default=DEFAULTS.sampler)
    parser.add_argument("--search-seed", type=int, default=DEFAULTS.search_seed)
    parser.add_argument("--workers", type=int, default=2, help="processes a lockstep batch is split over")
    parser.add_argument("--resamples", type=int, default=DEFAULTS.resamples, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/sensitivity"))
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        configs = [SensitivityConfig(env_id=env_id, groups=tuple(args.groups), kinds=tuple(args.kinds),
                                     train_env_kwargs=parse_env_kwargs(args.train_env_kwargs, env_id),
                                     eval_env_kwargs=parse_env_kwargs(args.eval_env_kwargs, env_id),
                                     search_seeds=parse_seeds(args.search_seeds), eval_seeds=parse_seeds(args.eval_seeds),
                                     trials=args.trials, sampler=args.sampler, search_seed=args.search_seed,
                                     workers=args.workers, resamples=args.resamples)
                   for env_id in args.env_ids]
    except ValueError as err:
        parser.error(str(err))
    start = time.perf_counter()
    results = [run_sensitivity(config, args.out / env_label(config.env_id), progress=not args.no_progress)
               for config in configs]
    command = "python scripts/bench_sensitivity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    seconds = time.perf_counter() - start
    first = configs[0]
    header = (f"`{command}`\n\n{len(first.eval_seeds)} held-out seeds ({first.eval_env_kwargs}), {first.trials} trials on "
              f"{len(first.search_seeds)} training seeds ({first.train_env_kwargs}) per search; one torch thread per "
              f"process, {args.workers} worker process{'es' if args.workers > 1 else ''}; {seconds / 60:.1f} min this invocation. Gain: final test accuracy "
              f"minus the constants' on the same seed, in points, with its bootstrap 95 % CI.\n\n")
    table = sensitivity_markdown(results)
    write_json({"command": command, "seconds": seconds, "results": results}, args.out / "sensitivity.json")
    write_text(header + table, args.out / "sensitivity.md")
    plot_sensitivity(results, args.out / "sensitivity.png",
                     title=f"Headroom per knob group: paired gain over the constants, {len(first.eval_seeds)} held-out seeds")
    print(header + table)
    return results


if __name__ == "__main__":
    main()
