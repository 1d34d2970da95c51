"""proto/worker/module_records.py: tensor summaries, count sketches and the records that carry them."""

from __future__ import annotations

import hashlib
import math
import subprocess

import numpy as np
import pytest

from proto.worker import module_records
from proto.worker.module_records import ModuleCall, TensorSummary, estimate_rel_error, summarize
from tests.conftest import PYTHON, REPO, repo_env


def test_statistics_match_numpy_in_float64():
    x = np.random.default_rng(0).standard_normal((3, 70_000)).astype(np.float32)  # several chunks
    s = summarize("x", x)
    wide = x.astype(np.float64)
    assert (s.name, s.dtype, s.shape, s.finite) == ("x", "float32", (3, 70_000), True)
    assert s.min == wide.min() and s.max == wide.max()
    assert s.mean == pytest.approx(wide.mean(), rel=1e-12)
    assert s.norm == pytest.approx(np.linalg.norm(wide), rel=1e-12)
    assert s.sketch.shape == (256,) and s.sketch.dtype == np.float64


def test_sketch_is_linear():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 50)), rng.standard_normal((40, 50))
    combined = summarize("c", a + 2 * b, sketch_size=64).sketch
    assert np.allclose(combined, summarize("a", a, 64).sketch + 2 * summarize("b", b, 64).sketch, rtol=0, atol=1e-9)
    # every element lands in exactly one bucket with sign +-1: the sketch of ones counts signed elements
    codes = module_records.sketch_codes(2000, 64)
    signs = np.where(codes % 2 == 1, -1.0, 1.0)
    expected = np.bincount(codes // 2, weights=signs, minlength=64)
    assert np.array_equal(summarize("ones", np.ones(2000), 64).sketch, expected)


ERROR_KINDS = [((64, 197, 96), "noise"), ((8, 4096), "scaled"), ((32, 256), "one channel"), ((5000,), "sparse")]


@pytest.mark.parametrize("shape, kind", ERROR_KINDS)
def test_error_estimate_within_20_percent(shape, kind):
    rng = np.random.default_rng(len(kind))
    ref = rng.standard_normal(shape) * 3.0
    diff = np.zeros(shape)
    if kind == "noise":
        diff = rng.standard_normal(shape) * 1e-4
    elif kind == "scaled":
        diff = ref * 1e-3
    elif kind == "one channel":  # structured: the last axis has the sketch's period
        diff[..., 7] = rng.standard_normal(shape[0]) * 1e-2
    else:
        diff[rng.choice(ref.size, 3, replace=False)] = [1.0, -2.0, 0.5]
    cand = (ref + diff).astype(np.float32)
    true = np.linalg.norm(cand.astype(np.float64) - ref) / np.linalg.norm(ref)
    estimate = estimate_rel_error(summarize("ref", ref), summarize("cand", cand))
    assert estimate == pytest.approx(true, rel=0.2)


def test_error_estimate_spread_is_about_sqrt_2_over_k():
    rng = np.random.default_rng(3)
    ratios = []
    for seed in range(40):
        ref = rng.standard_normal(20_000)
        cand = ref + rng.standard_normal(20_000) * 1e-3
        true = np.linalg.norm(cand - ref) / np.linalg.norm(ref)
        ratios.append(estimate_rel_error(summarize("r", ref, seed=seed), summarize("c", cand, seed=seed)) / true)
    assert abs(np.mean(ratios) - 1) < 0.03
    assert np.std(ratios) < 0.08  # ~sqrt(2/256)/2 = 0.044 for the norm


SKETCH_IN_SUBPROCESS = """
import hashlib, numpy as np
from proto.worker.module_records import sketch_codes, summarize
x = (np.arange(300_013, dtype=np.float64) % 97 - 48.0).astype(np.float32).reshape(7, -1)
s = summarize("x", x, sketch_size=128, seed=11)
digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()
print(digest(sketch_codes(300_013, 128, 11)), digest(s.sketch))
"""


def test_sketch_is_identical_in_separate_processes():
    runs = [
        subprocess.run([PYTHON, "-c", SKETCH_IN_SUBPROCESS], cwd=REPO, env=repo_env(), capture_output=True,
                       text=True, timeout=120)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout
    x = (np.arange(300_013, dtype=np.float64) % 97 - 48.0).astype(np.float32).reshape(7, -1)
    here = hashlib.sha256(summarize("x", x, sketch_size=128, seed=11).sketch.tobytes()).hexdigest()
    assert runs[0].stdout.split()[1] == here


def test_codes_depend_on_seed_and_index_only_and_stream_past_the_cache(monkeypatch):
    long = module_records.sketch_codes(10_001, 100, seed=5)
    assert np.array_equal(module_records.sketch_codes(333, 100, seed=5), long[:333])
    assert not np.array_equal(module_records.sketch_codes(333, 100, seed=6), long[:333])
    assert long.max() < 200 and len(np.unique(long)) == 200
    monkeypatch.setattr(module_records, "CACHE_ELEMENTS", 1000)
    monkeypatch.setattr(module_records, "CHUNK_ELEMENTS", 999)  # odd chunk starts: word alignment
    monkeypatch.setattr(module_records, "_CACHE", module_records._CodeCache())
    x = np.random.default_rng(4).standard_normal(10_001)
    streamed = summarize("x", x, sketch_size=100, seed=5).sketch
    expected = np.bincount(long // 2, weights=np.where(long % 2 == 1, -x, x), minlength=100)
    assert np.allclose(streamed, expected, rtol=0, atol=1e-10)


def test_non_float_non_finite_empty_and_bfloat16_tensors():
    ints = summarize("i", np.arange(10, dtype=np.int64).reshape(2, 5))
    assert (ints.min, ints.max, ints.mean, ints.sketch.size) == (0.0, 9.0, 4.5, 0)
    assert summarize("b", np.array([True, False, True])).mean == pytest.approx(2 / 3)
    bad = summarize("n", np.array([1.0, np.nan, np.inf, -3.0], np.float32))
    assert (bad.finite, bad.min, bad.max, bad.mean, bad.norm) == (False, -3.0, 1.0, -1.0, math.sqrt(10))
    assert np.all(np.isfinite(bad.sketch))
    empty = summarize("e", np.zeros((0, 3), np.float32))
    assert empty.shape == (0, 3) and math.isnan(empty.min) and empty.norm == 0 and not empty.sketch.any()
    scalar = summarize("s", np.float32(-2.5))
    assert scalar.shape == () and scalar.norm == 2.5
    bf16 = summarize("bf", np.array([0x3F80, 0xC000], np.uint16), dtype="bfloat16")  # 1.0, -2.0
    assert (bf16.dtype, bf16.min, bf16.max, bf16.sketch.tolist()) == ("bfloat16", -2.0, 1.0, [1.0, -2.0])
    assert summarize("x", np.ones(4), sketch_size=0).sketch.size == 0
    with pytest.raises(ValueError):
        summarize("x", np.ones(4), sketch_size=-1)


def test_estimate_is_nan_or_inf_when_it_cannot_be_measured():
    ref = summarize("r", np.ones((4, 4)))
    assert estimate_rel_error(ref, summarize("c", np.ones((4, 4)))) == 0.0
    assert math.isnan(estimate_rel_error(ref, summarize("c", np.ones(16))))  # shape
    assert math.isnan(estimate_rel_error(ref, summarize("c", np.ones((4, 4)), seed=1)))  # seed
    assert math.isnan(estimate_rel_error(ref, summarize("c", np.ones((4, 4)), sketch_size=0)))
    assert math.isnan(estimate_rel_error(summarize("i", np.ones(3, np.int32)), summarize("i", np.ones(3, np.int32))))
    assert estimate_rel_error(ref, summarize("c", np.full((4, 4), np.nan))) == math.inf
    nan = summarize("c", np.full((4, 4), np.nan))
    assert estimate_rel_error(nan, ref) == math.inf  # torch keeps a NaN that MindSpore turned into numbers
    assert math.isnan(estimate_rel_error(nan, nan))  # both non-finite: the sketch cannot say (exact errors can)


def test_records_round_trip_through_dicts():
    s = summarize("x", np.arange(6, dtype=np.float32).reshape(2, 3), sketch_size=8, seed=3)
    call = ModuleCall("blocks.0.fc1", "Linear", "Linear", 1, 4, 7, (s,), (s,), ("blocks.0.fc1.weight",))
    back = ModuleCall.from_dict(call.to_dict())
    assert back == call and back.key == "blocks.0.fc1#1"
    assert np.array_equal(back.inputs[0].sketch, s.sketch) and back.inputs[0].sketch_seed == 3
    with pytest.raises(ValueError):
        s.sketch[0] = 1.0  # read-only: the summary is a value
    empty = summarize("e", np.zeros(0, np.float32)).to_dict()
    empty.update(min=None, max="inf")  # how msparity's JSON writes NaN and infinities
    back = TensorSummary.from_dict(empty)
    assert math.isnan(back.min) and back.max == math.inf


def test_a_tensor_no_larger_than_the_sketch_is_its_own_sketch_and_its_error_is_exact():
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((4, 8))
    cand = ref + rng.standard_normal((4, 8)) * 1e-3
    a, b = summarize("a", ref, sketch_size=32), summarize("b", cand, sketch_size=32)
    assert a.sketch.size == 32 and np.array_equal(a.sketch, ref.reshape(-1))
    exact = np.linalg.norm(cand - ref) / np.linalg.norm(ref)
    assert estimate_rel_error(a, b) == pytest.approx(exact, rel=1e-12)
    assert summarize("big", np.ones(33), sketch_size=32).sketch.size == 32
