"""The demo `make demo` runs: a digits teacher (trained once, then cached) distilled into a half-width
student, on all real training images and on a 10 % random subset, compared in one table.

    python scripts/demo.py [--seed 0] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import torch

from distill_core.common.report import markdown_table
from distill_core.common.seeding import derive_seed, seeded, torch_generator
from distill_core.data import load_dataset
from distill_core.kd import KDConfig, evaluate, kd_train
from distill_core.models import build_model
from distill_core.teachers import DEFAULT_STUDENTS, get_teacher


def main(argv: list[str] | None = None) -> list[list[object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    data = load_dataset("digits", seed=args.seed)
    print(data.describe())
    teacher = get_teacher("digits", seed=args.seed, data=data, device=args.device)
    device = next(teacher.model.parameters()).device
    print(f"teacher {teacher.spec.arch}: {'loaded from' if teacher.from_cache else 'trained and saved to'} {teacher.path}")

    x_test, y_test = data.x_test.to(device), data.y_test
    rows = [["teacher " + teacher.spec.arch, len(data.x_train), f"{100 * evaluate(teacher.model, x_test, y_test)['accuracy']:.2f}", "-", "-"]]
    subset = torch.randperm(len(data.x_train), generator=torch_generator(derive_seed(args.seed, "subset")))
    student_arch = DEFAULT_STUDENTS[teacher.spec.arch]
    for label, n in [("KD, all real images", len(data.x_train)), ("KD, 10 % real images", len(data.x_train) // 10)]:
        with seeded(derive_seed(args.seed, "student-init")):
            student = build_model(student_arch, input_shape=data.input_shape, num_classes=data.num_classes).to(device)
        start = time.perf_counter()
        kd_train(student, teacher.model, data.x_train[subset[:n]], KDConfig(epochs=40, batch_size=64), seed=args.seed)
        metrics = evaluate(student, x_test, y_test, teacher.model)
        rows.append([f"{label} → {student_arch}", n, f"{100 * metrics['accuracy']:.2f}", f"{100 * metrics['agreement']:.2f}", f"{time.perf_counter() - start:.1f}"])
    table = markdown_table(["model", "train images", "test acc %", "agreement %", "KD s"], rows)
    print(table)
    return rows


if __name__ == "__main__":
    main()
