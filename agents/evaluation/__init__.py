"""Measuring policies (acting lives in :mod:`agents`): episodes of policies on seeds, one by one or in
lockstep batches; the static and schedule oracles; learners trained for an evaluation; paired
statistics and rliable's aggregates; the headroom benchmark, the leaderboard and transfer; reports and
plots; the scripts' command-line helpers.

    from agents.evaluation import HeadroomConfig, Runner, run_headroom, write_report
"""

from agents.evaluation.backends import Runner
from agents.evaluation.headroom import HeadroomConfig, HeadroomResult, run_headroom
from agents.evaluation.reports import write_report

__all__ = ["HeadroomConfig", "HeadroomResult", "Runner", "run_headroom", "write_report"]
