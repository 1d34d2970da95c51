"""The worker RPCs through the coordinator's client, against real worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.client import WorkerClient
from proto.codec import NamedArray
from proto.errors import WorkerError
from proto.worker.interface import PROTOCOL_VERSION
from tests.conftest import hand_started_worker


@pytest.fixture(scope="module")
def workers():
    with hand_started_worker("pt", "tests/fixtures/dtypes_pt.py:build") as pt, \
            hand_started_worker("ms", "tests/fixtures/dtypes_ms.py:build") as ms:
        with WorkerClient(pt, "pt") as pt_client, WorkerClient(ms, "ms") as ms_client:
            yield pt_client, ms_client


def test_describe_and_listing(workers):
    pt, ms = workers
    pt_desc, ms_desc = pt.describe(), ms.describe()
    assert (pt_desc.framework, ms_desc.framework) == ("pytorch", "mindspore")
    assert pt_desc.protocol_version == ms_desc.protocol_version == PROTOCOL_VERSION == "1.8"
    assert pt_desc.model_class == ms_desc.model_class == "Mixed"
    listing = pt.list_parameters()
    by_name = {p.name: p for p in listing.parameters}
    assert [p.name for p in listing.parameters] == ["p_bf16", "p_half", "p_double", "count", "mask", "fc.weight", "fc.bias"]
    assert by_name["p_bf16"].dtype == "bfloat16" and by_name["count"].is_buffer and not by_name["count"].trainable
    assert by_name["fc.weight"].module_type == "Linear" and by_name["fc.weight"].module_path == "fc"
    ms_by_name = {p.name: p for p in ms.list_parameters().parameters}
    assert ms_by_name["p_bf16"].dtype == "bfloat16" and ms_by_name["fc.weight"].module_type == "Dense"


def test_weights_of_every_dtype_cross_bit_exactly(workers):
    pt, ms = workers
    names = ["p_bf16", "p_half", "p_double", "fc.weight", "fc.bias"]
    sent = {t.name: t for t in pt.get_weights(names)}
    result = ms.set_weights(sent.values())
    assert result.loaded == 5 and result.missing == ()
    back = {t.name: t for t in ms.get_weights(names)}
    for name in names:
        assert back[name].dtype == sent[name].dtype
        assert back[name].array.tobytes() == sent[name].array.tobytes(), name
    scalars = {t.name: t for t in pt.get_weights(["count", "mask"])}
    assert scalars["count"].shape == () and int(scalars["count"].array) == 7
    assert scalars["mask"].array.tolist() == [True, False, True]


def test_forward_flattens_tuple_outputs(workers):
    pt, ms = workers
    x = NamedArray("input0", np.ones((2, 4), np.float32))
    pt_out, ms_out = pt.forward([x]).outputs, ms.forward([x]).outputs
    assert [t.name for t in pt_out] == [t.name for t in ms_out] == ["output.0", "output.1"]
    assert pt_out[1].shape == () and float(pt_out[1].array) == 8.0 == float(ms_out[1].array)


def test_bad_weights_are_refused_with_every_problem_named(workers):
    _, ms = workers
    bad = [NamedArray("nope", np.zeros(2, np.float32)), NamedArray("fc.bias", np.zeros(3, np.float32)),
           NamedArray("p_half", np.zeros(5, np.float32))]
    with pytest.raises(WorkerError) as info:
        ms.set_weights(bad)
    message = str(info.value)
    assert info.value.status == "INVALID_ARGUMENT" and "ms worker at" in message
    assert "'nope' is not a parameter" in message and "'fc.bias' has shape [3]" in message
    assert "'p_half' is float32, the net's is float16" in message


def test_weights_stream_from_a_worker_back_into_itself(workers):
    """SetWeights fed by the same worker's GetWeights: once a deadlock, depending on timing."""
    pt, ms = workers
    for _ in range(3):
        assert pt.set_weights(pt.get_weights(), strict=True).loaded == 7
        assert ms.set_weights(ms.get_weights(), strict=True).loaded == 5


def test_strict_set_names_what_was_not_sent(workers):
    pt, _ = workers
    with pytest.raises(WorkerError, match=r"not set: .*p_double"):
        pt.set_weights(pt.get_weights(["fc.weight"]), strict=True)
    assert pt.describe().weights_state == "partly set by a failed SetWeights (1 of 7 tensors)"
    with pytest.raises(WorkerError, match=r"FAILED_PRECONDITION.*set them again"):
        pt.forward([NamedArray("input0", np.ones((2, 4), np.float32))])
    assert pt.set_weights(pt.get_weights(), strict=True).loaded == 7  # set whole again: it computes again
    assert pt.describe().weights_state == "set by SetWeights"


def test_unknown_weight_name_and_bad_forward_input(workers):
    pt, ms = workers
    with pytest.raises(WorkerError, match=r"NOT_FOUND.*unknown pytorch parameter\(s\): missing"):
        list(pt.get_weights(["missing"]))
    with pytest.raises(WorkerError, match=r"forward failed on inputs \(input0 \[2, 5\] float32\)"):
        pt.forward([NamedArray("input0", np.ones((2, 5), np.float32))])
    with pytest.raises(WorkerError, match=r"ms worker.*forward failed"):
        ms.forward([NamedArray("input0", np.ones((2, 5), np.float32))])
    # the worker still serves after failures
    assert pt.describe().framework == "pytorch"


def test_error_in_the_coordinators_stream_is_raised_as_itself(workers):
    _, ms = workers

    def broken():
        yield NamedArray("p_half", np.zeros(5, np.float16))
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        ms.set_weights(broken())
