"""Condense a data set into a few synthetic images per class with one method, evaluate the result with
the protocol (K fresh ConvNet-3s trained on it, real test accuracy mean ± std) and record everything.

    python scripts/condense.py --method dm --dataset digits --ipc 10
    python scripts/condense.py --method dd --dataset fashion_mnist --ipc 1 --set init=random
    python scripts/condense.py --method dsa --dataset fashion_mnist --ipc 10 --seed 1 --out runs/fm_dsa10
    python scripts/condense.py --evaluate runs/condense/digits_dm_ipc10_s0/synthetic.pt

Methods: dm (distribution matching), dc (gradient matching), dsa (gradient matching with differentiable
siamese augmentation), dd (dataset distillation with learned step sizes), random, herding.

Writes to ``--out``: ``synthetic.pt`` (images, labels and, for DD, the learned step sizes; atomic),
``metrics.json`` (test accuracy mean ± std, condensation and evaluation time, the cheap evaluator's
curve, the configuration), ``synthetic.png`` (the images, one row per class) and ``score.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from distill_core.common.checkpoint import CheckpointError
from distill_core.common.cli import parse_overrides
from distill_core.common.report import markdown_table
from distill_core.condense.presets import config_class
from distill_core.condense.runner import METHODS, PROCESS_METHODS, load_and_evaluate, run_condensation


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="dm", choices=METHODS)
    parser.add_argument("--dataset", default="digits", help="digits, fashion_mnist, mnist, cifar10, mnist1d")
    parser.add_argument("--ipc", type=int, default=10, help="synthetic images per class")
    parser.add_argument("--seed", type=int, default=None, help="run seed (default 0; with --evaluate, the recorded one)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override configuration fields")
    parser.add_argument("--eval-models", type=int, default=None, help="evaluation networks (default 3; with --evaluate, the recorded number)")
    parser.add_argument("--eval-epochs", type=int, default=None, help="override the evaluation recipe's epochs")
    parser.add_argument("--evaluate", default=None, metavar="SYNTHETIC_PT", help="only evaluate a saved synthetic set")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="output folder (default runs/condense/<dataset>_<method>_ipc<N>_s<seed>)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if args.evaluate:
        try:
            result = load_and_evaluate(args.evaluate, num_models=args.eval_models, seed=args.seed, device=args.device)
        except (CheckpointError, FileNotFoundError) as err:  # a bad file is the user's to fix: the message, no traceback
            parser.error(str(err))
        print(f"{args.evaluate}: test accuracy {100 * result['mean']:.2f} ± {100 * result['std']:.2f} % "
              f"over {result['num_models']} {result['arch']} networks")
        return result
    try:
        overrides = parse_overrides(args.set, config_class(args.method)) if args.method in PROCESS_METHODS else {}
    except ValueError as err:
        parser.error(str(err))
    if args.set and args.method not in PROCESS_METHODS:
        parser.error(f"--set does not apply to {args.method}: it has no configuration")
    args.seed = 0 if args.seed is None else args.seed
    out = Path(args.out or f"runs/condense/{args.dataset}_{args.method}_ipc{args.ipc}_s{args.seed}")
    recipe = {"epochs": args.eval_epochs} if args.eval_epochs else None
    metrics = run_condensation(args.method, dataset=args.dataset, images_per_class=args.ipc, seed=args.seed, out=out,
                               overrides=overrides, num_models=args.eval_models or 3, recipe_overrides=recipe,
                               progress=not args.no_progress, device=args.device)
    print(markdown_table(
        ["method", "dataset", "img/cls", "test acc %", "condense s", "eval s"],
        [[args.method, metrics["dataset"], args.ipc, f"{100 * metrics['test_mean']:.2f} ± {100 * metrics['test_std']:.2f}",
          f"{metrics['condense_seconds']:.1f}", f"{metrics['eval_seconds']:.1f}"]]))
    print(f"\nwrote {out}/metrics.json, synthetic.pt, synthetic.png")
    return metrics


if __name__ == "__main__":
    main()
