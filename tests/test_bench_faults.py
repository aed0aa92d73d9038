"""scripts/bench_faults.py: what two runs of a cell may differ in is ignored, nothing else is; bad --kills is named."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "bench_faults.py"
_SPEC = importlib.util.spec_from_file_location("bench_faults", _PATH)
bench_faults = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_faults)


def test_cells_compare_without_machine_time_or_model_folders():
    a = {"rows": [{"seed": 1, "test_accuracy": 0.5, "seconds": 3.0}], "evaluate_seconds": 1.0,
         "train": {"model_dir": "/a", "seconds": 2.0}}
    b = {"rows": [{"seed": 1, "test_accuracy": 0.5, "seconds": 9.0}], "evaluate_seconds": 7.0,
         "train": {"model_dir": "/b", "seconds": 5.0}}
    assert bench_faults.comparable(a) == bench_faults.comparable(b)
    b["rows"][0]["test_accuracy"] = 0.51
    assert bench_faults.comparable(a) != bench_faults.comparable(b)


def test_cells_reads_a_store_and_skips_failure_records(tmp_path):
    from agents.evaluation.cells import CellStore

    store = CellStore(tmp_path, {"study": 1})
    store.write("random/seed0", {"s": 1}, {"rows": [{"seed": 2, "seconds": 1.0}]})
    (tmp_path / "cells" / "random" / "seed1.failed.json").write_text("{}")
    assert bench_faults.cells(tmp_path / "cells") == {"random/seed0.json": {"rows": [{"seed": 2}]}}


@pytest.mark.parametrize("token", ["bogus=1", "presets", "presets=x"])
def test_bad_kills_are_named(token, capsys):
    with pytest.raises(SystemExit):
        bench_faults.main(["--kills", token])
    assert "--kills takes JOB=K" in capsys.readouterr().err
