"""Benchmark: train a teacher from scratch and record its test accuracy and wall time.

    python scripts/bench_teacher.py                       # Fashion-MNIST ConvNet-BN, seed 0
    python scripts/bench_teacher.py --dataset digits --seeds 0 1 2

Writes ``runs/bench/teacher_<dataset>.json`` and prints a markdown table. The trained teacher also lands
in the cache, so later runs reuse it.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from distill_core.common.report import markdown_table, write_json
from distill_core.data import load_dataset
from distill_core.teachers import DEFAULT_TEACHERS, get_teacher


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="JSON path (default runs/bench/teacher_<dataset>.json)")
    args = parser.parse_args(argv)

    arch, recipe = DEFAULT_TEACHERS[args.dataset]
    rows, runs = [], []
    for seed in args.seeds:
        data = load_dataset(args.dataset, seed=seed)
        teacher = get_teacher(args.dataset, seed=seed, data=data, device=args.device, rebuild=True)
        run = {"seed": seed, **teacher.metrics}
        runs.append(run)
        rows.append([args.dataset, arch, seed, recipe.epochs, f"{100 * run['test_accuracy']:.2f}", f"{run['train_seconds']:.0f}"])
    result = {
        "dataset": args.dataset,
        "arch": arch,
        "recipe": recipe.as_dict(),
        "runs": runs,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "torch": torch.__version__, "device": str(next(teacher.model.parameters()).device)},
    }
    path = write_json(result, args.out or f"runs/bench/teacher_{args.dataset}.json")
    print(markdown_table(["dataset", "teacher", "seed", "epochs", "test acc %", "train s"], rows))
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
