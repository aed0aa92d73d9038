"""Run SSD-KD or one of its baselines as a plain algorithm (no RL) and record everything.

    python scripts/distill.py --preset digits --method ssdkd
    python scripts/distill.py --preset fashion_mnist --method memory_bank --seed 1 --out runs/fmnist_mb_s1
    python scripts/distill.py --preset digits --method ssdkd --no-priority --set kd_steps=40 g_steps=8

Methods: ssdkd, memory_bank (Fast-DFKD/CMI-style pool), deep_inversion (pixels, no generator),
real_kd (the same number of random real images), real_full (the whole real training set).

Writes to ``--out``: ``student.pt`` (atomic), ``metrics.json`` (final test accuracy, agreement,
synthesis / KD / end-to-end time, samples used, learning curve), ``samples.png`` (buffer samples per
class) and ``curve.png`` (test accuracy against end-to-end time). Evaluation time is excluded from
every reported time.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from distill_core.common.cli import parse_overrides
from distill_core.common.report import markdown_table
from distill_core.data import load_dataset
from distill_core.ssdkd.config import preset
from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.runner import METHODS, method_config, run_distillation


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="digits", help="digits, mnist1d, fashion_mnist, fashion_mnist_1pct")
    parser.add_argument("--method", default="ssdkd", choices=METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-diversity", action="store_true", help="ablation: φ_div and diversity-aware targets off")
    parser.add_argument("--no-difficulty", action="store_true", help="ablation: φ_diff off")
    parser.add_argument("--no-priority", action="store_true", help="ablation: uniform sampling, no IS weights")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override configuration fields")
    parser.add_argument("--eval-every", type=int, default=1, help="rounds between test evaluations (for the curve)")
    parser.add_argument("--out", default=None, help="output folder (default runs/distill/<preset>_<method>_s<seed>)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    try:
        base = dataclasses.replace(preset(args.preset), **parse_overrides(args.set, SSDKDConfig))
    except ValueError as err:
        parser.error(str(err))
    train_size = len(load_dataset(base.dataset, seed=base.teacher_seed).x_train)
    config = method_config(args.method, base, train_size)
    config = dataclasses.replace(config, use_diversity=config.use_diversity and not args.no_diversity,
                                 use_difficulty=config.use_difficulty and not args.no_difficulty,
                                 use_priority=config.use_priority and not args.no_priority)
    out = Path(args.out or f"runs/distill/{args.preset}_{args.method}_s{args.seed}")
    metrics = run_distillation(config, seed=args.seed, out=out, eval_every=args.eval_every, progress=not args.no_progress, label=args.method)
    print(markdown_table(
        ["method", "dataset", "student", "test acc %", "agreement %", "synthesis s", "KD s", "end-to-end s", "samples"],
        [[args.method, config.dataset, metrics["student"], f"{100 * metrics['test_accuracy']:.2f}",
          f"{100 * metrics['test_agreement']:.2f}", f"{metrics['synthesis_seconds']:.1f}", f"{metrics['kd_seconds']:.1f}",
          f"{metrics['end_to_end_seconds']:.1f}", metrics["samples_made"]]]))
    print(f"\nwrote {out}/metrics.json, student.pt, samples.png, curve.png")
    return metrics


if __name__ == "__main__":
    main()
