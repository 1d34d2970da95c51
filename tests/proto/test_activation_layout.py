"""A factory's "activations": parsed, and a recording's declared slices and partial sums made whole (the
collective simulated by handing each rank's array in: the real ones run in tests/e2e/test_ranks.py)."""

from __future__ import annotations

import numpy as np
import pytest

from proto.codec import NamedArray
from proto.errors import MsparityError
from proto.worker.activation_layout import gather_arrays, parse_activations, whole, whole_run
from proto.worker.call_recorder import CallRecorder
from proto.worker.module_records import summarize


def test_declarations_parse_and_bad_ones_name_the_module():
    layout = parse_activations({"fc1": "shard(-1)", "act": {"inputs": "Shard(2)", "outputs": "partial"}},
                               ["", "fc1", "act"])
    assert layout == {"fc1": {"outputs": ("shard", -1)}, "act": {"inputs": ("shard", 2), "outputs": ("partial", 0)}}
    assert parse_activations(None, []) == {}
    with pytest.raises(MsparityError, match="modules the net does not have: fc3"):
        parse_activations({"fc3": "partial"}, ["fc1"])
    with pytest.raises(MsparityError, match="place the outputs of 'fc1' as 'split'"):
        parse_activations({"fc1": "split"}, ["fc1"])
    with pytest.raises(MsparityError, match="'fc1' has grads"):
        parse_activations({"fc1": {"grads": "partial"}}, ["fc1"])
    with pytest.raises(MsparityError, match="must be a dict"):
        parse_activations(["fc1"], ["fc1"])


def test_whole_joins_slices_adds_partial_sums_and_names_parts_that_do_not_fit():
    a, b = np.ones((2, 3), np.float32), np.full((2, 2), 2, np.float32)
    assert whole([a, b], ("shard", -1), "x").tolist() == [[1, 1, 1, 2, 2]] * 2
    assert whole([a, a * 3], ("partial", 0), "x").tolist() == [[4, 4, 4]] * 2
    assert whole([a, a * 3], ("replicate", 0), "x") is a
    with pytest.raises(MsparityError, match=r"fc1: its parts \[\[2, 3\], \[2, 2\]\] do not join along dim 0"):
        whole([a, b], ("shard", 0), "fc1")
    with pytest.raises(MsparityError, match="declared 'partial' but the ranks hold shapes"):
        whole([a, b], ("partial", 0), "fc2")


def _two_ranks(arrays_by_rank):
    """An all-gather of int32 rows over two simulated ranks, each call taking the next row rank 1 sends."""
    sent = iter(arrays_by_rank)

    def all_gather(mine):
        other = next(sent)
        return np.stack([mine, other])
    return all_gather


def test_arrays_of_any_dtype_and_uneven_shapes_travel_through_int32_rows():
    mine = np.arange(5, dtype=np.float16).reshape(1, 5)
    theirs = np.arange(3, dtype=np.float16).reshape(1, 3) + 10
    # what rank 1 would put in: its header, then its bytes padded to the longest (rank 0's 10 bytes -> 12)
    header = np.zeros(10, np.int32)
    header[0], header[1:3], header[-1] = 2, (1, 3), theirs.nbytes
    padded = np.zeros(12, np.uint8)
    padded[: theirs.nbytes] = theirs.view(np.uint8).reshape(-1)
    parts = gather_arrays(_two_ranks([header, padded.view(np.int32)]), mine, 2)
    assert [p.dtype for p in parts] == [np.float16] * 2
    assert parts[0].tolist() == mine.tolist() and parts[1].tolist() == theirs.tolist()


def test_a_recording_gets_whole_tensors_and_their_summaries():
    recorder = CallRecorder(lambda name, a: NamedArray(name, np.asarray(a)), lambda v: isinstance(v, np.ndarray), 0, 0)
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    recorder.pre("fc1", (x,))
    recorder.post("fc1", "Linear", "Linear", (), x[:, :2])
    recorder.pre("fc2", (x,))
    recorder.post("fc2", "Linear", "Linear", (), x * 2)
    other = {"fc1#0|out|0": x[:, 2:], "fc2#0|out|0": x}  # rank 1's parts

    def gather(array):
        name = next(n for n, t in current.items() if t is array)
        return [array, other[name]]

    run = recorder.run
    current = {t.name: t.array for key in run.tensors for t in run.tensors[key][1]}
    whole_run(run, {"fc1": {"outputs": ("shard", -1)}, "fc2": {"outputs": ("partial", 0)}}, gather, False, 0, 0)
    assert run.tensors["fc1#0"][1][0].array.tolist() == x.tolist()
    assert run.tensors["fc2#0"][1][0].array.tolist() == (x * 3).tolist()
    assert run.calls[1].outputs[0] == summarize("fc2#0|out|0", x * 3, 0, 0)
    assert run.tensors["fc1#0"][0][0].array is x  # its inputs were not declared: as they were
    # in a backward, the gradient of a partial sum is whole on every rank already
    again = CallRecorder(lambda name, a: NamedArray(name, np.asarray(a)), lambda v: isinstance(v, np.ndarray), 0, 0)
    again.pre("fc2", (x,))
    again.post("fc2", "Linear", "Linear", (), x)
    whole_run(again.run, {"fc2": {"outputs": ("partial", 0)}}, lambda a: pytest.fail("gathered"), True, 0, 0)


def test_a_replays_whole_inputs_are_cut_into_the_recorded_slices():
    from proto.worker.activation_layout import local_part

    x = NamedArray("input0", np.arange(10, dtype=np.float32).reshape(2, 5))
    shapes = [(2, 3), (2, 2)]  # uneven, as the ranks recorded them
    assert local_part(x, ("shard", -1), 0, shapes).array.tolist() == [[0, 1, 2], [5, 6, 7]]
    assert local_part(x, ("shard", 1), 1, shapes).array.tolist() == [[3, 4], [8, 9]]
    assert local_part(x, ("partial", 0), 0, shapes) is x
    assert not local_part(x, ("partial", 0), 1, shapes).array.any()  # zeros elsewhere: the sum is the whole
    assert local_part(x, None, 1, None) is x
    with pytest.raises(MsparityError, match=r"given shape \[2, 5\], but the recorded slices along dim 1 add up to 4"):
        local_part(x, ("shard", 1), 0, [(2, 2), (2, 2)])


def test_a_side_may_place_its_tensors_one_by_one():
    from proto.worker.activation_layout import spec_of

    layout = parse_activations({"attn": {"outputs": ["replicate", "shard(1)"]}}, ["attn"])
    side = layout["attn"]["outputs"]
    assert [spec_of(side, i) for i in range(3)] == [("replicate", 0), ("shard", 1), None]
    assert spec_of(("partial", 0), 5) == ("partial", 0) and spec_of(None, 0) is None and spec_of((), 0) is None
    recorder = CallRecorder(lambda name, a: NamedArray(name, np.asarray(a)), lambda v: isinstance(v, np.ndarray), 0, 0)
    x, heads = np.ones((1, 4), np.float32), np.zeros((1, 2, 3), np.float32)
    recorder.pre("attn", (x,))
    recorder.post("attn", "Attention", "", (), (x, heads))
    whole_run(recorder.run, layout, lambda a: [a, a + 1], False, 0, 0)
    out, weights = recorder.run.tensors["attn#0"][1]
    assert out.array is x and weights.array.shape == (1, 4, 3) and weights.array[0, 2:].tolist() == [[1] * 3] * 2
