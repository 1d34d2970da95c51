"""run_compare over a Session of two numpy fakes: pt weights streamed into ms by the layer rules, outputs compared."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from coordinator.compare import run_compare
from coordinator.local import LocalWorker
from coordinator.session import Session, WorkerTarget, open_session
from proto.codec import TensorSpec
from proto.errors import UsageError
from tests.fast.numpy_worker import FakeAdapter


def _fakes(ms_offset: float = 0.0) -> tuple[FakeAdapter, FakeAdapter]:
    """A pt and an ms fake whose initial weights differ (only the weight sync can make them agree)."""
    return FakeAdapter("pytorch", init_seed=1), FakeAdapter("mindspore", init_seed=2, offset=ms_offset)


@contextlib.contextmanager
def _session(mode: str, serve, pt: FakeAdapter, ms: FakeAdapter):
    """A described Session over the two fakes: dialled over gRPC, or in this process."""
    if mode == "grpc":
        with open_session(WorkerTarget(address=serve(pt, "pt")), WorkerTarget(address=serve(ms, "ms"))) as session:
            yield session
        return
    session = Session(LocalWorker(pt, "pt"), LocalWorker(ms, "ms"))
    try:
        session.describe()
        yield session
    finally:
        session.close()


@pytest.mark.parametrize("mode", ["grpc", "local"])
def test_compare_passes_when_the_nets_agree(serve, mode):
    pt, ms = _fakes()
    assert not np.array_equal(pt.net.params["fc1.weight"], ms.net.params["fc1.weight"])
    with _session(mode, serve, pt, ms) as session:
        report = run_compare(session, seed=3)
    assert report.passed
    assert (report.pt.framework, report.ms.framework) == ("pytorch", "mindspore")
    assert (report.weights.loaded, report.weights.dropped, report.weights.transformed) == (4, (), ())
    for name, value in pt.net.params.items():
        np.testing.assert_array_equal(ms.net.params[name], value)
    assert report.inputs == (TensorSpec("input0", "float32", (2, 4)),)
    (output,) = report.outputs
    assert (output.ref_name, output.cand_name, output.total, output.mismatched) == ("output", "output", 6, 0)
    assert output.max_abs_diff == 0.0 and report.pt_only_outputs == report.ms_only_outputs == ()


@pytest.mark.parametrize("mode", ["grpc", "local"])
def test_compare_fails_when_the_ms_net_adds_an_offset(serve, mode):
    pt, ms = _fakes(ms_offset=0.5)
    with _session(mode, serve, pt, ms) as session:
        report = run_compare(session, seed=3)
    assert not report.passed
    (output,) = report.outputs
    assert not output.passed and output.mismatched == output.total == 6
    assert output.max_abs_diff == pytest.approx(0.5, abs=1e-5)
    assert output.mean_abs_diff == pytest.approx(0.5, abs=1e-5)


def test_compare_without_the_weight_sync_sees_the_different_init(serve):
    pt, ms = _fakes()
    with _session("grpc", serve, pt, ms) as session:
        report = run_compare(session, seed=3, sync_weights=False)
    assert not report.passed and report.weights is None
    assert not np.array_equal(pt.net.params["fc1.weight"], ms.net.params["fc1.weight"])


def test_a_session_refuses_workers_on_the_wrong_sides(serve):
    pt, ms = _fakes()
    swapped = WorkerTarget(address=serve(ms, "ms")), WorkerTarget(address=serve(pt, "pt"))
    with pytest.raises(UsageError, match="the pt side is a mindspore worker; swap --pt and --ms"), \
            open_session(*swapped):
        pass
