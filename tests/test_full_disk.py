"""A full disk while writing any of distill-gym's files (a report, a cell, a trace, a checkpoint, a figure)
gives one error naming the file and the fix, and leaves the previous file intact with no temporary file
beside it. The disk is filled by patching the write's fsync to fail as a full disk does (ENOSPC)."""

from __future__ import annotations

import errno
import os

import matplotlib.pyplot as plt
import pytest

from agents.evaluation.cells import CellStore
from distill_core.common.checkpoint import atomic_save, load_checkpoint
from distill_core.common.files import DiskFullError, atomic_write
from distill_core.common.plots import save_figure
from distill_core.common.report import write_json, write_text


def _full(_fd: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


WRITERS = {
    "text": (lambda path: write_text("new\n", path), lambda path: path.read_text()),
    "json": (lambda path: write_json({"new": 1}, path), lambda path: path.read_text()),
    "checkpoint": (lambda path: atomic_save({"format": "x/v1", "v": 2}, path),
                   lambda path: load_checkpoint(path, expected_format="x/v1")["v"]),
    "figure": (lambda path: save_figure(plt.figure(), path), lambda path: path.read_bytes()),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_full_disk_names_the_file_and_keeps_the_previous_one(kind, tmp_path, monkeypatch):
    write, read = WRITERS[kind]
    path = tmp_path / f"out.{kind}"
    write(path)
    before = read(path)
    monkeypatch.setattr(os, "fsync", _full)
    with pytest.raises(DiskFullError, match=rf"no space left to write {path} \(the previous file is intact\).*run the same command again"):
        write(path)
    assert read(path) == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file may be left behind"


def test_a_full_disk_while_writing_a_cell_keeps_the_store_readable(tmp_path, monkeypatch):
    store = CellStore(tmp_path, {"study": 1})
    store.write("eval/x", {"seed": 1}, [{"v": 1}])
    monkeypatch.setattr(os, "fsync", _full)
    with pytest.raises(DiskFullError, match="eval/x.json"):
        store.write("eval/x", {"seed": 1}, [{"v": 2}])
    monkeypatch.undo()
    assert store.read("eval/x", {"seed": 1}) == [{"v": 1}]


def test_a_new_file_that_cannot_be_written_is_not_left_half_made(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", _full)
    with pytest.raises(DiskFullError, match=r"\(the previous file was not written\)"):
        atomic_write(tmp_path / "new.bin", lambda handle: handle.write(b"x" * 100))
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ZeroDivisionError):
        atomic_write(tmp_path / "x.bin", lambda handle: 1 / 0)
    assert list(tmp_path.iterdir()) == []
