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
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from distill_core.common.checkpoint import atomic_save
from distill_core.common.cli import parse_overrides
from distill_core.common.plots import line_plot, sample_grid
from distill_core.common.report import markdown_table, write_json
from distill_core.kd import evaluate
from distill_core.ssdkd.presets import preset
from distill_core.ssdkd.process import (SSDKDConfig, SSDKDProcess, deep_inversion_config, memory_bank_config,
                                        real_kd_config)

STUDENT_FORMAT = "distill-gym/student/v1"
METHODS = ("ssdkd", "memory_bank", "deep_inversion", "real_kd", "real_full")


def method_config(method: str, base: SSDKDConfig, train_size: int) -> SSDKDConfig:
    """The configuration of ``method`` on the budget of ``base``."""
    if method == "ssdkd":
        return base
    if method == "memory_bank":
        return memory_bank_config(base)
    if method == "deep_inversion":
        return deep_inversion_config(base)
    if method == "real_kd":
        return real_kd_config(base)
    if method == "real_full":
        return real_kd_config(base, samples=train_size)
    raise SystemExit(f"unknown method {method!r}: use one of {', '.join(METHODS)}")


def run(config: SSDKDConfig, *, seed: int, out: Path, eval_every: int = 1, progress: bool = True,
        label: str = "", teacher: Any = None, data: Any = None) -> dict[str, Any]:
    """Run one distillation, evaluating on the real test set every ``eval_every`` rounds (untimed)."""
    process = SSDKDProcess(config, teacher=teacher, data=data)
    data, device = process.data, process.device
    x_test, y_test = data.x_test.to(device), data.y_test
    teacher_acc = evaluate(process.teacher.model, x_test, y_test)["accuracy"]

    start = time.perf_counter()
    process.reset(seed)
    setup_seconds = time.perf_counter() - start
    curve: list[dict[str, float]] = []
    elapsed = setup_seconds
    bar = tqdm(total=config.rounds, desc=label or config.synthesis, disable=not progress)
    while not process.done:
        tick = time.perf_counter()
        stats = process.step()
        elapsed += time.perf_counter() - tick
        bar.update()
        if process.round % eval_every == 0 or process.done:
            acc = evaluate(process.student, x_test, y_test)["accuracy"]
            curve.append({"round": process.round, "seconds": elapsed, "test_accuracy": acc, "score": stats.extras["score"]})
            bar.set_postfix(acc=f"{acc:.4f}", score=f"{stats.extras['score']:.3f}")
    bar.close()

    final = evaluate(process.student, x_test, y_test, teacher_logits=None, teacher=process.teacher.model)
    metrics = {
        "label": label,
        "dataset": config.dataset,
        "teacher": process.teacher.spec.arch,
        "student": process.student_arch,
        "seed": seed,
        "teacher_test_accuracy": teacher_acc,
        "test_accuracy": final["accuracy"],
        "test_agreement": final["agreement"],
        "test_kl": final["kl"],
        "synthesis_seconds": process.totals.synthesis_seconds,
        "kd_seconds": process.totals.kd_seconds,
        "setup_seconds": setup_seconds,
        "end_to_end_seconds": elapsed,
        "samples_made": process.totals.samples_made,
        "buffer_size": len(process.buffer),
        "skipped_rounds": process.totals.skipped_rounds,
        "diverged": process.diverged,
        "curve": curve,
        "config": dataclasses.asdict(config),
    }
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in process.student.state_dict().items()}
    atomic_save({"format": STUDENT_FORMAT, "arch": process.student_arch, "dataset": config.dataset,
                 "state_dict": state, "test_accuracy": final["accuracy"]}, out / "student.pt")
    write_json(metrics, out / "metrics.json")
    x, classes = process.buffer.contents()
    sample_grid(data.denormalize(x.cpu()), classes, out / "samples.png", class_names=data.classes,
                title=f"{label or config.synthesis}: buffer samples by teacher-predicted class")
    line_plot({label or config.synthesis: ([c["seconds"] for c in curve], [100 * c["test_accuracy"] for c in curve])},
              out / "curve.png", xlabel="end-to-end seconds (evaluation excluded)", ylabel="student test accuracy %",
              title=f"{config.dataset}: {process.teacher.spec.arch} → {process.student_arch}")
    return metrics


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
    from distill_core.data import load_dataset

    train_size = len(load_dataset(base.dataset, seed=base.teacher_seed).x_train)
    config = method_config(args.method, base, train_size)
    config = dataclasses.replace(config, use_diversity=config.use_diversity and not args.no_diversity,
                                 use_difficulty=config.use_difficulty and not args.no_difficulty,
                                 use_priority=config.use_priority and not args.no_priority)
    out = Path(args.out or f"runs/distill/{args.preset}_{args.method}_s{args.seed}")
    metrics = run(config, seed=args.seed, out=out, eval_every=args.eval_every, progress=not args.no_progress, label=args.method)
    print(markdown_table(
        ["method", "dataset", "student", "test acc %", "agreement %", "synthesis s", "KD s", "end-to-end s", "samples"],
        [[args.method, config.dataset, metrics["student"], f"{100 * metrics['test_accuracy']:.2f}",
          f"{100 * metrics['test_agreement']:.2f}", f"{metrics['synthesis_seconds']:.1f}", f"{metrics['kd_seconds']:.1f}",
          f"{metrics['end_to_end_seconds']:.1f}", metrics["samples_made"]]]))
    print(f"\nwrote {out}/metrics.json, student.pt, samples.png, curve.png")
    return metrics


if __name__ == "__main__":
    main()
