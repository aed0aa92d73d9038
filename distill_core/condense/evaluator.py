"""The one evaluation protocol for synthetic sets: train K freshly initialised networks of a stated
architecture on the set with a stated recipe, report real test accuracy as mean ± std (DC/DSA/DM style).
A dataset-distillation set carries its learned step sizes: it is evaluated by replaying them
(:func:`distill_core.condense.unroll.evaluate_dd`), which :func:`evaluate_synthetic` does by itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from distill_core.augment import augment_batch
from distill_core.common.batching import CHUNK, PREDICT_BATCH, minibatches
from distill_core.common.config_checks import MAX_SAMPLES, MAX_SHIFT, bounded, check_fields
from distill_core.common.seeding import derive_seed, seeded, torch_generator
from distill_core.condense.dsa import DSA_STRATEGY, dsa_random
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.condense.unroll import evaluate_dd
from distill_core.data import DatasetSplits
from distill_core.kd import evaluate
from distill_core.models import build_model, has_batchnorm


@dataclass(frozen=True)
class EvalRecipe:
    """How each evaluation network is trained on the synthetic set.

    :param epochs: passes over the synthetic set (DC uses 300–1000 for tiny sets).
    :param batch_size: minibatch size.
    :param lr: SGD learning rate (momentum 0.9), divided by 10 at half the epochs.
    :param weight_decay: SGD weight decay.
    :param max_shift: per-sample random shift while training (0 = off).
    :param hflip: random horizontal flips while training.
    :param dsa: differentiable siamese augmentation (DSA's ``color_crop_cutout_flip_scale_rotate``) while
        training, parameters drawn per image for every minibatch (how DSA and DM evaluate their sets);
        applied after the shift/flip above.
    """

    epochs: int = bounded(300, 1)
    batch_size: int = bounded(256, 1, MAX_SAMPLES)
    lr: float = bounded(0.01, above=0.0)
    weight_decay: float = bounded(5e-4, 0.0)
    max_shift: int = bounded(0, 0, MAX_SHIFT)
    hflip: bool = False
    dsa: bool = False

    def __post_init__(self) -> None:
        check_fields(self)


def backward_in_chunks(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = CHUNK) -> float:
    """Accumulate the gradient of the mean cross-entropy of ``model`` on ``(x, y)`` into ``.grad``,
    ``chunk`` images per pass (one pass for a network with BatchNorm: it normalises over the batch, so
    its batch cannot be split); returns the loss."""
    if has_batchnorm(model) or len(x) <= chunk:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return float(loss.detach())
    total = 0.0
    for i in range(0, len(x), chunk):
        part = F.cross_entropy(model(x[i:i + chunk]), y[i:i + chunk], reduction="sum") / len(x)
        part.backward()
        total += float(part.detach())
    return total


def train_on_synthetic(synthetic: SyntheticSet, data: DatasetSplits, *, arch: str = "convnet3_in",
                       model_kwargs: dict | None = None, recipe: EvalRecipe = EvalRecipe(), seed: int = 0,
                       device: str | torch.device = "cpu") -> torch.nn.Module:
    """One network of ``arch`` (with ``model_kwargs``) trained from a seeded initialisation on the set."""
    with seeded(derive_seed(seed, "eval-init")):
        model = build_model(arch, input_shape=data.input_shape, num_classes=data.num_classes, **(model_kwargs or {})).to(device)
    x, y = synthetic.x.detach().to(device), synthetic.y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[recipe.epochs // 2], gamma=0.1)
    order_gen = torch_generator(derive_seed(seed, "eval-order"))
    aug_gen = torch_generator(derive_seed(seed, "eval-augment"), device)
    model.train()
    for _ in range(recipe.epochs):
        for idx in minibatches(torch.randperm(len(x), generator=order_gen).to(device), recipe.batch_size):
            xb = augment_batch(x[idx], aug_gen, max_shift=recipe.max_shift, hflip=recipe.hflip)
            if recipe.dsa:
                xb = dsa_random(xb, DSA_STRATEGY, aug_gen)
            optimizer.zero_grad(set_to_none=True)
            backward_in_chunks(model, xb, y[idx])
            optimizer.step()
        scheduler.step()
    return model


def evaluate_synthetic(synthetic: SyntheticSet, data: DatasetSplits, *, arch: str = "convnet3_in", num_models: int = 3,
                       recipe: EvalRecipe = EvalRecipe(), seed: int = 0, split: str = "test",
                       device: str | torch.device = "cpu") -> dict:
    """Train ``num_models`` networks on the synthetic set and report their accuracy on a real split.

    A set with a learned schedule (DD) is replayed instead (:func:`~distill_core.condense.unroll.evaluate_dd`):
    its architecture and initialisation come from the set, so ``arch`` and ``recipe`` do not apply.

    :param split: ``"test"`` (report) or ``"val"`` (model selection / rewards; keeps the test set unseen).
    :return: ``{"mean", "std", "accuracies", "arch", "recipe", "num_models"}`` (accuracies as fractions).
    :raises CheckpointError: the set is invalid or not for ``data`` (:meth:`SyntheticSet.validate`).
    """
    # before any training: NaN images or another data set's set would otherwise "evaluate" to chance
    synthetic.validate(data)
    if synthetic.lrs is not None:
        return evaluate_dd(synthetic, data, num_models=num_models, seed=seed, split=split, device=device)
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    x_eval, y_eval = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
    accuracies = []
    for k in range(num_models):
        model = train_on_synthetic(synthetic, data, arch=arch, recipe=recipe, seed=derive_seed(seed, "eval-model", k), device=device)
        accuracies.append(evaluate(model, x_eval.to(device), y_eval, batch_size=PREDICT_BATCH)["accuracy"])
    return {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "accuracies": accuracies,
            "arch": arch, "recipe": asdict(recipe), "num_models": num_models}
