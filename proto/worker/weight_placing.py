"""Streamed weights written straight into the parameters' memory, where a worker can write into it.

On a CPU worker a parameter's numpy view is its own memory (MindSpore's ``asnumpy()`` on CPU, torch's
``numpy()``), so a streamed tensor can arrive there: no buffer of its own, no copy into the net afterwards, the
model held once. Only a tensor the net takes as it is qualifies (same name once mapped, dtype and shape); any
other goes through a buffer and the adapter's assign as before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from proto.tensor_pb2 import TensorHeader


class WeightPlacer:
    """A ``place`` for proto.codec.decode over one SetWeights / PullWeights call, and what it handed out."""

    def __init__(self, specs: dict, views: Callable[[str], np.ndarray | None],
                 target_of: Callable[[str], str | None] = lambda name: name):
        """specs: the net's ParameterSpec by name; views(name): the parameter's writable view or None;
        target_of: the parameter a streamed name sets unchanged (None: none does)."""
        self.specs, self._views, self._target_of = specs, views, target_of
        self._placed: dict[str, int] = {}  # parameter name -> the address its bytes were written to

    @property
    def touched(self) -> bool:
        """Whether any parameter's memory was handed out (a failed stream may have left it half written)."""
        return bool(self._placed)

    def place(self, header: TensorHeader) -> np.ndarray | None:
        """The bytes of the parameter the tensor of this header sets unchanged, or None."""
        name = self._target_of(header.name)
        spec = self.specs.get(name) if name is not None else None
        if spec is None or spec.dtype != header.dtype or tuple(spec.shape) != tuple(header.shape):
            return None
        view = self._views(name)
        if view is None or not (view.flags.c_contiguous and view.flags.writeable) or view.nbytes != header.nbytes:
            return None
        flat = view.reshape(-1).view(np.uint8)
        self._placed[name] = flat.ctypes.data
        return flat

    def holds(self, name: str, array: np.ndarray) -> bool:
        """Whether array is parameter name's own memory, written by the stream: nothing left to assign."""
        return array.size > 0 and self._placed.get(name) == array.ctypes.data
