"""Dataset condensation: synthetic sets, the shared evaluator, coreset baselines and (so far)
distribution matching as a step-wise process. DD and DC/DSA are still to come."""

from distill_core.condense.baselines import herding, random_subset
from distill_core.condense.dm import DMConfig, DMProcess
from distill_core.condense.evaluator import EvalRecipe, evaluate_synthetic, train_on_synthetic
from distill_core.condense.synthetic_set import SyntheticSet

__all__ = ["DMConfig", "DMProcess", "EvalRecipe", "SyntheticSet", "evaluate_synthetic", "herding", "random_subset",
           "train_on_synthetic"]
