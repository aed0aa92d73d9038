"""scripts/bench_presets.py end to end on a tiny preset: serial and lockstep runs of the same seeds, the
JSON and the table. No accuracy or timing is asserted (a benchmark's plumbing test)."""

import json
import runpy
from dataclasses import replace

from distill_core.ssdkd import config as ssdkd_config


def test_presets_benchmark_runs_both_engines(tmp_path, monkeypatch, digits_teacher):
    tiny = replace(ssdkd_config.preset("digits_fast"), rounds=2, g_steps=1, kd_steps=1, kd_batch=8, synth_batch=8,
                   buffer_capacity=16, probe_size=16, probe_steps=1)
    monkeypatch.setitem(ssdkd_config.PRESETS, "tiny_fast", tiny)
    main = runpy.run_path("scripts/bench_presets.py")["main"]
    for engine in ("serial", "lockstep"):
        out = tmp_path / f"{engine}.json"
        main(["--presets", "tiny_fast", "--seeds", "0-2", "--engine", engine, "--out", str(out), "--no-progress"])
        report = json.loads(out.read_text())
        (name, rows), = report["results"].items()
        assert name == ("tiny_fast" if engine == "serial" else "tiny_fast (lockstep)")
        assert [r["seed"] for r in rows] == [0, 1, 2] and all(0 <= r["test_accuracy"] <= 1 for r in rows)
        assert "| preset / family | runs |" in out.with_suffix(".md").read_text()


def test_a_family_runs_as_ssdkd_and_its_baselines_beside_its_teacher(tmp_path, monkeypatch, digits_teacher):
    from env_configs import use_tiny_family

    use_tiny_family(monkeypatch, "digits_small_buffer_fast", (0.02,))
    main = runpy.run_path("scripts/bench_presets.py")["main"]
    out = tmp_path / "family.json"
    main(["--families", "digits_small_buffer_fast", "--seeds", "0-1", "--methods", "ssdkd", "memory_bank", "real_kd",
          "--out", str(out), "--no-progress"])
    results = json.loads(out.read_text())["results"]
    assert list(results) == [f"digits_small_buffer_fast / {m}" for m in ("ssdkd", "memory_bank", "real_kd")]
    ssdkd, bank, real = results.values()
    for rows in (bank, real):  # the same instance and teacher as the SSD-KD run of each seed
        assert [r["instance"] for r in rows] == [r["instance"] for r in ssdkd]
        assert [r["teacher_accuracy"] for r in rows] == [r["teacher_accuracy"] for r in ssdkd]
    assert all(0.5 < r["teacher_accuracy"] <= 1 for r in ssdkd)
    assert [r["test_accuracy"] for r in real] != [r["test_accuracy"] for r in ssdkd]  # another method, another student
    imbalances = {r["imbalance"] for r in ssdkd}
    assert imbalances <= {1.0, 10.0}
    assert ("By the teacher's training set" in out.with_suffix(".md").read_text()) == (len(imbalances) > 1)
    # every run is a cell: the same command again (or after a kill) runs nothing and reports the same rows
    monkeypatch.setitem(main.__globals__, "run_once", lambda *a: (_ for _ in ()).throw(AssertionError("a finished run ran again")))
    again = main(["--families", "digits_small_buffer_fast", "--seeds", "0-1", "--methods", "ssdkd", "memory_bank", "real_kd",
                  "--out", str(out), "--no-progress"])
    assert json.loads(json.dumps(again)) == results
