"""Directory comparison in-process: pairing strategies, verdicts, unpaired files, bad files, CSV."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from coordinator import (
    compare_grads_dir,
    compare_npy_dir,
    get_name_map_list_by_name,
    get_name_map_list_by_number,
    get_name_map_list_by_shape_edit_distance,
)
from coordinator.dirs.dir_compare import NothingToCompare, compare_dirs
from coordinator.dirs.name_maps import align_shapes
from proto.errors import UsageError
from proto.formats.npy_files import NpyFileError


def _write(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, array)


@pytest.mark.parametrize("orig, target, costs, expected", [
    ([1, 2, 3], [1, 3], (1, 1, 5), (1, [(0, 0), (1, None), (2, 1)])),
    ([1, 2], [3, 4], (1, 1, 5), (4, [(None, 0), (None, 1), (0, None), (1, None)])),
    ([1, 2], [3, 4], (1, 1, 1), (2, [(0, 0), (1, 1)])),
    ([1, 2], [2, 1], (1, 1, 5), (2, [(None, 0), (0, 1), (1, None)])),
    ([1], [2], (1, 1, 5), (2, [(None, 0), (0, None)])),
    (["s", "s"], ["s"], (1, 1, 5), (1, [(0, 0), (1, None)])),
])
def test_shape_alignment_matches_troubleshooters_choices(orig, target, costs, expected):
    assert align_shapes(orig, target, *costs) == expected


def test_the_three_strategies_on_troubleshooters_docs_example(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for name, shape in (("0_data.0", (2, 3)), ("1_data.1", (3, 5)), ("2_data.2", (5, 5))):
        _write(a, name + ".npy", np.zeros(shape, np.float32))
    for name, shape in (("3_data.0", (2, 3)), ("4_data.1", (5, 5))):
        _write(b, name + ".npy", np.zeros(shape, np.float32))
    a0, a1, a2 = "0_data.0.npy", "1_data.1.npy", "2_data.2.npy"
    b0, b1 = "3_data.0.npy", "4_data.1.npy"
    assert get_name_map_list_by_name(a, b) == [(a0, None), (a1, None), (a2, None), (None, b0), (None, b1)]
    assert get_name_map_list_by_number(a, b) == [(a0, b0), (a1, b1), (a2, None)]
    assert get_name_map_list_by_shape_edit_distance(a, b) == [(a0, b0), (a1, None), (a2, b1)]


def test_numbers_order_files_as_saved_not_as_strings(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for i in (10, 2, 1):
        _write(a, f"{i}_x.npy", np.full(3, i, np.float32))
        _write(b, f"{i}_y.npy", np.full(3, i, np.float32))
    assert get_name_map_list_by_number(a, b) == [("1_x.npy", "1_y.npy"), ("2_x.npy", "2_y.npy"),
                                                  ("10_x.npy", "10_y.npy")]
    assert compare_dirs(a, b, strategy="number").passed


def test_identical_dirs_pass_and_a_perturbed_file_is_named(tmp_path, capsys):
    rng = np.random.default_rng(1)
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(6):
        x = rng.standard_normal((4, i + 1)).astype(np.float32)
        _write(a, f"{i}_t.npy", x)
        _write(b, f"{i}_t.npy", x + np.float32(1e-3) * (i == 4))
    same = compare_npy_dir(a, a)
    assert same.passed and same.compared == 6 and not same.unpaired
    different = compare_npy_dir(a, b)
    assert not different.passed
    assert [r.orig_name for r in different.rows if not r.passed] == ["4_t.npy"]
    row = next(r for r in different.rows if r.orig_name == "4_t.npy")
    assert row.comparison.max_abs_diff == pytest.approx(1e-3, rel=1e-3)
    assert "4_t.npy" in capsys.readouterr().out


def test_unpaired_files_are_listed_and_shape_mismatch_reported(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "0_w.npy", np.ones((2, 3), np.float32))
    _write(b, "0_w.npy", np.ones((3, 2), np.float32))
    _write(a, "1_b.npy", np.ones(3, np.float32))
    _write(b, "1_b.npy", np.ones(3, np.float32))
    _write(a, "2_extra.npy", np.ones(3, np.float32))
    _write(b, "3_missing.npy", np.ones(3, np.float32))
    result = compare_dirs(a, b)
    statuses = {(r.orig_name, r.target_name): r.status for r in result.rows}
    assert statuses == {("0_w.npy", "0_w.npy"): "shape mismatch", ("1_b.npy", "1_b.npy"): "equal",
                        ("2_extra.npy", None): "only in orig", (None, "3_missing.npy"): "only in target"}
    assert not result.passed and len(result.unpaired) == 2


def test_zero_pairs_is_an_error_not_a_pass(tmp_path):
    a, b, empty = tmp_path / "a", tmp_path / "b", tmp_path / "empty"
    _write(a, "x.npy", np.ones(2))
    _write(b, "y.npy", np.ones(2))
    empty.mkdir()
    with pytest.raises(NothingToCompare, match="no file of"):
        compare_dirs(a, b)
    with pytest.raises(NpyFileError, match="no .npy files"):
        compare_dirs(a, empty)


def test_pickled_object_arrays_and_non_npy_files_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "0_x.npy", np.ones(2))
    _write(b, "0_x.npy", np.ones(2))
    np.save(b / "1_obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _write(a, "1_obj.npy", np.ones(1))
    with pytest.raises(NpyFileError, match="1_obj.npy.*pickled"):
        compare_dirs(a, b)
    (b / "1_obj.npy").write_bytes(b"not numpy at all")
    with pytest.raises(NpyFileError, match="1_obj.npy: not a .npy"):
        compare_dirs(a, b)


def test_integer_and_nan_semantics(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "i.npy", np.array([1, 2, 3]))
    _write(b, "i.npy", np.array([1, 2, 4]))
    _write(a, "n.npy", np.array([np.nan, 1.0]))
    _write(b, "n.npy", np.array([np.nan, 1.0]))
    rows = {r.orig_name: r for r in compare_dirs(a, b).rows}
    assert rows["i.npy"].comparison.allclose_ratio == pytest.approx(2 / 3)
    assert not rows["n.npy"].passed
    assert {r.orig_name: r.passed for r in compare_dirs(a, b, equal_nan=True).rows}["n.npy"]


def test_given_name_map_and_its_errors(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "w.npy", np.ones(2))
    _write(b, "weight.npy", np.ones(2))
    result = compare_npy_dir(a, b, name_map_list=[("w", "weight.npy")])
    assert result.passed and result.strategy == "given"
    with pytest.raises(NpyFileError, match="'nope.npy'"):
        compare_dirs(a, b, name_map_list=[("w.npy", "nope")])
    with pytest.raises(UsageError, match="entry 0"):
        compare_dirs(a, b, name_map_list=["w.npy"])


def test_grads_dir_pairs_unnamed_grads_by_shape_and_writes_csv(tmp_path, capsys):
    pt, ms = tmp_path / "pt", tmp_path / "ms"
    shapes = {"fc.weight": (5, 10), "fc.bias": (5,), "bn.weight": (7,), "bn.bias": (7,)}
    rng = np.random.default_rng(2)
    values = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    for i, (k, v) in enumerate(values.items()):
        _write(pt, f"{i}_torch_grads.{k}_{i}.npy", v)
    for i, k in enumerate(("fc.weight", "fc.bias")):  # MindSpore dump lacking the bn grads
        _write(ms, f"{i}_ms_grads_{i}.npy", values[k])
    result = compare_grads_dir(pt, ms, output_file=str(tmp_path / "g.csv"))
    pairs = [(r.orig_name, r.target_name) for r in result.rows]
    assert pairs == [("0_torch_grads.fc.weight_0.npy", "0_ms_grads_0.npy"), ("1_torch_grads.fc.bias_1.npy", "1_ms_grads_1.npy"),
                     ("2_torch_grads.bn.weight_2.npy", None), ("3_torch_grads.bn.bias_3.npy", None)]
    out = capsys.readouterr().out
    assert "shape of orig" in out and "(5, 10)" in out
    with open(tmp_path / "g.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0][:4] == ["orig array name", "target array name", "shape of orig", "shape of target"]
    assert table[1][4:8] == ["True", "100.00%", "1.00000", "0.00000, 0.00000"]
    assert table[3][1] == "None"
    with pytest.raises(UsageError, match="does not exist"):
        compare_grads_dir(pt, ms, output_file=str(tmp_path / "no" / "g.csv"))
    assert not os.path.exists(tmp_path / "no")


def _npy_zoo(folder):
    arrays = {
        "f32.npy": np.arange(12, dtype=np.float32).reshape(3, 4), "scalar.npy": np.float64(3.5),
        "empty.npy": np.zeros((0, 3), np.int64), "bools.npy": np.array([True, False]),
        "f16.npy": np.arange(5, dtype=np.float16), "u8.npy": np.arange(3, dtype=np.uint8),
        "c64.npy": np.array([1 + 2j], np.complex64), "deep.npy": np.zeros((1,) * 20, np.int8),
        "big_endian.npy": np.arange(6, dtype=">f4"), "fortran.npy": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }
    for name, array in arrays.items():
        _write(folder, name, array)
    return arrays


def test_local_reads_equal_load_npy_and_fall_back_on_unusual_files(tmp_path):
    from coordinator.dirs.tensor_dirs import LocalDir, _list_plain
    from proto.formats.npy_files import list_npy_dir, load_npy

    arrays = _npy_zoo(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.npy").mkdir()
    os.symlink(tmp_path / "f32.npy", tmp_path / "link.npy")
    assert _list_plain(tmp_path) == list_npy_dir(tmp_path)
    local = LocalDir(tmp_path)
    for name in [*arrays, "link.npy"]:
        for buffer in (None, bytearray(1 << 10), bytearray(4)):
            got, want = local.load(name, buffer), load_npy(tmp_path / name, name)
            assert (got.name, got.dtype, got.array.dtype, got.shape) == (want.name, want.dtype, want.array.dtype,
                                                                         want.shape)
            assert np.array_equal(got.array, want.array)
    np.save(tmp_path / "cut.npy", np.arange(100.0))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:300])
    with pytest.raises(NpyFileError) as fast:
        local.load("cut.npy")
    with pytest.raises(NpyFileError) as plain:
        load_npy(tmp_path / "cut.npy", "cut.npy")
    assert str(fast.value) == str(plain.value)
    for bad in (b"", b"\x93NUMPY\x01\x00\x76\x00", b"garbage" * 30):
        (tmp_path / "cut.npy").write_bytes(bad)
        with pytest.raises(NpyFileError) as fast:
            _list_plain(tmp_path)
        with pytest.raises(NpyFileError) as plain:
            list_npy_dir(tmp_path)
        assert str(fast.value) == str(plain.value)


@pytest.mark.parametrize("threads, reused", [(1, 64 << 20), (2, 64 << 20), (1, 4000)])
def test_dir_compare_gives_each_pairs_own_comparison(tmp_path, monkeypatch, threads, reused):
    """Reused read buffers, one thread or two: every row is what compare_tensors says of the pair alone."""
    from coordinator import metrics
    from coordinator.dirs import dir_compare
    from proto.codec import NamedArray

    monkeypatch.setattr(dir_compare, "LOCAL_THREADS", threads)
    monkeypatch.setattr(dir_compare, "REUSED_BUFFER_BYTES", reused)
    rng = np.random.default_rng(5)
    for i, size in enumerate([5000, 3, 700, 1, 2600, 40, 0]):
        x = rng.standard_normal(size).astype(np.float32)
        _write(tmp_path / "a", f"{i}_t.npy", x)
        _write(tmp_path / "b", f"{i}_t.npy", x + np.float32(1e-3 * (i % 3)))
    result = compare_dirs(tmp_path / "a", tmp_path / "b", rtol=1e-4, atol=1e-4)
    for row in result.rows:
        o, t = np.load(tmp_path / "a" / row.orig_name), np.load(tmp_path / "b" / row.target_name)
        assert row.comparison == metrics.compare_tensors(NamedArray(row.orig_name, o), NamedArray(row.target_name, t),
                                                         1e-4, 1e-4)
