"""scripts/bench_env_throughput.py end to end on a tiny digits configuration: every row is measured in its
own process and the JSON and markdown carry what the report needs. No timing is asserted (this is a
benchmark's plumbing test)."""

import json
import runpy
import sys

TINY = ["rounds=2", "g_steps=1", "kd_steps=2", "kd_batch=8", "synth_batch=8", "buffer_capacity=16", "probe_size=20",
        "probe_steps=2"]


def test_throughput_benchmark_writes_every_row(tmp_path, monkeypatch, capsys, digits_teacher):
    out = tmp_path / "bench" / "env_throughput.json"
    argv = ["bench_env_throughput.py", "--pairs", "digits", "--episodes", "2", "--lockstep-n", "2", "--workers", "1", "2",
            "--set", *TINY, "--out", str(out), "--no-progress"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path("scripts/bench_env_throughput.py", run_name="__main__")

    report = json.loads(out.read_text())
    assert {"command", "machine", "threads_per_process", "seconds", "results"} <= set(report)
    rows = [(r["env_id"], r["mode"], r["num_envs"], r["workers"]) for r in report["results"]]
    assert rows == [("DistillGym/SSDKD-Digits-v0", "serial", 1, 1), ("DistillGym/SSDKD-Digits-v1", "serial", 1, 1),
                    ("DistillGym/SSDKD-Digits-v1", "lockstep", 2, 1),
                    ("DistillGym/SSDKD-Digits-v1", "lockstep", 2, 2)]
    for r in report["results"]:
        assert "error" not in r, r.get("error")
        assert r["episodes_timed"] >= 2 and r["torch_threads"] == 1 and r["peak_rss_mib"] > 0
        assert r["env_kwargs"]["rounds"] == 2
    peaks = report["results"][-1]["worker_peak_rss_mib"]  # the two worker processes report their own memory
    assert len(peaks) == 2 and min(peaks) > 100
    assert {"synthesis_seconds", "kd_seconds", "probe_seconds"} <= set(report["results"][-1]["phase_seconds"])

    markdown = out.with_suffix(".md").read_text()
    header = "| id | mode | N | workers | threads | episodes | seconds | episodes/s | × v0 serial | peak MiB | worker peak MiB |"
    assert header in markdown and header in capsys.readouterr().out
    assert "| SSDKD-Digits-v1 | lockstep | 2 | 2 |" in markdown
    assert not list(out.parent.glob(".*.tmp"))  # the atomic writes left no temporary file
