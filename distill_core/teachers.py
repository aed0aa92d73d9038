"""Teachers: trained once per (data set, architecture, recipe, seed) and cached on disk.

A teacher is the expensive, shared part of every distillation episode, so it is trained once, saved
atomically under ``<cache>/teachers/`` and loaded with ``weights_only=True`` afterwards.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from distill_core.common.checkpoint import CheckpointError, atomic_save, check_tensor, load_checkpoint
from distill_core.common.device import resolve_device
from distill_core.common.paths import cache_dir
from distill_core.common.seeding import derive_seed, seeded
from distill_core.data import DatasetSplits, load_dataset
from distill_core.kd import evaluate
from distill_core.models import build_model, has_batchnorm
from distill_core.supervised import TrainRecipe, train_classifier

TEACHER_FORMAT = "distill-gym/teacher/v1"

#: Default (teacher architecture, recipe) per data set. The Fashion-MNIST recipe is the one the teacher
#: benchmark measures (scripts/bench_teacher.py).
DEFAULT_TEACHERS: dict[str, tuple[str, TrainRecipe]] = {
    "digits": ("mlp_bn", TrainRecipe(epochs=30, batch_size=64, lr=0.05)),
    "mnist1d": ("mlp_bn", TrainRecipe(epochs=60, batch_size=128, lr=0.05)),
    "mnist1d_large": ("mlp_bn_deep", TrainRecipe(epochs=20, batch_size=128, lr=0.05)),
    "fashion_mnist": ("convnet_bn", TrainRecipe(epochs=30, batch_size=128, lr=0.05, max_shift=2, hflip=True)),
    "mnist": ("lenet5_bn", TrainRecipe(epochs=5, batch_size=128, lr=0.05, max_shift=2)),
    "cifar10": ("resnet_small", TrainRecipe(epochs=30, batch_size=128, lr=0.1, max_shift=4, hflip=True)),
}

#: Recipes for a (data set, architecture) pair other than the data set's default teacher; any other pair
#: trains with the data set's default recipe.
TEACHER_RECIPES: dict[tuple[str, str], TrainRecipe] = {
    ("fashion_mnist", "convnet_bn_half"): TrainRecipe(epochs=8, batch_size=128, lr=0.05, max_shift=2, hflip=True),
}

#: The student paired with each teacher architecture by default.
DEFAULT_STUDENTS: dict[str, str] = {
    "mlp_bn": "mlp_bn_half",
    "mlp_bn_deep": "mlp_bn_half",
    "convnet_bn": "convnet_bn_half",
    "convnet_bn_half": "convnet_bn_quarter",
    "lenet5_bn": "lenet5_half",
    "resnet_small": "convnet_bn_half",
}


@dataclass(frozen=True)
class TeacherSpec:
    """Everything that determines a teacher's weights (and so its cache key)."""

    dataset: str
    arch: str
    recipe: TrainRecipe
    seed: int = 0
    val_fraction: float = 0.1

    def key(self, data: DatasetSplits | None = None) -> dict:
        """The cache key; with ``data``, also a cheap fingerprint of the training inputs, so a teacher
        trained on other files of the same name (a test's small IDX files, a new download) is not reused."""
        fingerprint = None
        if data is not None:
            fingerprint = f"{len(data.x_train)}|{float(data.x_train.double().sum()):.6f}|{int(data.y_train.sum())}"
        return {
            "dataset": self.dataset,
            "data": fingerprint,
            "arch": self.arch,
            "recipe": self.recipe.as_dict(),
            "seed": self.seed,
            "val_fraction": self.val_fraction,
        }

    def filename(self, data: DatasetSplits | None = None) -> str:
        digest = hashlib.sha256(json.dumps(self.key(data), sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.dataset}__{self.arch}__seed{self.seed}__{digest}.pt"


@dataclass
class Teacher:
    """A frozen teacher (eval mode, no parameter gradients) with its provenance and test metrics."""

    model: nn.Module
    spec: TeacherSpec
    metrics: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    from_cache: bool = False


def teacher_path(spec: TeacherSpec, data: DatasetSplits | None = None) -> Path:
    """Where the teacher for ``spec`` (trained on ``data``) is cached."""
    return cache_dir() / "teachers" / spec.filename(data)


def check_state_dict(state: object, model: nn.Module, *, where: str, fix: str) -> None:
    """Check that ``state`` holds, for every entry of ``model.state_dict()``, a tensor of its dtype and
    shape with finite values: ``load_state_dict`` would cast an integer tensor silently and copy NaN
    weights as they are. Missing or extra entries are left to ``load_state_dict``, which names them.

    :param state: the ``"state_dict"`` entry of a teacher file.
    :param model: a freshly built model of the teacher's architecture.
    :param where: the file, for the message.
    :param fix: what to do about it, for the message.
    :raises CheckpointError: an entry is not a tensor, has another dtype or has NaN / ±Inf values.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: 'state_dict' is a {type(state).__name__}, not a dict of tensors; {fix}")
    for name, ref in model.state_dict().items():
        if name in state:
            check_tensor(state[name], what=f"state_dict[{name!r}]", where=where, fix=fix, dtype=ref.dtype,
                         shape=tuple(ref.shape))


def _freeze(model: nn.Module) -> nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


def get_teacher(
    dataset: str,
    arch: str | None = None,
    recipe: TrainRecipe | None = None,
    *,
    seed: int = 0,
    data: DatasetSplits | None = None,
    device: str = "auto",
    rebuild: bool = False,
    progress: bool = True,
) -> Teacher:
    """Load the cached teacher for these settings, or train and cache it.

    :param dataset: data set name (see ``distill_core.data.list_datasets``).
    :param arch: zoo architecture; default from :data:`DEFAULT_TEACHERS`.
    :param recipe: training recipe; default from :data:`TEACHER_RECIPES` for the pair, else :data:`DEFAULT_TEACHERS`.
    :param seed: initialisation and data-order seed (also selects the validation split).
    :param data: the loaded data set, when the caller has it already.
    :param device: ``"auto"`` (GPU if present), ``"cpu"``, ``"cuda"``.
    :param rebuild: train again even when a cached file exists.
    :param progress: show a progress bar while training.
    :raises CheckpointError: the cached file is corrupt (checksum), foreign, was made for other settings
        or holds non-finite / wrongly typed weights; or training diverged (then nothing is cached).
    """
    default_arch, default_recipe = DEFAULT_TEACHERS.get(dataset, ("mlp_bn", TrainRecipe()))
    arch = arch or default_arch
    spec = TeacherSpec(dataset, arch, recipe or TEACHER_RECIPES.get((dataset, arch), default_recipe), seed)
    dev = resolve_device(device)
    data = data if data is not None else load_dataset(dataset, seed=seed, val_fraction=spec.val_fraction)
    with seeded(derive_seed(seed, "teacher-init")):
        model = build_model(spec.arch, input_shape=data.input_shape, num_classes=data.num_classes)
    if not has_batchnorm(model):
        raise ValueError(f"teacher architecture {spec.arch!r} has no BatchNorm layer; data-free inversion needs one")
    model = model.to(dev)
    path = teacher_path(spec, data)
    hint = f"delete {path} (or pass rebuild=True / --rebuild) to train the teacher again"

    if path.exists() and not rebuild:
        payload = load_checkpoint(path, expected_format=TEACHER_FORMAT, rebuild_hint=hint, map_location=dev)
        if payload.get("key") != spec.key(data):
            raise CheckpointError(f"{path} was made for other settings ({payload.get('key')}); {hint}")
        check_state_dict(payload.get("state_dict"), model, where=str(path), fix=hint)
        try:
            model.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(f"{path} does not fit architecture {spec.arch!r}: {str(err)[:200]}; {hint}") from err
        return Teacher(_freeze(model), spec, dict(payload.get("metrics", {})), path, from_cache=True)

    start = time.perf_counter()
    records = train_classifier(
        model, data.x_train, data.y_train, spec.recipe, seed=seed, x_val=data.x_val, y_val=data.y_val, progress=progress
    )
    seconds = time.perf_counter() - start
    metrics = {
        "test_accuracy": evaluate(model, data.x_test.to(dev), data.y_test)["accuracy"],
        "val_accuracy": records[-1].get("val_accuracy", float("nan")),
        "train_seconds": seconds,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    # a diverged teacher is not cached: every later run would load it and fail far from the cause
    check_state_dict(state, model, where=f"teacher {spec.arch!r} just trained on {spec.dataset!r} (not saved to {path})",
                     fix=f"training diverged: lower the recipe's learning rate (lr={spec.recipe.lr}) or change the seed")
    atomic_save({"format": TEACHER_FORMAT, "key": spec.key(data), "state_dict": state, "metrics": metrics}, path)
    return Teacher(_freeze(model), spec, metrics, path, from_cache=False)
