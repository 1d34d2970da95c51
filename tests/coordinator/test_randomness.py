"""Coordinator-side input generation and --input-shape parsing."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator import randomness
from proto.codec import TensorSpec
from proto.errors import MsparityError, UsageError


def test_parse_input_shape():
    assert randomness.parse_input_shape("2,3,224,224:float32") == TensorSpec("input0", "float32", (2, 3, 224, 224))
    assert randomness.parse_input_shape("4,16:int64", 1) == TensorSpec("input1", "int64", (4, 16))
    assert randomness.parse_input_shape("5").dtype == "float32"
    assert randomness.parse_input_shape(":float32").shape == ()
    with pytest.raises(UsageError, match="unknown dtype 'float8'"):
        randomness.parse_input_shape("2:float8")
    with pytest.raises(UsageError, match="comma-separated integers"):
        randomness.parse_input_shape("2x3")


def test_generation_is_seeded_and_typed():
    specs = [TensorSpec("a", "float32", (3, 4)), TensorSpec("b", "int64", (5,)), TensorSpec("c", "bfloat16", (2,)),
             TensorSpec("d", "bool", (3,))]
    first = randomness.generate_inputs(specs, seed=7)
    again = randomness.generate_inputs(specs, seed=7)
    other = randomness.generate_inputs(specs, seed=8)
    assert [x.name for x in first] == ["input0", "input1", "input2", "input3"]
    assert all(a.array.tobytes() == b.array.tobytes() for a, b in zip(first, again))
    assert first[0].array.tobytes() != other[0].array.tobytes()
    assert first[1].array.dtype == np.int64 and first[1].array.min() >= 0 and first[1].array.max() < 100
    assert first[2].dtype == "bfloat16" and first[2].array.dtype == np.uint16


def test_bfloat16_inputs_round_to_nearest():
    (x,) = randomness.generate_inputs([TensorSpec("x", "bfloat16", (1000,))], seed=1)
    rng = np.random.default_rng(1)
    exact = rng.standard_normal((1000,), dtype=np.float32)
    assert np.max(np.abs(x.numeric() - exact) / np.abs(exact)) <= 2**-8


def test_input_files_refuse_pickles_and_name_the_file(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MsparityError, match="obj.npy: not a plain .npy array"):
        randomness.load_input_files([tmp_path / "obj.npy"])
    with pytest.raises(MsparityError, match="missing.npy: no such file"):
        randomness.load_input_files([tmp_path / "missing.npy"])
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(MsparityError, match="junk.npy"):
        randomness.load_input_files([tmp_path / "junk.npy"])


def test_an_integer_input_may_name_its_range():
    spec = randomness.parse_input_shape("2,16:int64:0..50", 1)
    assert (spec.name, spec.dtype, spec.shape, spec.low, spec.high) == ("input1", "int64", (2, 16), 0, 50)
    (ids,) = randomness.generate_inputs([spec], seed=0)
    assert ids.array.dtype == np.int64 and ids.array.shape == (2, 16) and 0 <= ids.array.min() <= ids.array.max() < 50
    (many,) = randomness.generate_inputs([randomness.parse_input_shape("5000:int64:0..50")], seed=0)
    assert many.array.min() == 0 and many.array.max() == 49
    (shifted,) = randomness.generate_inputs([randomness.parse_input_shape("1000:int32:-3..3")], seed=0)
    assert sorted(set(shifted.array.tolist())) == [-3, -2, -1, 0, 1, 2]
    for bad, why in (("2:float32:0..5", "for integer inputs"), ("2:int64:5..5", "LOW < HIGH"),
                     ("2:int64:0-5", "LOW..HIGH"), ("2:int8:0..300", "does not fit int8")):
        with pytest.raises(UsageError, match=why):
            randomness.parse_input_shape(bad)


def test_an_index_error_on_generated_ids_gets_the_range_hint():
    from proto.errors import WorkerError

    specs = [TensorSpec("input0", "int64", (2, 16))]
    with pytest.raises(WorkerError, match=r"input0 in \[0, 100\).*--input-shape 2,16:int64:0..VOCAB"):
        with randomness.explain_index_errors(specs):
            raise WorkerError("pt worker", "Forward", "INVALID_ARGUMENT", "forward failed: IndexError: index out of range")
    with pytest.raises(WorkerError) as plain:
        with randomness.explain_index_errors(None):  # the user gave the arrays: nothing generated to explain
            raise WorkerError("pt worker", "Forward", "INVALID_ARGUMENT", "IndexError: index out of range")
    assert "VOCAB" not in str(plain.value)
