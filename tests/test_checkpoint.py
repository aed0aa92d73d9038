import os
import warnings
from fractions import Fraction

import pytest
import torch

from distill_core.common.checkpoint import (CHECKSUM_KEY, CheckpointError, atomic_save, check_tensor, content_checksum,
                                            load_checkpoint)


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


# --- content checksum, file mode, tensor checks ------------------------------------------------------

def flipped(path, offset):
    """Invert every bit of the byte at ``offset`` of ``path`` (in place)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checksum_is_stored_verified_and_leaves_the_payload_alone(tmp_path):
    payload = {"format": "x/v1", "w": torch.arange(6.0).view(2, 3), "meta": {"b": [1, 2.5, None], "a": "s"}}
    path = atomic_save(payload, tmp_path / "c.pt")
    assert CHECKSUM_KEY not in payload  # the caller's dict is not modified
    loaded = load_checkpoint(path, expected_format="x/v1")
    assert loaded[CHECKSUM_KEY] == content_checksum(payload) == content_checksum(loaded)
    assert loaded[CHECKSUM_KEY].startswith("sha256:") and loaded["meta"] == payload["meta"]
    # re-saving a loaded payload (old checksum inside) works: the entry is recomputed
    assert load_checkpoint(atomic_save(loaded, tmp_path / "d.pt"), expected_format="x/v1")[CHECKSUM_KEY] == loaded[CHECKSUM_KEY]


def test_checksum_covers_values_dtypes_shapes_and_not_key_order():
    base = {"format": "x/v1", "w": torch.zeros(4, dtype=torch.float32), "n": 1}
    same = {"n": 1, "w": torch.zeros(4, dtype=torch.float32), "format": "x/v1"}
    assert content_checksum(base) == content_checksum(same)
    variants = [
        {**base, "w": torch.zeros(4, dtype=torch.int32)},  # same bytes, other dtype
        {**base, "w": torch.zeros(2, 2)},  # same bytes, other shape
        {**base, "w": torch.tensor([0.0, 0.0, 0.0, 1e-45])},  # one bit
        {**base, "n": True},  # True == 1 in Python, not here
        {**base, "n": 1.0},
        {**base, "n": "1"},
    ]
    assert len({content_checksum(v) for v in variants} | {content_checksum(base)}) == len(variants) + 1


def test_flipped_byte_in_the_middle_is_refused_every_time(tmp_path):
    # the middle of a weights file is tensor data, which torch loads without complaint when damaged
    path = atomic_save({"format": "x/v1", "w": torch.randn(2048, generator=torch.Generator().manual_seed(0))},
                       tmp_path / "c.pt")
    pristine = path.read_bytes()
    for fraction in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
        path.write_bytes(pristine)
        flipped(path, int(fraction * len(pristine)))
        with pytest.raises(CheckpointError, match=r"c\.pt: content checksum mismatch \(the file is corrupt or was edited\); rebuild me"):
            load_checkpoint(path, expected_format="x/v1", rebuild_hint="rebuild me")


def test_no_flipped_byte_anywhere_gives_other_content_or_another_error(tmp_path):
    # every byte of a small file: either a CheckpointError, or (zip padding, timestamps, pickle memo
    # numbers) exactly the saved content; never different content, never a raw torch exception
    payload = {"format": "x/v1", "w": torch.arange(16.0), "y": torch.arange(4), "meta": {"a": 1, "b": [0.5, "s"]}}
    path = atomic_save(payload, tmp_path / "c.pt")
    pristine = path.read_bytes()
    refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the odd pickle protocols some flips produce
        for offset in range(len(pristine)):
            path.write_bytes(pristine)
            flipped(path, offset)
            try:
                loaded = load_checkpoint(path, expected_format="x/v1")
            except CheckpointError as err:
                assert str(path) in str(err)
                refused += 1
                continue
            assert content_checksum(loaded) == content_checksum(payload), f"byte {offset} changed the content silently"
    assert refused > len(pristine) // 3


def test_edited_content_is_refused(tmp_path):
    path = atomic_save({"format": "x/v1", "metrics": {"accuracy": 0.9889}, "w": torch.ones(3)}, tmp_path / "c.pt")
    payload = torch.load(path, weights_only=True)
    payload["metrics"]["accuracy"] = 0.99  # keeps the stored checksum
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path, expected_format="x/v1")


def test_file_without_checksum_is_refused_with_the_fix(tmp_path):
    torch.save({"format": "x/v1", "w": torch.zeros(2)}, tmp_path / "old.pt")  # what distill-gym wrote before
    with pytest.raises(CheckpointError, match=r"old\.pt has no content checksum.*rebuild me"):
        load_checkpoint(tmp_path / "old.pt", expected_format="x/v1", rebuild_hint="rebuild me")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_save({"format": "x/v1"}, tmp_path / "c.pt")
        path = atomic_save({"format": "x/v1"}, path)  # replacing keeps the rule
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_nan_saved_legitimately_loads_but_check_tensor_refuses_it(tmp_path):
    path = atomic_save({"format": "x/v1", "w": torch.tensor([1.0, float("nan"), float("inf")])}, tmp_path / "c.pt")
    w = load_checkpoint(path, expected_format="x/v1")["w"]  # the checksum is valid: the file is what was saved
    with pytest.raises(CheckpointError, match=r"^f\.pt: w has non-finite values: 2 of 3 \(1 NaN, 1 ±Inf\); fix it$"):
        check_tensor(w, what="w", where="f.pt", fix="fix it")
    assert check_tensor(w, what="w", where="f.pt", fix="fix it", finite=False) is w


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    ([1.0], {}, "is a list, not a tensor"),
    (torch.zeros(2, dtype=torch.int64), {"kind": "floating"}, "has dtype torch.int64, expected a floating-point dtype"),
    (torch.zeros(2), {"kind": "integer"}, "has dtype torch.float32, expected an integer dtype"),
    (torch.zeros(2, dtype=torch.bool), {"kind": "integer"}, "has dtype torch.bool, expected an integer dtype"),
    (torch.zeros(2, dtype=torch.float64), {"dtype": torch.float32}, "has dtype torch.float64, expected torch.float32"),
    (torch.zeros(2, 3), {"shape": (None, 4)}, r"has shape \(2, 3\), expected \(N, 4\)"),
    (torch.zeros(2, 3), {"shape": (2,)}, r"has shape \(2, 3\), expected \(2,\)"),
    (torch.zeros(0, 3), {"non_empty": True}, "is empty"),
])
def test_check_tensor_names_the_problem(value, kwargs, message):
    with pytest.raises(CheckpointError, match=f"^f.pt: t {message}; fix it$"):
        check_tensor(value, what="t", where="f.pt", fix="fix it", **kwargs)
