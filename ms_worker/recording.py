"""Locate on the MindSpore side: hook every cell for one forward (PyNative; hooks do not run in Graph mode).

No float64 reference here: MindSpore's CPU Conv2d has no float64 kernel, so the torch worker's
float64 run is the reference both sides are judged against.
"""

from __future__ import annotations

from collections.abc import Sequence

import mindspore as ms

from ms_worker import tensors
from proto.codec import NamedArray
from proto.errors import BadRequest, NotFound
from proto.worker.call_recorder import BaseRecorder, CallRecorder, module_attributes, replay_args
from proto.worker.interface import RecordOptions, RecordResult
from proto.worker.net_io import NET_ERRORS

NO_REFERENCE = "MindSpore runs no float64 reference (its CPU Conv2d has no float64 kernel)"


def _own_names(cell: ms.nn.Cell, param_name) -> list[str]:
    return [param_name(param) for _, param in cell.parameters_and_names(expand=False)]


class MindSporeRecorder(BaseRecorder):
    """Recorded forward of one MindSpore net ("f32") and replays of its cells."""

    def __init__(self, net: ms.nn.Cell, rule_type, param_name=None):
        super().__init__(net, rule_type)
        self.param_name = param_name or (lambda param: param.name)

    def record(self, inputs: Sequence[NamedArray], options: RecordOptions) -> RecordResult:
        """Run the net once in PyNative mode with every cell hooked; keep the tensors (no float64 run here)."""
        recorder = CallRecorder(tensors.numpy_from_native, tensors.is_native_tensor, options.sketch_size,
                                options.sketch_seed)
        handles = []
        for path, cell in self.net.cells_and_names():
            handles.append(cell.register_forward_pre_hook(
                lambda c, a, kw, p=path: recorder.pre(p, a, kw), with_kwargs=True))
            handles.append(cell.register_forward_hook(
                lambda c, a, kw, out, p=path, names=_own_names(cell, self.param_name), attrs=module_attributes(cell):
                recorder.post(p, type(c).__name__, self.rule_type(c), names, out, attrs), with_kwargs=True))
        mode = ms.get_context("mode")
        self.net.set_train(False)
        try:
            if mode != ms.PYNATIVE_MODE:
                ms.set_context(mode=ms.PYNATIVE_MODE)
            self.net(*[tensors.native_from_numpy(x) for x in inputs])
        except NET_ERRORS as exc:
            raise BadRequest(f"recorded forward failed: {type(exc).__name__}: {exc}") from exc
        finally:
            for handle in handles:
                handle.remove()
            if mode != ms.PYNATIVE_MODE:
                ms.set_context(mode=mode)
        self.runs = {"f32": recorder.run}
        return RecordResult(tuple(recorder.run.calls), (), NO_REFERENCE)

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray]) -> list[NamedArray]:
        """Run one cell on the tensors given, with its recorded non-tensor arguments, in eval mode."""
        if float64:
            raise BadRequest(NO_REFERENCE)
        cells = dict(self.net.cells_and_names())
        if path not in cells:
            raise NotFound(f"the MindSpore net has no cell {path!r}")
        key = f"{path}#{call}"
        cell = cells[path]
        cell.set_train(False)
        args, kwargs = replay_args(self.runs, "f32", key, [tensors.native_from_numpy(x) for x in inputs])
        try:
            result = cell(*args, **kwargs)
            recorder = CallRecorder(tensors.numpy_from_native, tensors.is_native_tensor, 0, 0)
            return recorder.arrays(key, "out", result)
        except NET_ERRORS as exc:
            raise BadRequest(f"replaying {key} failed: {type(exc).__name__}: {exc}") from exc
