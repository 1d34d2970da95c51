"""Metrics: values checked against direct numpy computations, edge cases named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coordinator import metrics
from proto.codec import NamedArray
from proto.errors import UsageError


def pair(ref, cand, dtype=None):
    return NamedArray("r", np.asarray(ref), dtype or ""), NamedArray("c", np.asarray(cand), dtype or "")


def test_metrics_match_direct_numpy():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((7, 9)).astype(np.float32)
    cand = ref + rng.normal(0, 1e-3, ref.shape).astype(np.float32)
    r = metrics.compare_tensors(*pair(ref, cand), rtol=1e-3, atol=1e-3)
    diff = np.abs(cand.astype(np.float64) - ref.astype(np.float64))
    assert r.max_abs_diff == pytest.approx(diff.max())
    assert r.mean_abs_diff == pytest.approx(diff.mean())
    assert r.max_rel_diff == pytest.approx((diff / np.abs(ref.astype(np.float64))).max())
    close = np.isclose(cand, ref, rtol=1e-3, atol=1e-3)
    assert r.allclose_ratio == pytest.approx(close.mean()) and r.passed == bool(close.all())
    cos = np.dot(ref.ravel().astype(np.float64), cand.ravel()) / (np.linalg.norm(ref) * np.linalg.norm(cand))
    assert r.cosine_similarity == pytest.approx(cos)
    assert r.worst_index == tuple(np.unravel_index(np.argmax(diff), ref.shape))


def test_blockwise_equals_single_block(monkeypatch):
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(10_000)
    cand = ref * (1 + rng.normal(0, 1e-5, ref.shape))
    whole = metrics.compare_tensors(*pair(ref, cand), rtol=1e-6, atol=0.0)
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 999)
    blocks = metrics.compare_tensors(*pair(ref, cand), rtol=1e-6, atol=0.0)
    assert blocks.mismatched == whole.mismatched and blocks.worst_index == whole.worst_index
    assert blocks.max_abs_diff == whole.max_abs_diff
    assert blocks.cosine_similarity == pytest.approx(whole.cosine_similarity, abs=1e-12)
    assert blocks.mean_abs_diff == pytest.approx(whole.mean_abs_diff)


def test_nan_and_inf_handling():
    ref = np.array([np.nan, np.inf, 1.0, 2.0], np.float32)
    same = metrics.compare_tensors(*pair(ref, ref.copy()), rtol=0, atol=0, equal_nan=True)
    assert same.passed and same.max_abs_diff == 0.0
    strict = metrics.compare_tensors(*pair(ref, ref.copy()), rtol=0, atol=0, equal_nan=False)
    assert not strict.passed and strict.mismatched == 1
    cand = np.array([1.0, np.inf, 1.0, 2.0], np.float32)
    r = metrics.compare_tensors(*pair(ref, cand), rtol=0, atol=0, equal_nan=True)
    assert not r.passed and math.isinf(r.max_abs_diff) and r.worst_index == (0,)


def test_zero_reference_gives_infinite_relative_error_and_zero_cosine():
    r = metrics.compare_tensors(*pair(np.zeros(3), np.array([0, 0, 1e-9])), rtol=0, atol=1e-6)
    assert r.passed and math.isinf(r.max_rel_diff) and r.cosine_similarity == 0.0
    both_zero = metrics.compare_tensors(*pair(np.zeros(3), np.zeros(3)))
    assert both_zero.passed and both_zero.cosine_similarity == 1.0 and both_zero.max_rel_diff == 0.0


def test_shape_mismatch_is_reported_not_raised():
    r = metrics.compare_tensors(*pair(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)))
    assert not r.passed and "shape [2, 3] vs [3, 2]" in r.note


def test_integers_and_bools_compare_exactly():
    assert not metrics.compare_tensors(*pair(np.array([1, 2]), np.array([1, 3]))).passed
    assert metrics.compare_tensors(*pair(np.array([True, False]), np.array([True, False]))).passed
    assert not metrics.compare_tensors(*pair(np.array([True, False]), np.array([True, True]))).passed


def test_bfloat16_compared_on_its_values():
    one, one_and_bit = np.array([0x3F80], np.uint16), np.array([0x3F81], np.uint16)  # 1.0 and 1.0078125
    r = metrics.compare_tensors(*pair(one, one_and_bit, "bfloat16"))
    assert r.passed and r.max_abs_diff == pytest.approx(2**-7)  # default bf16 rtol 1.6e-2


def test_tolerances_both_or_neither_and_per_dtype_defaults():
    with pytest.raises(UsageError, match="both --rtol and --atol"):
        metrics.resolve_tolerance("float32", 1e-3, None)
    assert metrics.resolve_tolerance("float32", None, None) == metrics.Tolerance(1e-4, 1e-5)
    assert metrics.resolve_tolerance("float16", None, None) == metrics.Tolerance(1e-3, 1e-5)
    assert metrics.resolve_tolerance("int64", None, None) == metrics.Tolerance(0.0, 0.0)
    with pytest.raises(UsageError, match="non-negative"):
        metrics.resolve_tolerance("float32", -1.0, 0.0)


def test_equal_tensors_take_the_exact_path_and_any_difference_does_not():
    big = np.arange(metrics.BLOCK_ELEMENTS * 2 + 5, dtype=np.float32)
    same = metrics.compare_tensors(NamedArray("a", big), NamedArray("b", big.copy()))
    assert same.passed and same.max_abs_diff == 0.0 and same.cosine_similarity == 1.0 and same.total == big.size
    moved = big.copy()
    moved[-1] += 1e4  # in the last block only
    one = metrics.compare_tensors(NamedArray("a", big), NamedArray("b", moved))
    assert one.mismatched == 1 and one.max_abs_diff == 1e4 and one.worst_index == (big.size - 1,)
    nan = np.array([1.0, np.nan], np.float32)
    assert not metrics.compare_tensors(NamedArray("a", nan), NamedArray("b", nan.copy())).passed  # NaN is never equal
    assert metrics.compare_tensors(NamedArray("a", nan), NamedArray("b", nan.copy()), equal_nan=True).passed


def _reference(ref: np.ndarray, cand: np.ndarray, rtol: float, atol: float, equal_nan: bool) -> dict:
    """The metrics computed the plain way: whole arrays in float64, numpy's isclose, masks everywhere."""
    r, c = ref.astype(np.float64).ravel(), cand.astype(np.float64).ravel()
    close = np.isclose(c, r, rtol=rtol, atol=atol, equal_nan=equal_nan)
    with np.errstate(all="ignore"):
        diff = np.abs(c - r)
        diff[(r == c) | (np.isnan(r) & np.isnan(c))] = 0.0
        diff[np.isnan(diff)] = np.inf
        rel = np.where(diff == 0, 0.0, diff / np.abs(r))
    finite = np.isfinite(r) & np.isfinite(c)
    return {"close": int(close.sum()), "max_abs": float(diff.max()), "max_rel": float(rel.max()),
            "sum_abs": float(diff.sum()), "worst": int(np.argmax(diff)),
            "dot": (float(np.dot(r[finite], c[finite])), float(np.dot(r[finite], r[finite])),
                    float(np.dot(c[finite], c[finite])))}


