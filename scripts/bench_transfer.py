"""Transfer benchmark: do the policies of a headroom run still beat the paper's constants elsewhere?

Reads a finished headroom run (its headroom.json: the searched static action and schedule, the trained
PPO / SAC folders) and runs every policy unchanged on the held-out seeds of another env — another data
set or teacher — paired with `constant` on the same seeds (bootstrap and t 95 % CIs of the difference in
final test accuracy). Writes transfer.json, transfer.md, transfer.png and episodes.jsonl into --out and
prints the table. One torch thread per episode.

    python scripts/bench_transfer.py runs/bench/headroom/SSDKD-Digits-SmallBuffer-Scenarios-v0/headroom.json \\
        --env-id DistillGym/SSDKD-MNIST1D-SmallBuffer-Scenarios-v0 --env-kwargs split=heldout
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.evaluation.cli import add_backend_arguments, parse_env_kwargs, parse_seeds, runner_from_arguments
from agents.evaluation.episodes import DEFAULT_EVAL_SEEDS
from agents.evaluation.transfer import TransferConfig, TransferResult, run_transfer, write_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the headroom run's headroom.json")
    parser.add_argument("--env-id", required=True, help="the env the policies are run on")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="its configuration (e.g. split=heldout)")
    parser.add_argument("--eval-seeds", nargs="+", default=[f"{DEFAULT_EVAL_SEEDS[0]}-{DEFAULT_EVAL_SEEDS[-1]}"],
                        metavar="SEED", help="seeds or ranges A-B (default %(default)s)")
    parser.add_argument("--policies", nargs="+", default=None, help="which of the run's policies (default: all)")
    add_backend_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: transfer/<env> beside the source)")
    return parser


def main(argv: list[str] | None = None) -> TransferResult:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = TransferConfig(args.source, args.env_id, dict(parse_env_kwargs(args.env_kwargs, args.env_id)),
                                parse_seeds(args.eval_seeds), tuple(args.policies) if args.policies else None)
        with runner_from_arguments(args) as runner:
            result = run_transfer(config, runner, progress=not args.no_progress)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    out = args.out or Path(args.source).parent / "transfer" / args.env_id.split("/")[-1]
    paths = write_report(result, out)
    print((out / "transfer.md").read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return result


if __name__ == "__main__":
    main()
