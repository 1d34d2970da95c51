"""Outputs of any structure: dicts, dataclasses and tuples flatten the same way; non-tensor leaves are named and left
out; a dict on one side and a tuple on the other pair by position when their tensors agree in count and shape."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coordinator.compare import run_compare
from tests.fast.numpy_worker import FakeAdapter
from tests.fast.test_compare_session import _session


class KeyValueCache:
    """Stands in for HF's DynamicCache: an object in the output that is not a tensor."""


@dataclasses.dataclass
class CausalOutput:
    logits: np.ndarray
    past_key_values: object = None


class Structured(FakeAdapter):
    """The fake net with its output wrapped the way a model library returns it."""

    def __init__(self, framework: str, wrap, **kwargs):
        super().__init__(framework, **kwargs)
        self.wrap = wrap

    def _call_net(self, inputs, train_mode):
        return self.wrap(super()._call_net(inputs, train_mode))


HF_STYLE = lambda y: {"last_hidden_state": y, "past_key_values": KeyValueCache()}  # noqa: E731
TUPLE_STYLE = lambda y: (y, None)  # noqa: E731
DATACLASS_STYLE = lambda y: CausalOutput(y, KeyValueCache())  # noqa: E731


@pytest.mark.parametrize("mode", ["grpc", "local"])
def test_a_dict_with_a_cache_against_a_tuple_pairs_by_position(serve, mode):
    pt, ms = Structured("pytorch", HF_STYLE, init_seed=1), Structured("mindspore", TUPLE_STYLE, init_seed=2)
    with _session(mode, serve, pt, ms) as session:
        report = run_compare(session, seed=3)
    assert report.passed
    (output,) = report.outputs
    assert (output.ref_name, output.cand_name, output.mismatched) == ("output.last_hidden_state", "output.0", 0)
    assert report.notes == (
        "pt left out non-tensor outputs: output.past_key_values (KeyValueCache)",
        "ms left out non-tensor outputs: output.1 (None)",
        "outputs paired by position (the two sides name them differently): output.last_hidden_state ~ output.0",
    )


@pytest.mark.parametrize("mode", ["grpc", "local"])
def test_a_dataclass_output_flattens_by_field(serve, mode):
    pt, ms = Structured("pytorch", DATACLASS_STYLE, init_seed=1), Structured("mindspore", DATACLASS_STYLE, offset=0.5)
    with _session(mode, serve, pt, ms) as session:
        report = run_compare(session, seed=3)
    assert not report.passed  # the offset is seen through the structure
    (output,) = report.outputs
    assert output.ref_name == output.cand_name == "output.logits"
    assert output.max_abs_diff == pytest.approx(0.5, abs=1e-5)
    assert report.notes[:2] == ("pt left out non-tensor outputs: output.past_key_values (KeyValueCache)",
                                "ms left out non-tensor outputs: output.past_key_values (KeyValueCache)")


def test_differently_shaped_outputs_do_not_pair_by_position(serve):
    pt = Structured("pytorch", HF_STYLE, init_seed=1)
    ms = Structured("mindspore", lambda y: (y[:, :2], None), init_seed=2)
    with _session("grpc", serve, pt, ms) as session:
        with pytest.raises(Exception, match="nothing to compare: pt returned .'output.last_hidden_state'., ms returned"
                                            " .'output.0'.; pt left out non-tensor outputs"):
            run_compare(session, seed=3)
