"""Record, GetActivations and RunModule through the client: call summaries, kept tensors and replays checked."""

from __future__ import annotations

import numpy as np
import pytest

from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.worker.interface import RecordOptions
from tests.fast import expected
from tests.fast.expected import X

OPTIONS = RecordOptions(sketch_size=64, sketch_seed=7, float64_reference=True)


def _record(pt, options: RecordOptions = OPTIONS):
    """Record one forward on X; its calls by key."""
    result = pt.client.record([NamedArray("input0", X)], options)
    return result, {call.key: call for call in result.calls}


def _failure(call) -> WorkerError:
    """The WorkerError call() raises."""
    with pytest.raises(WorkerError) as info:
        call()
    return info.value


def test_record_summarises_every_call_in_completion_order(pt):
    result, calls = _record(pt)
    assert [c.key for c in result.calls] == ["fc1#0", "fc2#0", "#0"]
    root, fc1, fc2 = calls["#0"], calls["fc1#0"], calls["fc2#0"]
    assert root.encloses(fc1) and root.encloses(fc2) and fc1.end < fc2.start
    assert (fc1.type, fc1.rule_type, fc1.param_names) == ("Linear", "Linear", ("fc1.weight", "fc1.bias"))
    assert (root.type, root.param_names) == ("TinyNet", ())
    pre = expected.linear(pt.adapter.net.params, "fc1", X)
    summary = fc1.outputs[0]
    assert (summary.name, summary.dtype, summary.shape, summary.finite) == ("fc1#0|out|0", "float32", (2, 8), True)
    assert summary.mean == pytest.approx(pre.mean(), rel=1e-5)
    assert summary.norm == pytest.approx(np.linalg.norm(pre), rel=1e-5)
    assert (summary.min, summary.max) == pytest.approx((pre.min(), pre.max()), rel=1e-5)
    np.testing.assert_allclose(summary.sketch, pre.reshape(-1), rtol=1e-5)  # 16 <= 64 elements: its own sketch
    np.testing.assert_allclose(root.inputs[0].sketch, X.reshape(-1))


def test_record_runs_a_float64_reference_unless_told_not_to(pt):
    result, _ = _record(pt)
    assert [c.key for c in result.reference_calls] == ["fc1#0", "fc2#0", "#0"]
    assert result.reference_calls[-1].outputs[0].dtype == "float64" and result.reference_note == ""
    skipped, _ = _record(pt, RecordOptions(sketch_size=64, sketch_seed=7, float64_reference=False))
    assert skipped.reference_calls == () and skipped.reference_note == "skipped, as asked (no-reference)"


def test_get_activations_returns_the_recorded_tensors(pt):
    _record(pt)
    got = list(pt.client.get_activations("f32", ["fc1#0", "#0"], inputs=True, outputs=True))
    assert [t.name for t in got] == ["fc1#0|in|0", "fc1#0|out|0", "#0|in|0", "#0|out|0"]
    params = pt.adapter.net.params
    np.testing.assert_array_equal(got[0].array, X)
    np.testing.assert_allclose(got[1].array, expected.linear(params, "fc1", X), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[2].array, X)
    np.testing.assert_allclose(got[3].array, expected.forward(params, X), rtol=1e-5, atol=1e-6)
    outputs = list(pt.client.get_activations("f64", ["fc2#0"], inputs=False, outputs=True))
    assert [(t.name, t.dtype) for t in outputs] == [("fc2#0|out|0", "float64")]
    np.testing.assert_allclose(outputs[0].array, expected.forward(params, X), rtol=1e-12)


def test_run_module_replays_one_layer_on_new_tensors(pt):
    _record(pt)
    hidden = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    (output,) = pt.client.run_module("fc2", 0, False, [NamedArray("x", hidden)])
    assert (output.name, output.dtype) == ("fc2#0|out|0", "float32")
    np.testing.assert_allclose(output.array, expected.linear(pt.adapter.net.params, "fc2", hidden), rtol=1e-5,
                               atol=1e-6)
    (output64,) = pt.client.run_module("fc1", 0, True, [NamedArray("x", X)])
    assert output64.dtype == "float64"
    np.testing.assert_allclose(output64.array, expected.linear(pt.adapter.net.params, "fc1", X), rtol=1e-12)


def test_activations_and_replays_of_unrecorded_calls_are_refused(pt):
    before = _failure(lambda: list(pt.client.get_activations("f32", ["fc1#0"], True, True)))
    assert before.status == "NOT_FOUND" and "run locate (Record) first" in before.details
    _record(pt)
    assert _failure(lambda: list(pt.client.get_activations("f32", ["fc1#1"], True, True))).status == "NOT_FOUND"
    assert _failure(lambda: pt.client.run_module("fc3", 0, False, [NamedArray("x", X)])).status == "NOT_FOUND"
    wrong_count = _failure(lambda: pt.client.run_module("fc1", 0, False, [NamedArray("a", X), NamedArray("b", X)]))
    assert wrong_count.status == "INVALID_ARGUMENT"
    assert wrong_count.details == "pt worker RunModule: call 'fc1#0' takes 1 tensor argument(s), 2 were sent"
