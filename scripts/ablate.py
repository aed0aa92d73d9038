"""Ablation over agents: train the learning ones, evaluate all on the same held-out seeds, and write
episodes.csv, summary.csv / summary.md (mean ± 95 % CI of final student accuracy and of return, wall
time), accuracy.png and learning_curves.png.

    python scripts/ablate.py --agents ppo sac constant random schedule --eval-seeds 100 101 102
    python scripts/ablate.py --agents ppo constant --backend ray            # a local Ray cluster
    python scripts/ablate.py --agents ppo constant --backend ray --address auto   # join a running cluster
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.ablation import Job, run_jobs, write_outputs
from agents.backends import add_backend_arguments
from agents.registry import is_learning, list_agents
from distill_core.common.cli import parse_overrides
from envs import registered_config


def main(argv: list[str] | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["ppo", "sac", "constant", "random", "schedule"])
    parser.add_argument("--env-id", default="DistillGym/SSDKD-Digits-v0")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=list(range(100, 110)))
    parser.add_argument("--timesteps", type=int, default=None, help="training steps per learning agent (default: YAML)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="env configuration overrides")
    add_backend_arguments(parser)
    parser.add_argument("--out", default="runs/ablation")
    args = parser.parse_args(argv)
    unknown = [a for a in args.agents if a not in list_agents()]
    if unknown:
        parser.error(f"unknown agents {unknown}: use names from {', '.join(list_agents())}")
    try:
        env_kwargs = parse_overrides(args.set, type(registered_config(args.env_id)))
    except ValueError as err:
        parser.error(str(err))
    out = Path(args.out)
    jobs = [Job(agent, seed, args.env_id, env_kwargs, tuple(args.eval_seeds), str(out), args.timesteps)
            for agent in args.agents for seed in (args.train_seeds if is_learning(agent) else args.train_seeds[:1])]
    results = run_jobs(jobs, backend=args.backend, address=args.address, num_cpus=args.num_cpus)
    summaries = write_outputs(results, out, title=f"{args.env_id}: final student accuracy, mean ± 95 % CI")
    print((out / "summary.md").read_text())
    print(f"wrote {out}/episodes.csv, summary.csv, summary.md, accuracy.png" + (", learning_curves.png" if (out / "learning_curves.png").exists() else ""))
    return summaries


if __name__ == "__main__":
    main()
