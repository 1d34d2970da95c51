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
from proto.worker.call_recorder import (
    BaseRecorder,
    CallRecorder,
    backward_run,
    forward_key_of,
    module_attributes,
    replay_args,
)
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
        self._run_hooked(handles, "forward", lambda: self.net(*[tensors.native_from_numpy(x) for x in inputs]))
        self.runs = {"f32": recorder.run}
        return RecordResult(tuple(recorder.run.calls), (), NO_REFERENCE)

    def _run_hooked(self, handles: list, what: str, body) -> None:
        """Run body with the hooks on, in eval mode and PyNative (hooks do not run in Graph mode); unhook after."""
        mode = ms.get_context("mode")
        self.net.set_train(False)
        try:
            if mode != ms.PYNATIVE_MODE:
                ms.set_context(mode=ms.PYNATIVE_MODE)
            body()
        except NET_ERRORS as exc:
            raise BadRequest(f"recorded {what} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            for handle in handles:
                handle.remove()
            if mode != ms.PYNATIVE_MODE:
                ms.set_context(mode=mode)

    def record_backward(self, inputs: Sequence[NamedArray], loss_of, options: RecordOptions) -> RecordResult:
        """One forward and backward in eval mode (PyNative), every cell's backward hooked: a call's inputs are the
        gradients wrt its outputs, its outputs the gradients wrt its inputs (Cell.register_backward_hook; the pre
        hook, when it fires, says when the gradient reached the cell: a cell returning a structure may skip it)."""
        grads: dict[str, dict] = {}
        order: list[tuple[str, str]] = []
        calls: dict[str, int] = {}
        open_keys: dict[str, list[str]] = {}

        def begin(cell, path: str, grad_output) -> str:
            call = calls.get(path, 0)
            calls[path] = call + 1
            key = f"{path}#{call}"
            grads[key] = {"path": path, "type": type(cell).__name__, "rule": self.rule_type(cell),
                          "names": _own_names(cell, self.param_name), "attrs": module_attributes(cell),
                          "out": _indexed(grad_output), "in": {}}
            order.append((key, "out"))
            open_keys.setdefault(path, []).append(key)
            return key

        def end(cell, path: str, grad_input, grad_output) -> None:
            if not open_keys.get(path):  # its pre hook did not fire: the gradient reached it just now
                begin(cell, path, grad_output)
            key = open_keys[path].pop()
            grads[key]["in"] = _indexed(grad_input)
            if grads[key]["in"]:
                order.append((key, "in"))

        forward = CallRecorder(tensors.numpy_from_native, tensors.is_native_tensor, 0, 0)  # inputs, for a replay
        handles = []
        for path, cell in self.net.cells_and_names():
            handles.append(cell.register_forward_pre_hook(
                lambda c, a, kw, p=path: forward.pre(p, a, kw), with_kwargs=True))
            handles.append(cell.register_forward_hook(
                lambda c, a, kw, out, p=path: forward.post(p, type(c).__name__, "", (), out), with_kwargs=True))
            handles.append(cell.register_backward_pre_hook(lambda c, gout, p=path: begin(c, p, gout) and None))  # None: keep the gradient
            handles.append(cell.register_backward_hook(lambda c, gin, gout, p=path: end(c, p, gin, gout)))
        args = [tensors.native_from_numpy(x) for x in inputs]
        # the gradient wrt the float inputs too: the first cells' hooks then see what they pass on
        floats = tuple(i for i, a in enumerate(args) if ms.ops.is_floating_point(a))
        self._run_hooked(handles, "backward", lambda: ms.grad(lambda *xs: loss_of(self.net(*xs)), floats or None,
                                                               self.net.trainable_params())(*args))
        run = backward_run(grads, order, CallRecorder(tensors.numpy_from_native, tensors.is_native_tensor,
                                                      options.sketch_size, options.sketch_seed))
        run.forward = forward.run
        self.runs = {"f32": run}
        return RecordResult(tuple(run.calls), (), NO_REFERENCE)

    def run_module_backward(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray],
                            grads: Sequence[NamedArray]) -> list[NamedArray]:
        """Replay one call of a backward Record: the cell on these forward inputs, then its backward (ms.vjp) from
        these gradients wrt its outputs; the gradients wrt its float inputs."""
        if float64:
            raise BadRequest(NO_REFERENCE)
        recorded = self.runs.get("f32")
        if recorded is None or recorded.forward is None:
            raise NotFound("no backward record to replay: run locate --backward first")
        cells = dict(self.net.cells_and_names())
        if path not in cells:
            raise NotFound(f"the MindSpore net has no cell {path!r}")
        cell = cells[path]
        # a cell with its own bprop runs no forward hooks: replay it on the tensors alone, positionally
        key = forward_key_of(recorded.forward, path, call) if any(c.path == path for c in recorded.forward.calls) \
            else None
        cell.set_train(False)
        args = [tensors.native_from_numpy(x) for x in inputs]
        floats = [i for i, a in enumerate(args) if ms.ops.is_floating_point(a)]

        def run(*values):
            full = list(args)
            for i, value in zip(floats, values):
                full[i] = value
            if key is None:
                return cell(*full)
            replay, kwargs = replay_args({"f32": recorded.forward}, "f32", key, full)
            return cell(*replay, **kwargs)

        try:
            outputs, vjp = ms.vjp(run, *[args[i] for i in floats])
            sens = [tensors.native_from_numpy(g) for g in grads]
            passed = vjp(sens[0] if isinstance(outputs, ms.Tensor) else tuple(sens))
            recorder = CallRecorder(tensors.numpy_from_native, tensors.is_native_tensor, 0, 0)
            return recorder.arrays(f"{path}#{call}", "out", passed)
        except NET_ERRORS as exc:
            raise BadRequest(f"replaying the backward of {path}#{call} failed: {type(exc).__name__}: {exc}") from exc

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


def _indexed(grads) -> dict[int, object]:
    """A hook's gradients (a tuple, possibly holding None) by position, tensors only."""
    values = grads if isinstance(grads, (tuple, list)) else (grads,)
    return {i: g for i, g in enumerate(g for g in values if tensors.is_native_tensor(g))}
