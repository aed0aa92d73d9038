"""The leaderboard: learners × training seeds beside the paper's constants, random and the searched static
and schedule oracles, every policy on the same held-out instances and seeds; rliable's IQM with 95 %
stratified-bootstrap CIs, probability of improvement over the constants and performance profiles.

Resumable: finished cells (a policy with one training seed) are kept in --out and skipped when the same
command runs again; more learners or seeds extend the same leaderboard. Writes scores.csv (one row per
policy, training seed and held-out seed), leaderboard.json / .md / .png, and prints the table.

    python scripts/ablate.py --learners ppo_schedule sac_schedule td3_schedule --train-seeds 0-4
    python scripts/ablate.py --learners ppo_schedule ppo --timesteps ppo_schedule=320 ppo=3840
    python scripts/ablate.py --learners ppo_schedule --backend ray --address auto   # learners train on a cluster
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.evaluation.cli import add_backend_arguments, parse_env_kwargs, parse_seeds, runner_from_arguments
from agents.evaluation.leaderboard import BASELINES, LeaderboardConfig, LeaderboardResult, run_leaderboard
from agents.evaluation.leaderboard_report import write_leaderboard
from agents.evaluation.oracles import SAMPLERS, SEARCHED

DEFAULTS = LeaderboardConfig()


def seed_range(seeds: tuple[int, ...]) -> str:
    return f"{seeds[0]}-{seeds[-1]}"


def parse_timesteps(tokens: list[str], learners: tuple[str, ...]) -> dict[str, int]:
    """``["320", "ppo=4000"]`` -> a budget per learner (``ValueError`` naming a malformed token or an unknown learner)."""
    budgets: dict[str, int] = {}
    for token in tokens:
        name, sep, steps = token.rpartition("=")
        if not steps.isdigit() or int(steps) < 1:
            raise ValueError(f"--timesteps takes STEPS or NAME=STEPS with STEPS a positive integer, got {token!r}")
        if sep and name not in learners:
            raise ValueError(f"--timesteps {token!r}: {name!r} is not among the learners {list(learners)}")
        budgets.update({name: int(steps)} if sep else {learner: int(steps) for learner in learners})
    return budgets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default=DEFAULTS.env_id, help="the per-round env every policy is evaluated on")
    parser.add_argument("--learners", nargs="*", default=list(DEFAULTS.learners), metavar="NAME",
                        help="registry learners (ppo, sac, ...: one action per round) or NAME_schedule (one schedule "
                             "per run, trained on the one-decision id); default %(default)s")
    parser.add_argument("--baselines", nargs="*", default=list(DEFAULTS.baselines), choices=list(BASELINES))
    parser.add_argument("--oracles", nargs="*", default=list(DEFAULTS.oracles), choices=list(SEARCHED))
    parser.add_argument("--train-seeds", nargs="+", default=[seed_range(DEFAULTS.train_seeds)], metavar="SEED",
                        help="the learners' training seeds, one run each (default %(default)s)")
    parser.add_argument("--search-seeds", nargs="+", default=[seed_range(DEFAULTS.search_seeds)], metavar="SEED",
                        help="env seeds of the searches and the learning curves (default %(default)s)")
    parser.add_argument("--eval-seeds", nargs="+", default=[seed_range(DEFAULTS.eval_seeds)], metavar="SEED",
                        help="held-out env seeds, disjoint from the search seeds (default %(default)s)")
    parser.add_argument("--train-env-kwargs", nargs="*", default=["split=train"], metavar="KEY=VALUE")
    parser.add_argument("--eval-env-kwargs", nargs="*", default=["split=heldout"], metavar="KEY=VALUE")
    parser.add_argument("--trials", type=int, default=DEFAULTS.trials, help="trials per search, the constants included")
    parser.add_argument("--parallel-trials", type=int, default=DEFAULTS.parallel_trials, help="trials run as one batch")
    parser.add_argument("--sampler", choices=SAMPLERS, default=DEFAULTS.sampler)
    parser.add_argument("--search-seed", type=int, default=DEFAULTS.search_seed)
    parser.add_argument("--timesteps", nargs="*", default=[], metavar="[NAME=]STEPS",
                        help="training budgets: STEPS for every learner, NAME=STEPS for one (default: each YAML block's)")
    parser.add_argument("--workers", type=int, default=2, help="processes the evaluation batches are split over")
    parser.add_argument("--reps", type=int, default=DEFAULTS.reps, help="bootstrap replications")
    add_backend_arguments(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="the leaderboard's folder (default runs/leaderboard/<env>)")
    return parser


def main(argv: list[str] | None = None) -> LeaderboardResult:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = LeaderboardConfig(
            env_id=args.env_id, learners=tuple(args.learners), baselines=tuple(args.baselines), oracles=tuple(args.oracles),
            train_seeds=parse_seeds(args.train_seeds), search_seeds=parse_seeds(args.search_seeds),
            eval_seeds=parse_seeds(args.eval_seeds), train_env_kwargs=parse_env_kwargs(args.train_env_kwargs, args.env_id),
            eval_env_kwargs=parse_env_kwargs(args.eval_env_kwargs, args.env_id), trials=args.trials,
            parallel_trials=args.parallel_trials, sampler=args.sampler, search_seed=args.search_seed,
            timesteps=parse_timesteps(args.timesteps, tuple(args.learners)), workers=args.workers, reps=args.reps)
    except ValueError as err:
        parser.error(str(err))
    out = args.out or Path("runs/leaderboard") / args.env_id.split("/")[-1]
    start = time.perf_counter()
    with runner_from_arguments(args) as runner:
        try:
            result = run_leaderboard(config, runner, out, progress=not args.no_progress)
        except ValueError as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
    paths = write_leaderboard(result, out)
    print(paths["md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - start:.0f} s")
    return result


if __name__ == "__main__":
    main()
