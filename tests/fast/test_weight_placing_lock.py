"""Weights placed straight into a worker's parameters are written with the worker's lock held, over real gRPC:
the lock is let go only while the next chunk is on its way, so no other call sees a tensor half written."""

from __future__ import annotations

import numpy as np

from coordinator.client import WorkerClient
from proto import transport
from proto.codec import NamedArray
from proto.worker import serve
from tests.fast.numpy_worker import FakeAdapter


class PlacingAdapter(FakeAdapter):
    """A fake worker whose parameters take streamed bytes in place (as a CPU MindSpore worker's do)."""

    lock = None
    lock_held: list[bool] = []

    def _writable_view(self, target: np.ndarray):
        self.lock_held.append(self.lock.locked())
        return target


def test_placed_weights_land_in_place_with_the_lock_held():
    adapter = PlacingAdapter("mindspore")
    adapter.lock_held = []
    server, registered, address = serve._bind(adapter, "ms", "127.0.0.1:0", transport.Security(), None)
    adapter.lock = registered._lock
    server.start()
    try:
        params = adapter._state()
        before = {name: value.ctypes.data for name, value in params.items()}
        sent = [NamedArray(name, np.full(value.shape, 0.25, value.dtype)) for name, value in params.items()]
        with WorkerClient(address, "ms") as client:
            assert client.set_weights(sent, strict=True).loaded == len(sent)
        assert adapter.lock_held == [True] * len(sent)
        for name, value in adapter._state().items():
            assert value.ctypes.data == before[name]  # the same memory, written, not replaced
            np.testing.assert_array_equal(value, np.full(value.shape, 0.25, value.dtype))
    finally:
        server.stop(grace=None).wait()
