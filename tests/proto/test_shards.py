"""Shards and placements (numpy only): whole tensors from ranks' slices and back, the factory's placements, the
order each rank runs its compute calls in."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from proto.codec import NamedArray
from proto.errors import FailedPrecondition, MsparityError
from proto.weights.shards import joined, parse_placements, sliced, whole_shape
from proto.worker.rank_job import SequenceGate, published, rank_listen


def test_uneven_shards_join_and_cut_back_exactly():
    whole = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    parts = sliced(NamedArray("w", whole), "shard", 0, [3, 2])  # torch's split rounds up: 3 and 2 rows
    assert [p.shape for p in parts] == [(3, 4), (2, 4)]
    assert np.array_equal(joined(parts, "shard", 0).array, whole)
    columns = sliced(NamedArray("w", whole), "shard", 1, [2, 2])
    assert np.array_equal(joined(columns, "shard", 1).array, whole) and columns[1].array.flags.c_contiguous
    assert whole_shape([(3, 4), (2, 4)], "shard", 0) == (5, 4) and whole_shape([(5, 4)] * 2, "replicate", 0) == (5, 4)
    assert [p.array is whole for p in sliced(NamedArray("w", whole), "replicate", 0, [0, 0])] == [True, True]


def test_a_tensor_that_does_not_fit_the_other_sides_slices_is_named():
    with pytest.raises(MsparityError, match="'fc1.weight' of shape \\[6, 4\\] cannot be split along dim 0"):
        sliced(NamedArray("fc1.weight", np.zeros((6, 4), np.float32)), "shard", 0, [4, 4])
    with pytest.raises(MsparityError, match="different tensors"):
        joined([NamedArray("a", np.zeros(2, np.float32)), NamedArray("b", np.zeros(2, np.float32))], "shard", 0)


def test_placements_parse_and_bad_ones_say_what_to_write():
    assert parse_placements({"w": "shard(1)", "b": "replicate"}, ["w", "b"]) == {"w": ("shard", 1),
                                                                                  "b": ("replicate", 0)}
    assert parse_placements(None, ["w"]) == {}
    with pytest.raises(MsparityError, match="tensors the net does not have: x"):
        parse_placements({"x": "shard(0)"}, ["w"])
    with pytest.raises(MsparityError, match="write 'replicate' or 'shard\\(DIM\\)'"):
        parse_placements({"w": "split(0)"}, ["w"])


def test_each_rank_listens_on_its_own_port():
    assert rank_listen("127.0.0.1:0", 3) == "127.0.0.1:0" and rank_listen("0.0.0.0:50051", 2) == "0.0.0.0:50053"
    assert published("127.0.0.1:5") == "127.0.0.1:5" and not published("0.0.0.0:5").startswith("0.0.0.0")


def test_calls_run_in_sequence_order_whatever_order_they_arrive_in():
    gate, ran = SequenceGate(0, 2, timeout=5), []

    def call(number: int, delay: float) -> None:
        time.sleep(delay)
        turn = gate.wait_turn("s", str(number), "Forward")
        ran.append(number)
        gate.done("s", turn)

    threads = [threading.Thread(target=call, args=(n, d)) for n, d in ((2, 0.0), (0, 0.2), (1, 0.1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ran == [0, 1, 2]
    with pytest.raises(FailedPrecondition, match="ran already"):
        gate.wait_turn("s", "1", "Forward")
    gate.end("s")  # a new session of the same coordinator starts again at 0
    gate.done("s", gate.wait_turn("s", "0", "Forward"))
    with pytest.raises(FailedPrecondition, match="msparity-seq"):
        gate.wait_turn("s", None, "Forward")
    lost = SequenceGate(1, 2, timeout=0.2)
    lost.done("t", lost.wait_turn("t", "0", "Forward"))
    with pytest.raises(FailedPrecondition, match="rank 1 of 2: Forward call #2 waited 0.2 s for call #1"):
        lost.wait_turn("t", "2", "Forward")  # call #1 never reached this rank


def test_a_replicated_tensor_that_differs_between_ranks_is_named():
    same = [NamedArray("norm.weight", np.ones(4, np.float32)) for _ in range(2)]
    assert joined(same, "replicate", 0) is same[0]
    counts = [NamedArray("steps", np.arange(3)) for _ in range(2)]
    assert joined(counts, "", 0) is counts[0]
    apart = [same[0], NamedArray("norm.weight", np.full(4, 2.0, np.float32))]
    with pytest.raises(MsparityError, match="'norm.weight' should be the same on every rank .* rank 1's differs"):
        joined(apart, "", 0)