def _tricky_pairs():
    rng = np.random.default_rng(7)
    base = rng.standard_normal(5000).astype(np.float32)
    near = base + np.float32(1e-6)
    far = base.copy()
    far[::97] += 0.5
    special = base.copy()
    special[[3, 1700, 4999]] = [np.nan, np.inf, -np.inf]
    special_cand = special.copy()
    special_cand[[10, 2500]] = [np.nan, -np.inf]
    zeros = np.zeros(5000, np.float32)
    signed = zeros.copy()
    signed[::2] = -0.0
    signed[7] = 1e-30
    huge = np.full(5000, 3e38, np.float32)
    return {
        "within tolerance": (base, near), "some far": (base, far), "nan and inf": (special, special_cand),
        "-0.0 against 0.0 and a lone tiny value": (zeros, signed), "float32 extremes": (huge, -huge),
        "float16": (base.astype(np.float16), near.astype(np.float16)),
        "float64": (base.astype(np.float64), far.astype(np.float64)),
        "int64": (np.arange(5000, dtype=np.int64), np.arange(5000, dtype=np.int64) + (np.arange(5000) % 3 == 0)),
        "bool": (base > 0, near > 0.01),
        "one element": (base[:1], far[:1]),
    }


@pytest.mark.parametrize("name", list(_tricky_pairs()))
@pytest.mark.parametrize("chunk", [64, 1000, 1 << 15])
@pytest.mark.parametrize("equal_nan", [False, True])
def test_chunked_metrics_equal_the_plain_computation(monkeypatch, name, chunk, equal_nan):
    """Chunk by chunk (finite chunks on the fast path, others masked) gives the plain whole-array numbers."""
    ref, cand = _tricky_pairs()[name]
    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 2048)  # several thread tasks too
    got = metrics.compare_tensors(*pair(ref, cand), rtol=1e-4, atol=1e-5, equal_nan=equal_nan)
    want = _reference(ref.astype(np.uint8) if ref.dtype == bool else ref,
                      cand.astype(np.uint8) if cand.dtype == bool else cand, 1e-4, 1e-5, equal_nan)
    assert got.mismatched == ref.size - want["close"] and got.passed == (want["close"] == ref.size)
    assert got.max_abs_diff == want["max_abs"] and got.max_rel_diff == want["max_rel"]
    if want["max_abs"] > 0:
        assert got.worst_index == tuple(np.unravel_index(want["worst"], ref.shape))
    assert got.mean_abs_diff == pytest.approx(want["sum_abs"] / ref.size, rel=1e-12)
    dot, ref_sq, cand_sq = want["dot"]
    if not (want["max_abs"] == 0 and want["close"] == ref.size) and ref_sq and cand_sq:
        assert got.cosine_similarity == pytest.approx(dot / np.sqrt(ref_sq) / np.sqrt(cand_sq), rel=1e-12, abs=1e-15)


def test_identical_copies_and_the_full_path_agree():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal(3000).astype(np.float32)
    ref[5] = -0.0
    fast = metrics.compare_tensors(*pair(ref, ref.copy()))
    cand = ref.copy()
    cand[5] = 0.0  # equal values, different bits: not the copy shortcut, same numbers
    full = metrics.compare_tensors(*pair(ref, cand))
    assert fast == full


def test_empty_and_mismatched_shapes():
    empty = metrics.compare_tensors(*pair(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)))
    assert empty.passed and empty.total == 0 and empty.max_abs_diff == 0.0 and empty.worst_index is None
    shapes = metrics.compare_tensors(*pair(np.zeros(4, np.float32), np.zeros(5, np.float32)))
    assert not shapes.passed and math.isnan(shapes.max_abs_diff)
