"""Headroom benchmark: how much better than the paper's constants can any policy do on an env?

Searches the best static knob vector and the best progress schedule on training seeds (scored by the
student's validation accuracy), trains PPO and SAC (per round, and choosing a whole schedule per run on
the env's ``-Schedule-`` id where it has one), then evaluates every policy on the same held-out
seeds and compares each with `constant` seed by seed (bootstrap and t 95 % CIs of the paired difference
in final test accuracy; Spearman of return against final test accuracy). Writes headroom.json (every
trial and episode), headroom.md, headroom.png and episodes.jsonl (replayable traces) into --out, and
prints the table.

    python scripts/bench_headroom.py --trials 30                                   # digits, everything
    python scripts/bench_headroom.py --agents constant static schedule --knobs alpha beta --trials 20
    python scripts/bench_headroom.py --train-env-kwargs class_knobs=true --eval-env-kwargs class_knobs=true \\
        --agents constant adaptive static          # searches alpha..diversity and each class weight
    python scripts/bench_headroom.py --env-id DistillGym/SSDKD-Digits-Scenarios-v0 \\
        --train-env-kwargs split=train --eval-env-kwargs split=heldout               # held-out instances too
    python scripts/bench_headroom.py --backend ray --parallel-trials 4            # a local Ray cluster
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.evaluation.cli import add_backend_arguments, parse_env_kwargs, parse_seeds, runner_from_arguments
from agents.evaluation.episodes import DEFAULT_EVAL_SEEDS, DEFAULT_TRAIN_SEEDS, METRIC, OBJECTIVE
from agents.evaluation.headroom import POLICIES, HeadroomConfig, HeadroomResult, run_headroom
from agents.evaluation.oracles import SAMPLERS
from agents.evaluation.reports import write_report


def default_out(env_id: str) -> Path:
    """``runs/bench/headroom/<env>`` for ``DistillGym/<env>``."""
    return Path("runs/bench/headroom") / env_id.split(":")[-1].split("/")[-1]


def parse_trained(pairs: list[str]) -> dict[str, str]:
    """``["ppo_schedule=runs/x"]`` -> ``{"ppo_schedule": "runs/x"}`` (``ValueError`` naming a malformed pair)."""
    trained = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--trained takes NAME=DIR, got {pair!r}")
        trained[name] = folder
    return trained


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="DistillGym/SSDKD-Digits-v0")
    parser.add_argument("--train-env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                        help="configuration of the searches and of training (e.g. split=train)")
    parser.add_argument("--eval-env-kwargs", nargs="*", default=None, metavar="KEY=VALUE",
                        help="configuration of the held-out evaluation (default: the training one)")
    parser.add_argument("--train-seeds", nargs="+", default=[f"{DEFAULT_TRAIN_SEEDS[0]}-{DEFAULT_TRAIN_SEEDS[-1]}"],
                        metavar="SEED", help="seeds or ranges A-B of the searches (default %(default)s)")
    parser.add_argument("--eval-seeds", nargs="+", default=[f"{DEFAULT_EVAL_SEEDS[0]}-{DEFAULT_EVAL_SEEDS[-1]}"],
                        metavar="SEED", help="held-out seeds or ranges, disjoint from the training ones (default %(default)s)")
    parser.add_argument("--agents", nargs="+", default=list(POLICIES), choices=POLICIES,
                        help="policies to compare; constant is always included (default: all)")
    parser.add_argument("--trials", type=int, default=30, help="trials per search, the constants included")
    parser.add_argument("--knobs", nargs="+", default=None, metavar="KNOB",
                        help="searched knobs: names, a per-class knob tied (class_weights) or one entry "
                             "(class_weights/3); the rest stay at the constants (default: every action entry)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    parser.add_argument("--search-seed", type=int, default=0)
    parser.add_argument("--parallel-trials", type=int, default=1, help="trials run at once (useful on Ray)")
    parser.add_argument("--objective", default=OBJECTIVE, help="final-metrics key the searches maximise (default %(default)s)")
    parser.add_argument("--metric", default=METRIC, help="final-metrics key reported and compared (default %(default)s)")
    parser.add_argument("--ppo-timesteps", type=int, default=None, help="PPO's training steps (default: its YAML)")
    parser.add_argument("--sac-timesteps", type=int, default=None, help="SAC's training steps (default: its YAML)")
    parser.add_argument("--ppo-schedule-timesteps", type=int, default=None,
                        help="ppo_schedule's training steps, one run each (default: its YAML on the schedule id)")
    parser.add_argument("--sac-schedule-timesteps", type=int, default=None,
                        help="sac_schedule's training steps, one run each (default: its YAML on the schedule id)")
    parser.add_argument("--learner-seed", type=int, default=0)
    parser.add_argument("--trained", nargs="*", default=[], metavar="NAME=DIR",
                        help="evaluate a learner already trained into DIR (scripts/train_policy.py's --out) instead of training it")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    add_backend_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/bench/headroom/<env>)")
    return parser


def main(argv: list[str] | None = None) -> HeadroomResult:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        train_kwargs = parse_env_kwargs(args.train_env_kwargs, args.env_id)
        eval_kwargs = train_kwargs if args.eval_env_kwargs is None else parse_env_kwargs(args.eval_env_kwargs, args.env_id)
        config = HeadroomConfig(
            env_id=args.env_id, train_env_kwargs=train_kwargs, eval_env_kwargs=dict(eval_kwargs),
            train_seeds=parse_seeds(args.train_seeds), eval_seeds=parse_seeds(args.eval_seeds), policies=tuple(args.agents),
            trials=args.trials, knobs=tuple(args.knobs) if args.knobs else None, sampler=args.sampler,
            search_seed=args.search_seed, parallel_trials=args.parallel_trials, objective=args.objective,
            metric=args.metric, timesteps={"ppo": args.ppo_timesteps, "sac": args.sac_timesteps,
                                                      "ppo_schedule": args.ppo_schedule_timesteps,
                                                      "sac_schedule": args.sac_schedule_timesteps},
            learner_seed=args.learner_seed, trained=parse_trained(args.trained), resamples=args.resamples)
    except ValueError as err:
        parser.error(str(err))
    out = args.out or default_out(args.env_id)
    start = time.perf_counter()
    with runner_from_arguments(args) as runner:
        try:
            result = run_headroom(config, runner, out=out, progress=not args.no_progress)
        except (KeyError, ValueError) as err:  # e.g. an env that does not report the objective, an unknown knob
            parser.exit(2, f"{parser.prog}: error: {err.args[0] if err.args else err}\n")
    paths = write_report(result, out)
    print(paths["md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - start:.1f} s")
    return result


if __name__ == "__main__":
    main()
