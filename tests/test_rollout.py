"""Trace recording and replay: a good trace reproduces; every incomplete, foreign or edited trace that
was tried is a case below (an error on reading, or a replay that names the fields that differed); the
replay runs on the recorded torch thread count and warns about runtime differences."""

import copy
import json
import runpy
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the ids)
from agents.baselines import ConstantPolicy
from agents.rollout import (OUTCOME_KEYS, TRACE_FORMAT, TRACKED_PACKAGES, EpisodeTrace, ReplayWarning, read_traces,
                            replay, run_episode, write_traces)

TINY = dict(rounds=3, synth_batch=16, buffer_capacity=32, g_steps=1, kd_steps=2, kd_batch=16, probe_size=40,
            probe_steps=2, device="cpu")
DIGITS = "DistillGym/SSDKD-Digits-v0"
ROLLOUT_MAIN = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "rollout.py"))["main"]


@pytest.fixture(scope="module")
def good(digits_teacher) -> EpisodeTrace:
    """One constant-policy episode, recorded on one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = gym.make(DIGITS, **TINY)
        trace = run_episode(env, ConstantPolicy(env), 7, env_id=DIGITS, env_kwargs=TINY, agent_name="constant")
        env.close()
    finally:
        torch.set_num_threads(before)
    return trace


def write_records(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_good_trace_reproduces_and_keeps_timings_apart(good, tmp_path):
    [trace] = read_traces(write_traces([good], tmp_path / "t.jsonl"))
    result = replay(trace)
    assert result.reproduced and result.mismatches == [] and result.steps == TINY["rounds"]
    assert trace.format == TRACE_FORMAT and trace.ended
    assert set(OUTCOME_KEYS) <= set(trace.outcome) and "test_accuracy" in trace.final_metrics
    assert not any("seconds" in k for k in trace.outcome)  # compared fields hold no machine measurement
    assert trace.timings["seconds"] > 0 and "synthesis_seconds" in trace.timings
    assert trace.outcome["steps"] == TINY["rounds"]


def test_the_runtime_is_recorded(good):
    assert good.runtime["torch_threads"] == 1
    assert set(TRACKED_PACKAGES) <= set(good.runtime["versions"])
    assert good.runtime["versions"]["torch"] and good.runtime["versions"]["distill-gym"]


def _drop_last_action(r):
    r["actions"].pop()


def _drop_last_reward(r):
    r["rewards"].pop()


def _no_actions(r):
    r.update(actions=[], observations=r["observations"][:1], rewards=[])


def _nothing(r):
    r.update(actions=[], observations=[], rewards=[])


def _not_ended(r):
    r["outcome"].update(terminated=False, truncated=False)


def _no_end_flags(r):
    del r["outcome"]["truncated"]


def _foreign_format(r):
    r["format"] = "other-tool/trace/v9"


def _no_format(r):  # a trace from before the format field
    del r["format"]


def _no_runtime(r):
    del r["runtime"]


def _unknown_field(r):
    r["extra"] = 1


def _rewards_not_a_list(r):
    r["rewards"] = "0.1 0.2 0.3"


#: edits of a good trace's JSON record that reading must refuse, and what the message says
READ_ERRORS = {
    "last action dropped": (_drop_last_action, r"incomplete episode: 4 observations for 2 actions"),
    "last reward dropped": (_drop_last_reward, r"2 rewards for 3 actions"),
    "no actions": (_no_actions, r"incomplete episode: no actions"),
    "no actions, observations or rewards": (_nothing, r"no actions; 0 observations"),
    "not ended": (_not_ended, r"did not end"),
    "no end flags": (_no_end_flags, r"outcome lacks truncated"),
    "foreign format": (_foreign_format, r"format 'other-tool/trace/v9', expected 'distill-gym/trace/v1'"),
    "no format": (_no_format, r"format None"),
    "no runtime": (_no_runtime, r"missing fields \['runtime'\]"),
    "unknown field": (_unknown_field, r"unknown fields \['extra'\]"),
    "rewards not a list": (_rewards_not_a_list, r"rewards is str, expected list"),
}


@pytest.mark.parametrize("case", list(READ_ERRORS))
def test_bad_trace_records_are_refused_on_reading(case, good, tmp_path):
    edit, match = READ_ERRORS[case]
    record = copy.deepcopy(asdict(good))
    edit(record)
    path = write_records(tmp_path / "bad.jsonl", [asdict(good), record])
    with pytest.raises(ValueError, match=match) as err:
        read_traces(path)
    assert f"{path}:2" in str(err.value)  # names the file and the line


@pytest.mark.parametrize("case,text,match", [
    ("empty", "", r"no episodes in .*empty\.jsonl"),
    ("blank lines only", "\n\n", r"no episodes in .*empty\.jsonl"),
    ("not JSON", "hello\n", r"empty\.jsonl:1 is not a distill-gym episode trace: not JSON"),
    ("a JSON list", "[1, 2]\n", r"format 'list'"),
])
def test_empty_or_foreign_files_are_refused(case, text, match, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_traces(path)


def test_a_file_cut_off_mid_line_is_refused(good, tmp_path):
    line = json.dumps(asdict(good))
    path = tmp_path / "cut.jsonl"
    path.write_text(line + "\n" + line[: len(line) // 2])
    with pytest.raises(ValueError, match=r"cut\.jsonl:2 .*not JSON.*not written to the end"):
        read_traces(path)


def test_writing_no_episodes_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no episodes to write"):
        write_traces([], tmp_path / "none.jsonl")


def _drop_last_step(t):  # whole steps gone: reads as complete, but the replay has not ended
    del t.actions[-1], t.observations[-1], t.rewards[-1]


def _extra_step(t):  # an action past the end: the replay ends before it
    t.actions.append(t.actions[-1])
    t.observations.append(t.observations[-1])
    t.rewards.append(0.0)


def _edit_accuracy(t):
    t.outcome["test_accuracy"] += 0.01


def _edit_reward(t):
    t.rewards[-1] += 1e-3


def _edit_observation(t):
    t.observations[1][0] += 1e-3


def _edit_return(t):
    t.outcome["return"] += 1.0


def _edit_flag(t):
    t.outcome["diverged"] = True


def _drop_metric(t):
    del t.outcome["test_kl"]


def _add_metric(t):
    t.outcome["test_made_up"] = 0.5


#: edits of a good trace that read fine but must not reproduce, and the fields the replay names
NOT_REPRODUCED = {
    "last step dropped": (_drop_last_step, ["ended", "outcome.return", "outcome.steps", "outcome.truncated",
                                            "outcome.test_accuracy"]),
    "a step past the end": (_extra_step, ["steps"]),
    "final accuracy edited": (_edit_accuracy, ["outcome.test_accuracy"]),
    "reward edited": (_edit_reward, ["rewards[2]"]),
    "observation edited": (_edit_observation, ["observations[1]"]),
    "return edited": (_edit_return, ["outcome.return"]),
    "diverged flag edited": (_edit_flag, ["outcome.diverged"]),
    "final metric dropped": (_drop_metric, ["outcome.test_kl"]),
    "final metric added": (_add_metric, ["outcome.test_made_up"]),
}


@pytest.mark.parametrize("case", list(NOT_REPRODUCED))
def test_edited_traces_do_not_reproduce_and_name_the_fields(case, good, tmp_path):
    edit, expected = NOT_REPRODUCED[case]
    trace = copy.deepcopy(good)
    edit(trace)
    [trace] = read_traces(write_traces([trace], tmp_path / "edited.jsonl"))  # through JSON, as a file would
    result = replay(trace)
    assert not result.reproduced
    if case in ("last step dropped", "a step past the end"):
        assert set(expected) <= set(result.fields)
    else:
        assert result.fields == expected  # that field and nothing else


def test_replay_in_memory_refuses_an_incomplete_trace(good):
    trace = copy.deepcopy(good)
    trace.actions.pop()
    with pytest.raises(ValueError, match="incomplete episode"):
        replay(trace)


class ThreadSpy(gym.Wrapper):
    """Remembers torch's thread count at every step."""

    def __init__(self, env: gym.Env, fail: bool = False) -> None:
        super().__init__(env)
        self.seen: list[int] = []
        self.fail = fail

    def step(self, action):
        self.seen.append(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("boom")
        return self.env.step(action)


def test_replay_runs_on_the_recorded_thread_count_and_restores_it(good):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        spy = ThreadSpy(gym.make(DIGITS, **TINY))
        with pytest.warns(ReplayWarning, match="torch ran on 2 threads here, 1 when recorded"):
            result = replay(good, spy)
        assert result.reproduced and spy.seen == [1] * TINY["rounds"]
        assert torch.get_num_threads() == 2 and any("2 threads" in n for n in result.runtime_notes)
        with pytest.raises(RuntimeError, match="boom"), pytest.warns(ReplayWarning):  # restored on errors too
            replay(good, ThreadSpy(gym.make(DIGITS, **TINY), fail=True))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_replay_warns_when_library_versions_differ(good):
    trace = copy.deepcopy(good)
    trace.runtime["versions"]["numpy"] = "0.0.1"
    with pytest.warns(ReplayWarning, match=r"numpy .* here, 0\.0\.1 when recorded"):
        result = replay(trace)
    assert result.reproduced  # a warning, not a verdict: the numbers decide


def test_replay_names_other_cpu_kernels(good):
    assert good.runtime["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    trace = copy.deepcopy(good)
    trace.runtime["cpu_capability"] = "ZVECTOR"
    with pytest.warns(ReplayWarning, match=r"CPU kernels are \w+ here, ZVECTOR when recorded.*ATEN_CPU_CAPABILITY=zvector"):
        replay(trace)


@pytest.mark.parametrize("case,text,match", [
    ("empty", "", "no episodes in"),
    ("cut off", None, "not JSON"),
    ("missing", "-", "No such file"),
])
def test_script_refuses_bad_files_with_a_message(case, text, match, good, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    if text is None:
        line = json.dumps(asdict(good))
        path.write_text(line[: len(line) // 2])
    elif text != "-":
        path.write_text(text)
    assert ROLLOUT_MAIN(["--replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_script_prints_the_fields_that_differed(good, tmp_path, capsys):
    trace = copy.deepcopy(good)
    _edit_accuracy(trace)
    path = write_traces([good, trace], tmp_path / "two.jsonl")
    assert ROLLOUT_MAIN(["--replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "outcome.test_accuracy: recorded" in out and out.count("did not reproduce") == 1


def test_an_agent_trained_behind_vecnormalize_sees_normalised_observations(digits_teacher):
    class Normalizer:
        def __init__(self) -> None:
            self.seen = 0

        def normalize_obs(self, obs):
            self.seen += 1
            return obs * 0.0 + 7.0

    class Agent:
        def __init__(self) -> None:
            self.normalizer, self.inputs = Normalizer(), []

        def get_vec_normalize_env(self):
            return self.normalizer

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            self.inputs.append(np.asarray(obs))
            return np.zeros(4, np.float32), state

    env = gym.make(DIGITS, **TINY)
    agent = Agent()
    trace = run_episode(env, agent, 0, env_id=DIGITS, env_kwargs=TINY)
    assert agent.normalizer.seen == TINY["rounds"] and all((x == 7.0).all() for x in agent.inputs)
    assert trace.observations[0] != [7.0] * len(trace.observations[0])  # the trace keeps the raw observation
