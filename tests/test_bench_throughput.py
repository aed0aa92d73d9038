"""scripts/bench_env_throughput.py end to end on a tiny digits configuration: every mode runs and the JSON
and markdown carry what the report needs. No timing is asserted (this is a benchmark's plumbing test)."""

import json
import runpy
import sys

from env_configs import TINY_SSDKD

TINY = [f"{key}={value}" for key, value in TINY_SSDKD.items()]
MODES = ["serial", "sb3-subproc", "gym-async"]


def test_throughput_benchmark_writes_every_mode(tmp_path, monkeypatch, capsys, digits_teacher):
    out = tmp_path / "bench" / "env_throughput.json"
    argv = ["bench_env_throughput.py", "--episodes", "2", "--lockstep-n", "1", "2", "--kernel-repeats", "1",
            "--kernel-warmup", "0", "--set", *TINY, "--out", str(out), "--no-progress"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path("scripts/bench_env_throughput.py", run_name="__main__")

    result = json.loads(out.read_text())
    assert {"env_id", "overrides", "episodes", "machine", "threads", "modes", "lockstep", "profile", "peak_rss_mib",
            "notes"} <= set(result)
    assert result["env_id"] == "DistillGym/SSDKD-Digits-v0" and result["overrides"]["rounds"] == TINY_SSDKD["rounds"]
    assert [m["mode"] for m in result["modes"]] == MODES
    for mode in result["modes"]:
        assert {"workers", "episodes", "steps", "seconds", "episodes_per_second", "steps_per_second", "x_serial",
                "peak_rss_mib", "threads"} <= set(mode)
        assert mode["episodes"] >= 2 and mode["steps"] == mode["episodes"] * TINY_SSDKD["rounds"]
    for mode in result["modes"][1:]:  # workers are set to --worker-threads (1) and report their own memory
        assert mode["workers"] == 2 and mode["worker_torch_threads"] == [1, 1] and len(mode["worker_peak_rss_mib"]) == 2
    assert result["threads"]["main"] == 1 and set(result["threads"]["workers"]) == set(MODES[1:])

    rows = result["lockstep"]["results"]
    assert [(r["model"], r["n"]) for r in rows] == [("generator", 1), ("student", 1), ("generator", 2), ("student", 2)]
    assert all({"serial_ms_per_run", "vmap_ms_per_run", "speedup"} <= set(r) for r in rows)
    assert result["lockstep"]["peak_rss_mib"] > 0 and result["profile"]["peak_rss_mib"] > 0

    profile = result["profile"]
    assert 1 <= len(profile["top_ops"]) <= 10 and {"name", "self_cpu_share_percent"} <= set(profile["top_ops"][0])
    assert {"start_seconds", "synthesis_seconds", "kd_seconds", "score_seconds", "update_seconds"} <= set(profile["timings"])

    markdown = (out.with_suffix(".md")).read_text()
    header = "| mode | N / workers | episodes | episodes/s | steps/s | × serial | peak MiB | threads |"
    assert header in markdown and header in capsys.readouterr().out
    assert all(f"| {mode} |" in markdown for mode in MODES) and "| lockstep generator step (vmap) | N=2 |" in markdown
    assert not list(out.parent.glob(".*.tmp"))  # the atomic writes left no temporary file
