"""Train an agent on a distill-gym env id (SB3 Monitor, EvalCallback on held-out seeds, checkpoints,
optional VecNormalize, CSV / TensorBoard logs, progress bar).

    python scripts/train_policy.py --agent ppo --env-id DistillGym/SSDKD-Digits-v0 --timesteps 600
    python scripts/train_policy.py --agent sac --env-id DistillGym/SSDKD-Digits-v0 --resume   # after a kill

Outputs in ``--out`` (default ``runs/policies/<env>/<agent>_s<seed>``): model.zip, vecnormalize.pkl
(if normalising), checkpoints/, eval/evaluations.npz, monitor/, logs/ (progress.csv, TensorBoard).
``--resume`` continues from the newest checkpoint that can be read (an unreadable one, e.g. cut short by
the kill, is skipped with a warning) and appends to every log, so the curves cover the whole run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.registry import list_agents
from agents.training import DEFAULT_EVAL_SEEDS, train_agent
from distill_core.common.cli import parse_overrides
from envs import registered_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", required=True, choices=list_agents())
    parser.add_argument("--env-id", default="DistillGym/SSDKD-Digits-v0")
    parser.add_argument("--timesteps", type=int, default=None, help="default: n_timesteps from agents/hyperparams")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=list(DEFAULT_EVAL_SEEDS))
    parser.add_argument("--normalize", choices=["yes", "no"], default=None, help="VecNormalize (default: from YAML)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="env configuration overrides")
    parser.add_argument("--resume", action="store_true", help="continue from the newest readable checkpoint in --out, appending to the logs")
    parser.add_argument("--out", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        env_kwargs = parse_overrides(args.set, type(registered_config(args.env_id)))
    except ValueError as err:
        parser.error(str(err))
    out = Path(args.out or f"runs/policies/{args.env_id.replace('/', '_')}/{args.agent}_s{args.seed}")
    result = train_agent(args.agent, args.env_id, out=out, seed=args.seed, timesteps=args.timesteps,
                         env_kwargs=env_kwargs, normalize=None if args.normalize is None else args.normalize == "yes",
                         eval_seeds=tuple(args.eval_seeds), resume=args.resume, device=args.device)
    resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
    print(f"trained {args.agent} for {result.timesteps} steps in {result.seconds:.0f} s{resumed}; saved {result.model_path}")


if __name__ == "__main__":
    main()
