"""Predictive validity of the fast tier: the same policies (the paper's constants, random static and schedule
settings, searched oracles of several knob groups, learners over several training seeds) on the same test
seeds of every fast-tier family and of the validation tier (SSD-KD on Fashion-MNIST with convolutional
networks); per fast-tier family, Spearman's ρ between the tiers' paired gains over the constants with a
bootstrap CI, a scatter, the validation gain of the fast tier's best-ranked policies, and the learners' IQM.

Resumable: every search, learner and (tier, policy) evaluation is a cell in --out; re-run the same command
after a kill. The validation tier's runs are one task a run: --backend ray spreads them over the cores
(--num-cpus) or a cluster (--address).

    python scripts/bench_validity.py --backend ray --num-cpus 2 --workers 2 --out runs/bench/validity
    python scripts/bench_validity.py --tiers DistillGym/SSDKD-Digits-SmallBuffer-Scenarios-v1   # one tier now
    python scripts/bench_validity.py --report-from docs/results/validity --out runs/replot   # re-plot, no runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.evaluation.cli import add_backend_arguments, parse_seeds, runner_from_arguments
from agents.evaluation.oracles import SEARCHED
from agents.evaluation.sensitivity import KNOB_GROUPS
from agents.evaluation.validity import ALL_KNOBS, FAST_TIERS, ValidityConfig, ValidityResult, run_validity, tier_name
from agents.evaluation.validity_report import result_from_files, write_validity

DEFAULTS = ValidityConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast-ids", nargs="+", default=list(DEFAULTS.fast_ids), choices=list(FAST_TIERS), metavar="ID")
    parser.add_argument("--test-seeds", nargs="+", default=[f"{DEFAULTS.test_seeds[0]}-{DEFAULTS.test_seeds[-1]}"],
                        metavar="SEED", help="seeds of every tier's held-out instances (default %(default)s)")
    parser.add_argument("--random-policies", type=int, default=DEFAULTS.random_policies,
                        help="random static and as many schedule settings, half with the learning rate at x1")
    parser.add_argument("--search-seeds", nargs="+", default=["1000-1007"], metavar="SEED")
    parser.add_argument("--groups", nargs="+", default=list(DEFAULTS.search_groups), choices=list(KNOB_GROUPS))
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULTS.search_kinds), choices=list(SEARCHED))
    parser.add_argument("--trials", type=int, default=DEFAULTS.trials)
    parser.add_argument("--learners", nargs="*", default=list(DEFAULTS.learners))
    parser.add_argument("--learner-seeds", nargs="+", default=["0-4"], metavar="SEED")
    parser.add_argument("--recommended-id", default=DEFAULTS.recommended_id, choices=[*FAST_TIERS, "none"], metavar="ID",
                        help="a fast tier the learners are also trained on, once per --learner-knobs entry "
                             "('none': no such learners; default %(default)s)")
    parser.add_argument("--learner-knobs", nargs="+", default=list(DEFAULTS.learner_knobs), metavar="GROUP",
                        choices=[ALL_KNOBS, *KNOB_GROUPS],
                        help=f"what the --recommended-id learners act on, a learner group each: {ALL_KNOBS!r}, or a knob group "
                             "(every other knob held at the constants in training and on every tier; default %(default)s)")
    parser.add_argument("--tiers", nargs="*", default=None, metavar="ID",
                        help="evaluate only these tiers now (default: the validation tier, then the fast ones)")
    parser.add_argument("--policies", nargs="+", default=None, metavar="PATTERN",
                        help="evaluate only the policies whose labels match (shell patterns, e.g. 'a2c_schedule-*'): "
                             "processes given disjoint patterns share the work")
    parser.add_argument("--ready-only", action="store_true",
                        help="evaluate only the constants and the random settings (no search or training): a second "
                             "process can do this while the first searches and trains")
    parser.add_argument("--workers", type=int, default=1, help="processes a fast-tier lockstep batch is split over")
    parser.add_argument("--resamples", type=int, default=DEFAULTS.resamples)
    parser.add_argument("--report-from", type=Path, default=None, metavar="DIR",
                        help="write the report and scatter of a finished study from its config.json and rows.csv")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/validity"))
    parser.add_argument("--no-progress", action="store_true")
    add_backend_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> ValidityResult:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report_from is not None:
        result = result_from_files(args.report_from / "config.json", args.report_from / "rows.csv")
        paths = write_validity(result, args.out)
        print(paths["report"].read_text())
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
        return result
    try:
        config = ValidityConfig(fast_ids=tuple(args.fast_ids), test_seeds=parse_seeds(args.test_seeds),
                                random_policies=args.random_policies, search_seeds=parse_seeds(args.search_seeds),
                                search_groups=tuple(args.groups), search_kinds=tuple(args.kinds), trials=args.trials,
                                learners=tuple(args.learners), learner_seeds=parse_seeds(args.learner_seeds),
                                recommended_id=None if args.recommended_id == "none" else args.recommended_id,
                                learner_knobs=tuple(args.learner_knobs), workers=args.workers, resamples=args.resamples)
    except ValueError as err:
        parser.error(str(err))
    start = time.perf_counter()
    with runner_from_arguments(args) as runner:
        result = run_validity(config, args.out, runner, progress=not args.no_progress,
                              tiers=tuple(args.tiers) if args.tiers is not None else None, ready_only=args.ready_only,
                              policies=tuple(args.policies) if args.policies else None)
    command = "python scripts/bench_validity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    seconds = time.perf_counter() - start
    evaluated = {row["tier"] for row in result.rows}
    if args.ready_only or evaluated != {config.validation_id, *config.fast_ids}:
        waiting = sorted(tier_name(t) for t in {config.validation_id, *config.fast_ids} - evaluated)
        print(f"evaluated {sorted(tier_name(t) for t in evaluated)} in {seconds / 60:.1f} min; still to run: {waiting}")
        return result
    header = (f"`{command}`\n\n{len(result.policies)} policies; one torch thread per process, backend {args.backend}; "
              f"{seconds / 60:.1f} min this invocation (cells finished before are read, not re-run).\n\n")
    paths = write_validity(result, args.out, header)
    print(paths["report"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return result


if __name__ == "__main__":
    main()
