"""distill_core: data-free knowledge distillation and dataset condensation as step-wise processes.

This package knows nothing of Gymnasium or Stable-Baselines3; ``envs`` and ``agents`` build on it.
"""

__version__ = "0.1.0"
