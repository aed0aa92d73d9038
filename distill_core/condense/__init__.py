"""Dataset condensation: synthetic sets, the one evaluator, coreset baselines and the learned methods
as step-wise processes (one outer update per step):

- :class:`DDProcess` — dataset distillation with learned step sizes (Wang et al. 2018);
- :class:`DCProcess` — gradient matching (DC), and with ``dsa=True`` its augmented version (DSA);
- :class:`DMProcess` — distribution matching (DM).

:func:`distill_core.condense.runner.run_condensation` runs any of them (or ``random`` / ``herding``) to
the end and evaluates the result with the protocol; ``scripts/condense.py`` is its command line.
"""

from distill_core.condense.baselines import herding, random_subset
from distill_core.condense.base import CondensationProcess
from distill_core.condense.dc import DCConfig, DCProcess, gradient_distance
from distill_core.condense.dd import DDConfig, DDProcess
from distill_core.condense.dm import DMConfig, DMProcess
from distill_core.condense.evaluator import EvalRecipe, evaluate_synthetic, train_on_synthetic
from distill_core.condense.presets import condense_config, eval_recipe
from distill_core.condense.synthetic_set import SyntheticSet
from distill_core.condense.unroll import evaluate_dd, train_with_schedule

__all__ = ["CondensationProcess", "DCConfig", "DCProcess", "DDConfig", "DDProcess", "DMConfig", "DMProcess", "EvalRecipe",
           "SyntheticSet", "condense_config", "eval_recipe", "evaluate_dd", "evaluate_synthetic", "gradient_distance", "herding", "random_subset",
           "train_on_synthetic", "train_with_schedule"]
