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


def _two_layer_step(head_ms: np.ndarray, body_ms: np.ndarray, exact_head, exact_body, pt_head, pt_body):
    plan = WeightPlan((WeightMapping("body.weight", "body.weight"), WeightMapping("head.weight", "head.weight")), ())
    specs = {n: ParameterSpec(n, "float32", (1000,), n.split(".")[0], "Linear", trainable=True)
             for n in ("body.weight", "head.weight")}
    loss = [NamedArray("loss", np.float32(1.0))]
    pt = [*loss, NamedArray("ref:loss", np.float64(1.0))]
    ms = list(loss)
    for name, exact, own, port in (("body", exact_body, pt_body, body_ms), ("head", exact_head, pt_head, head_ms)):
        pt += [NamedArray(f"grad:{name}.weight", own.astype(np.float32)), NamedArray(f"ref:grad:{name}.weight", exact)]
        ms += [NamedArray(f"grad:{name}.weight", port.astype(np.float32))]
    return compare_step(0, pt, ms, plan, specs, rtol=1e-4, atol=1e-8)


def test_one_flipped_kink_explains_its_gradient_and_those_it_moves_upstream_with_a_warning():
    """mobilenet_v2 at seed 0: one ReLU6 input float32 put above 0 passes gradient into one element of the last
    BatchNorm bias, and through backward moves every gradient before it by ~1%."""
    rng = np.random.default_rng(2)
    head, body = rng.standard_normal(1000), rng.standard_normal(1000)
    pt_head, pt_body = head * (1 + 1e-7 * rng.standard_normal(1000)), body * (1 + 1e-7 * rng.standard_normal(1000))
    flipped = pt_head.copy()
    flipped[7] += 0.5  # the one element the flip lets through
    moved = body * (1 + 0.01 * rng.standard_normal(1000))  # upstream: close, but far beyond 1e-7 noise
    step = _two_layer_step(flipped, moved, head, body, pt_head, pt_body)
    rows = {r.pt_name: r for r in step.rows}
    assert step.passed and rows["head.weight"].explained.startswith("one element [7]")
    assert "kink flip in head.weight" in rows["body.weight"].explained
    assert step.notes and "confirm with another --seed" in step.notes[0]

    spread = pt_head * (1 + 1e-3 * rng.standard_normal(1000))  # a real difference spread over every element
    step = _two_layer_step(spread, moved, head, body, pt_head, pt_body)
    assert not step.passed and not step.notes and not any(r.explained for r in step.rows)
