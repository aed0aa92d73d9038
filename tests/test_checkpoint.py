from fractions import Fraction

import pytest
import torch

from distill_core.common.checkpoint import CheckpointError, atomic_save, load_checkpoint


def test_round_trip(tmp_path):
    path = atomic_save({"format": "x/v1", "w": torch.arange(3.0)}, tmp_path / "a" / "c.pt")
    assert torch.equal(load_checkpoint(path, expected_format="x/v1")["w"], torch.arange(3.0))
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt", expected_format="x/v1")


def test_truncated_file_is_reported_with_the_fix(tmp_path):
    path = atomic_save({"format": "x/v1", "w": torch.zeros(1000)}, tmp_path / "c.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt.*rebuild me"):
        load_checkpoint(path, expected_format="x/v1", rebuild_hint="rebuild me")


def test_foreign_and_wrong_format(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a distill-gym checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", expected_format="x/v1")
    atomic_save({"format": "y/v1"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="holds 'y/v1', expected 'x/v1'"):
        load_checkpoint(tmp_path / "other.pt", expected_format="x/v1")


def test_pickled_objects_are_refused(tmp_path):
    # weights_only=True must refuse arbitrary classes: a pickle can name any callable
    torch.save({"format": "x/v1", "obj": Fraction(1, 3)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="corrupt or not a distill-gym file"):
        load_checkpoint(tmp_path / "evil.pt", expected_format="x/v1")


def test_failed_write_keeps_old_file(tmp_path):
    path = atomic_save({"format": "x/v1", "v": 1}, tmp_path / "c.pt")
    with pytest.raises(Exception):
        atomic_save({"format": "x/v1", "v": lambda: 0}, path)  # a lambda cannot be pickled
    assert load_checkpoint(path, expected_format="x/v1")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
