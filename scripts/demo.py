"""The demo `make demo` runs — the main job on the embedded digits data:

1. load (or train once and cache) the digits teacher;
2. train PPO briefly on ``DistillGym/SSDKD-Digits-v0`` (each episode is one whole SSD-KD run; the agent
   sets α, β, γ and the diversity strength every round);
3. evaluate PPO, ``constant`` (the paper's defaults) and ``random`` on the same held-out seeds;
4. print the table and write ``runs/demo/{summary.md, episodes.csv, accuracy.png, learning_curves.png}``.

    python scripts/demo.py [--timesteps 600] [--eval-seeds 100 ... 109] [--out runs/demo]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.ablation import Job, run_jobs, write_outputs
from distill_core.data import load_dataset
from distill_core.teachers import get_teacher

ENV_ID = "DistillGym/SSDKD-Digits-v0"


def main(argv: list[str] | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=None, help="PPO training steps (default: agents/hyperparams/ppo.yml)")
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=list(range(100, 110)))
    parser.add_argument("--out", default="runs/demo")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    data = load_dataset("digits")
    teacher = get_teacher("digits", data=data)
    print(data.describe())
    print(f"teacher {teacher.spec.arch}: test accuracy {100 * teacher.metrics['test_accuracy']:.2f} % "
          f"({'cached' if teacher.from_cache else 'trained now'}: {teacher.path})\n")
    out = Path(args.out)
    jobs = [Job(agent, 0, ENV_ID, {}, tuple(args.eval_seeds), str(out), args.timesteps) for agent in ("ppo", "constant", "random")]
    print(f"training PPO on {ENV_ID}, then evaluating ppo / constant / random on {len(args.eval_seeds)} held-out seeds ...")
    results = run_jobs(jobs)
    summaries = write_outputs(results, out, title=f"{ENV_ID}: final student accuracy, mean ± 95 % CI")
    print()
    print((out / "summary.md").read_text())
    print(f"wrote {out}/summary.md, episodes.csv, accuracy.png, learning_curves.png in {time.perf_counter() - start:.0f} s")
    return summaries


if __name__ == "__main__":
    main()
