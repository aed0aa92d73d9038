"""Running a condensation method to the end, evaluating it with the protocol and recording everything:
the synthetic set (with DD's learned schedule), a metrics JSON, a PNG grid of the images and a PNG of
the cheap evaluator's score over the run.

Shared by ``scripts/condense.py`` and ``scripts/bench_condense.py``, so every reported number comes from
one code path.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from distill_core.common.device import resolve_device
from distill_core.common.plots import line_plot, sample_grid
from distill_core.common.report import write_json
from distill_core.condense.baselines import herding, random_subset
from distill_core.condense.dc import DCProcess
from distill_core.condense.dd import DDProcess
from distill_core.condense.dm import DMProcess
from distill_core.condense.evaluator import EvalRecipe, evaluate_synthetic
from distill_core.condense.presets import condense_config, eval_recipe
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.data import DatasetSplits, load_dataset

#: Learned methods are step-wise processes; coreset baselines are one-shot selections.
PROCESS_METHODS = ("dm", "dc", "dsa", "dd")
CORESET_METHODS = ("random", "herding")
METHODS = PROCESS_METHODS + CORESET_METHODS


def make_process(method: str, config: Any, data: DatasetSplits | None = None) -> Any:
    """The step-wise process of a learned ``method`` over ``config``."""
    classes = {"dm": DMProcess, "dc": DCProcess, "dsa": DCProcess, "dd": DDProcess}
    if method not in classes:
        raise ValueError(f"unknown learned method {method!r}: use one of {', '.join(PROCESS_METHODS)}")
    return classes[method](config, data=data)


def run_condensation(method: str, *, dataset: str, images_per_class: int, seed: int, out: Path,
                     overrides: dict[str, Any] | None = None, num_models: int = 3, recipe_overrides: dict[str, Any] | None = None,
                     progress: bool = True, data: DatasetSplits | None = None, device: str = "auto") -> dict[str, Any]:
    """Make a synthetic set with ``method`` and evaluate it on the real test split.

    :param method: one of :data:`METHODS`.
    :param overrides: configuration fields to change from the preset (learned methods only).
    :param num_models: evaluation networks trained from different seeds (DD with a fixed initialisation
        replays one θ₀, so it evaluates once).
    :param recipe_overrides: fields of the preset's :class:`EvalRecipe` to change.
    :return: the metrics also written to ``out/metrics.json``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    data = data if data is not None else load_dataset(dataset)
    config = None
    curve: list[dict[str, float]] = []
    start = time.perf_counter()
    if method in CORESET_METHODS:
        synthetic = random_subset(data, images_per_class, seed=seed) if method == "random" else herding(data, images_per_class)
        condense_seconds = time.perf_counter() - start
    else:
        config = condense_config(method, dataset, images_per_class, device=device, **(overrides or {}))
        process = make_process(method, config, data=data)
        stats = process.reset(seed)
        condense_seconds = time.perf_counter() - start
        curve.append({"iteration": 0, "seconds": condense_seconds, "score": stats.extras["score"]})
        bar = tqdm(total=config.iterations, desc=f"{method} ipc={images_per_class}", disable=not progress)
        while not process.done:
            tick = time.perf_counter()
            stats = process.step()
            condense_seconds += time.perf_counter() - tick
            bar.update()
            if stats.scored:
                curve.append({"iteration": process.iteration, "seconds": condense_seconds, "score": stats.extras["score"]})
                bar.set_postfix(val=f"{stats.extras['score']:.3f}")
        bar.close()
        synthetic = process.synthetic_set()

    recipe = eval_recipe(method, dataset, images_per_class, **(recipe_overrides or {}))
    tick = time.perf_counter()
    result = evaluate_synthetic(synthetic, data, num_models=num_models, recipe=recipe, seed=seed, device=resolve_device(device))
    eval_seconds = time.perf_counter() - tick
    metrics = {
        "method": method,
        "dataset": data.name,
        "images_per_class": images_per_class,
        "images": len(synthetic.y),
        "seed": seed,
        "test_mean": result["mean"],
        "test_std": result["std"],
        "test_accuracies": result["accuracies"],
        "eval_arch": result["arch"],
        "eval_recipe": result["recipe"],
        "eval_models": result["num_models"],
        "condense_seconds": condense_seconds,
        "eval_seconds": eval_seconds,
        "torch_threads": torch.get_num_threads(),  # the times above depend on it
        "curve": curve,
        "config": dataclasses.asdict(config) if config is not None else {},
    }
    out.mkdir(parents=True, exist_ok=True)
    # what the protocol needs to reproduce the reported numbers from the file alone
    synthetic.meta.update(eval_recipe=result["recipe"], eval_seed=seed, eval_models=result["num_models"], test_mean=result["mean"])
    synthetic.save(out / "synthetic.pt")
    write_json(metrics, out / "metrics.json")
    sample_grid(data.denormalize(synthetic.x), synthetic.y, out / "synthetic.png", class_names=data.classes,
                per_class=min(10, synthetic.images_per_class),
                title=f"{method}, {images_per_class} per class: test {100 * result['mean']:.1f} ± {100 * result['std']:.1f} %")
    if len(curve) > 1:
        line_plot({method: ([c["iteration"] for c in curve], [100 * c["score"] for c in curve])}, out / "score.png",
                  xlabel="outer iteration", ylabel="cheap evaluator, validation accuracy %",
                  title=f"{data.name}: {method}, {images_per_class} per class")
    return metrics


def load_and_evaluate(path: str | Path, *, num_models: int | None = None, seed: int | None = None, device: str = "auto",
                      data: DatasetSplits | None = None) -> dict[str, Any]:
    """Evaluate a saved synthetic set with the recipe, seed and number of networks it was reported with
    (when the file records them; else the method's preset recipe), so the numbers come out the same."""
    synthetic = SyntheticSet.load(path)
    data = data if data is not None else load_dataset(synthetic.dataset)
    meta = synthetic.meta
    if "eval_recipe" in meta and synthetic.lrs is None:  # a DD set records its replay, not a recipe
        recipe = EvalRecipe(**meta["eval_recipe"])
    else:
        recipe = eval_recipe(synthetic.method, synthetic.dataset, synthetic.images_per_class)
    return evaluate_synthetic(synthetic, data, num_models=num_models or meta.get("eval_models", 3),
                              recipe=recipe, seed=meta.get("eval_seed", 0) if seed is None else seed,
                              device=resolve_device(device))
