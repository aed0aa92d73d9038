"""Running a distillation method to the end, measuring it and recording everything: the student
checkpoint, a metrics JSON with the learning curve, a grid of buffer samples and a curve PNG.

Shared by ``scripts/distill.py`` and the benchmarks, so every reported number comes from one code path.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from distill_core.common.checkpoint import atomic_save
from distill_core.common.plots import line_plot, sample_grid
from distill_core.common.report import write_json
from distill_core.diagnostics import plot_diagnostics, synthesis_diagnostics
from distill_core.kd import evaluate
from distill_core.ssdkd.config import SSDKDConfig, deep_inversion_config, memory_bank_config, real_kd_config
from distill_core.ssdkd.process import SSDKDProcess

STUDENT_FORMAT = "distill-gym/student/v1"
#: buffer samples (and as many real ones) the end-of-run diagnostics look at
DIAGNOSED = 2048
METHODS = ("ssdkd", "memory_bank", "deep_inversion", "real_kd", "real_full")


def method_config(method: str, base: SSDKDConfig, train_size: int) -> SSDKDConfig:
    """The configuration of ``method`` on the budget of ``base`` (``train_size`` sizes ``real_full``)."""
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
    raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")


def run_distillation(config: SSDKDConfig, *, seed: int, out: Path, eval_every: int = 1, progress: bool = True,
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
        "synthesis_seconds": process.timings["synthesis_seconds"],
        "kd_seconds": process.timings["kd_seconds"],
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
    x, classes = process.buffer.contents()
    if config.synthesis != "real" and len(x) and x.dim() == 4:  # images (pixel histograms mean nothing for 1-D signals)
        # what makes the samples unlike the data, synthetic beside a real batch of the same size
        picked = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(seed))[:min(len(x), DIAGNOSED)]
        diagnostics = synthesis_diagnostics(process.teacher.model, x[:DIAGNOSED].to(device), data.x_train[picked].to(device),
                                            denormalize=data.denormalize, num_classes=data.num_classes)
        write_json(diagnostics, out / "diagnostics.json")
        plot_diagnostics(diagnostics, out / "diagnostics.png", class_names=data.classes,
                         title=f"{label or config.synthesis}: synthetic buffer vs real training images")
        metrics["first_bn_gap"] = {k: diagnostics[k]["first_bn"]["mean_gap"] + diagnostics[k]["first_bn"]["var_gap"]
                                   for k in ("synthetic", "real")}
    write_json(metrics, out / "metrics.json")
    sample_grid(data.denormalize(x.cpu()), classes, out / "samples.png", class_names=data.classes,
                title=f"{label or config.synthesis}: buffer samples by teacher-predicted class")
    line_plot({label or config.synthesis: ([c["seconds"] for c in curve], [100 * c["test_accuracy"] for c in curve])},
              out / "curve.png", xlabel="end-to-end seconds (evaluation excluded)", ylabel="student test accuracy %",
              title=f"{config.dataset}: {process.teacher.spec.arch} → {process.student_arch}")
    return metrics
