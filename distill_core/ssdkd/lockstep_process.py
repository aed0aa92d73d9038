"""Lockstep SSD-KD behind the step-wise process API: where runs come from, and one run as N = 1.

:class:`RunSource` says which SSD-KD run a seed means — one configuration, or an instance of a scenario
set drawn by the seed as :class:`~distill_core.ssdkd.scenarios.ScenarioProcess` draws it — and what a
run's observation adds to SSD-KD's (the instance's buffer share and round budget). The vector envs fill
N lockstep slots from a source; :class:`LockstepProcess` is the same engine with one slot, so the single
env of a fast-tier id and its vector env run the same code.
"""

from __future__ import annotations

import numpy as np

from distill_core.process import StatsBuilder, StepwiseProcess, Update
from distill_core.common.frames import sample_frame
from distill_core.ssdkd.config import SSDKDConfig
from distill_core.ssdkd.lockstep import LockstepSSDKD, check_lockstep_config
from distill_core.ssdkd.process import SSDKDKnobs, SSDKDProcess, no_probe, observe_run
from distill_core.ssdkd.scenarios import ScenarioConfig, ScenarioProcess


class RunSource:
    """The SSD-KD runs of one configuration or of a scenario set, by seed.

    :param config: an :class:`SSDKDConfig` (every seed runs it) or a :class:`ScenarioConfig` (the seed
        draws an instance of the split).
    """

    def __init__(self, config: SSDKDConfig | ScenarioConfig) -> None:
        self.config = config
        if isinstance(config, ScenarioConfig):
            self.scenarios: ScenarioProcess | None = ScenarioProcess(config)
            self.template = self.scenarios.instance_process(0)
        elif isinstance(config, SSDKDConfig):
            self.scenarios = None
            self.template = SSDKDProcess(config)
        else:
            raise TypeError(f"a run source takes an SSDKDConfig or a ScenarioConfig, got {type(config).__name__}")
        check_lockstep_config(self.template.config)
        configs = [self.template.config] if self.scenarios is None else [
            self.scenarios.instance_config(i) for i in range(len(self.scenarios.instances))]
        #: the most new samples a round of any of its runs makes (the lockstep engines' padded width)
        self.max_synth_batch = max(c.synth_batch for c in configs)
        self.num_classes = self.template.num_classes
        self.device = self.template.device

    def process(self, seed: int) -> SSDKDProcess:
        """The process (configuration, teacher, data) of the run of ``seed``; never reset here."""
        if self.scenarios is None:
            return self.template
        return self.scenarios.instance_process(self.scenarios.instance_index(seed))

    def observe_instance(self, builder: StatsBuilder, process: SSDKDProcess) -> None:
        """Add what a practitioner knows of the run before it starts (scenario sets only)."""
        if self.scenarios is not None:
            self.scenarios.observe_instance(builder, process.config)

    def describe(self, seed: int, process: SSDKDProcess) -> dict[str, float]:
        """The instance of a finished run, for its final metrics (scenario sets only)."""
        if self.scenarios is None:
            return {}
        return {"scenario_index": float(self.scenarios.instance_index(seed)),
                "buffer_capacity": float(process.config.buffer_capacity), "rounds": float(process.config.rounds)}


class LockstepProcess(StepwiseProcess):
    """One SSD-KD run on the lockstep engine (N = 1), as a step-wise process: what the fast-tier ids'
    single envs run, so they and their vector envs share one code path.

    :param config: an :class:`SSDKDConfig` or a :class:`ScenarioConfig` (see :class:`RunSource`).
    """

    Knobs = SSDKDKnobs
    budget_field = "rounds"

    def __init__(self, config: SSDKDConfig | ScenarioConfig | None = None, *, source: RunSource | None = None) -> None:
        source = source or RunSource(config if config is not None else SSDKDConfig())
        super().__init__(source.config)
        self.source = source
        self.num_classes = source.num_classes
        self.engine = LockstepSSDKD(1, source.device, pad_to=source.max_synth_batch)
        self.run_process = source.template

    @property
    def budget(self) -> int:
        return self.run_process.config.rounds

    def exposed_knobs(self) -> tuple[str, ...]:
        return self.source.template.exposed_knobs()

    def _start(self, seed: int) -> None:
        self.run_process = self.source.process(seed)
        self.engine.start(0, self.run_process, seed)

    def _update(self, knobs: SSDKDKnobs) -> Update:
        facts = self.engine.step([knobs])[0]
        return Update(diverged=facts["diverged"], extras={k: v for k, v in facts.items() if k not in ("gain", "diverged")})

    def score(self) -> float:
        return self.engine.run(0).score

    def _observe(self, builder: StatsBuilder) -> None:
        if self.engine.runs[0] is None:  # the layout, before any run
            observe_run(builder, None, no_probe(self.num_classes), self.num_classes)
        else:
            self.engine.observe(0, builder)
        self.source.observe_instance(builder, self.run_process)

    def final_metrics(self) -> dict[str, float]:
        return {**self.engine.final_metrics(0), **self.source.describe(self.seed, self.run_process)}

    def render_samples(self, max_samples: int = 64) -> np.ndarray:
        """A grid (H, W, 3) uint8 of buffer samples, sorted by teacher-predicted class."""
        if self.seed is None:
            raise RuntimeError("call reset(seed) before rendering")
        run = self.engine.run(0)
        x, classes = run.buffer.contents()
        if len(x) == 0:
            x, logits = self.run_process.shared_probe()
            classes = logits.argmax(1)
        return sample_frame(self.run_process.data.denormalize(x.cpu()), classes.cpu(), max_samples)

    def clone(self) -> LockstepProcess:
        return LockstepProcess(source=self.source)

    @property
    def timings_by_phase(self) -> dict[str, float]:
        """The engine's seconds in synthesis, KD and probe evaluation, over every run so far."""
        return dict(self.engine.timings)


__all__ = ["LockstepProcess", "RunSource"]
