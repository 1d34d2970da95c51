"""train-step's judgement of one step: rtol/atol, then torch's own float32 noise against its float64 step."""

from __future__ import annotations

import numpy as np

from coordinator.train.train_step import compare_step
from proto.codec import NamedArray
from proto.weights.weight_plan import WeightMapping, WeightPlan
from proto.worker.interface import ParameterSpec

PLAN = WeightPlan((WeightMapping("fc.weight", "fc.weight"),), ())
SPECS = {"fc.weight": ParameterSpec("fc.weight", "float32", (1000,), "fc", "Linear", trainable=True)}


def _step(ms_grad: np.ndarray, pt_grad: np.ndarray, reference: np.ndarray | None):
    loss = [NamedArray("loss", np.float32(1.0))]
    pt = [*loss, NamedArray("grad:fc.weight", pt_grad.astype(np.float32))]
    if reference is not None:
        pt += [NamedArray("ref:loss", np.float64(1.0)), NamedArray("ref:grad:fc.weight", reference)]
    ms = [*loss, NamedArray("grad:fc.weight", ms_grad.astype(np.float32))]
    (row,) = compare_step(0, pt, ms, PLAN, SPECS, rtol=1e-4, atol=1e-8).rows
    return row


def test_a_difference_outside_rtol_atol_but_within_torch_s_own_noise_passes():
    rng = np.random.default_rng(0)
    exact = rng.standard_normal(1000) * 1e-3
    pt = exact * (1 + rng.standard_normal(1000) * 2e-4)  # torch's float32 step: 2e-4 relative noise
    ms = exact * (1 + rng.standard_normal(1000) * 3e-4)  # the port: a little noisier, same order
    row = _step(ms, pt, exact)
    assert not row.comparison.passed and row.passed and row.within_noise
    assert 1.0 < row.noise_ratio < 3.0
    assert not _step(ms, pt, None).passed  # without the float64 step: judged by rtol/atol alone


def test_a_difference_ten_times_torch_s_noise_fails():
    rng = np.random.default_rng(1)
    exact = rng.standard_normal(1000)
    pt = exact * (1 + rng.standard_normal(1000) * 1e-7)
    ms = exact * (1 + rng.standard_normal(1000) * 1e-3)
    row = _step(ms, pt, exact)
    assert not row.passed and row.noise_ratio > 100
