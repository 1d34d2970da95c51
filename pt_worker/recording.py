"""Locate on the torch side: hook every module for one forward, plus a float64 copy of the net as reference.

The float64 run gives the noise floor (float32 torch vs float64 torch) every module is judged
against. It costs a float64 copy of the net while a locate session lasts.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence

import torch

from proto.codec import NamedArray
from proto.errors import BadRequest, NotFound
from proto.worker.call_recorder import (
    BaseRecorder,
    CallRecorder,
    RecordedRun,
    backward_run,
    by_backward_key,
    forward_key_of,
    module_attributes,
    replay_args,
)
from proto.worker.interface import RecordOptions, RecordResult
from proto.worker.net_io import NET_ERRORS, flatten_outputs
from pt_worker import tensors


def _copied(name: str, value: torch.Tensor) -> NamedArray:
    named = tensors.numpy_from_native(name, value)
    return NamedArray(name, named.array.copy(), named.dtype)  # in-place ops later in the forward must not reach it


def _identity(value: torch.Tensor):
    """The same tensor object with unchanged contents: its version counter moves with every in-place op."""
    return weakref.ref(value), value._version, value.data_ptr(), tuple(value.shape), value.stride(), value.dtype


def _own_names(path: str, module: torch.nn.Module) -> list[str]:
    prefix = f"{path}." if path else ""
    return [prefix + n for n, _ in module.named_parameters(recurse=False)] + \
        [prefix + n for n, _ in module.named_buffers(recurse=False)]


class TorchRecorder(BaseRecorder):
    """Recorded forwards of one torch net ("f32": as it is; "f64": a float64 copy) and replays of its modules."""

    def __init__(self, net: torch.nn.Module, device: torch.device, rule_type):
        super().__init__(net, rule_type)
        self.device = device
        self.reference: torch.nn.Module | None = None

    def _record(self, net: torch.nn.Module, args: list, sketch_size: int, seed: int) -> RecordedRun:
        recorder = CallRecorder(_copied, tensors.is_native_tensor, sketch_size, seed, _identity)
        handles = []
        for path, module in net.named_modules():
            handles.append(module.register_forward_pre_hook(
                lambda m, a, kw, p=path: recorder.pre(p, a, kw), with_kwargs=True))
            handles.append(module.register_forward_hook(
                lambda m, a, kw, out, p=path, names=_own_names(path, module), attrs=module_attributes(module):
                recorder.post(p, type(m).__name__, self.rule_type(m), names, out, attrs), with_kwargs=True))
        net.eval()
        try:
            with torch.no_grad():
                net(*args)
        except NET_ERRORS as exc:
            raise BadRequest(f"recorded forward failed: {type(exc).__name__}: {exc}") from exc
        finally:
            for handle in handles:
                handle.remove()
        return recorder.run

    def _record_backward(self, net: torch.nn.Module, args: list, loss_of, sketch_size: int, seed: int) -> RecordedRun:
        """One forward and backward in eval mode with every module's gradients caught by tensor hooks: a call's
        inputs are the gradients wrt its outputs (what flows in from the loss), its outputs the gradients wrt its
        inputs (what it passes on), in backward order. Each module gets its own view of its inputs and returns a
        view of its outputs, so a hook sees that module's share of a gradient, and in-place ops after it (timm's
        ``x += shortcut``) stay allowed, which torch's full backward hooks refuse."""
        grads: dict[str, dict] = {}  # key -> {"path", "type", "rule", "names", "attrs", "n_out", "out", "in"}
        order: list[tuple[str, str]] = []  # (key, "out" | "in") in the order the gradients arrive
        calls: dict[str, int] = {}
        open_keys: dict[int, list[str]] = {}  # id(module) -> keys of its calls in progress
        forward = CallRecorder(_copied, tensors.is_native_tensor, 0, 0, _identity)  # its inputs, for a replay
        handles = []

        def caught(key: str, side: str, index: int):
            def hook(grad):
                slot = grads[key][side]
                if not slot:
                    order.append((key, side))
                slot[index] = grad.detach().clone()
            return hook

        def pre(module, args_in, kwargs, path):
            forward.pre(path, args_in, kwargs)
            call = calls.get(path, 0)
            calls[path] = call + 1
            key = f"{path}#{call}"
            grads[key] = {"path": path, "type": type(module).__name__, "rule": self.rule_type(module),
                          "names": _own_names(path, module), "attrs": module_attributes(module), "out": {}, "in": {}}
            open_keys.setdefault(id(module), []).append(key)
            index = 0
            rebuilt = []
            for value in args_in:
                if isinstance(value, torch.Tensor) and value.requires_grad:
                    value = value.view_as(value)
                    value.register_hook(caught(key, "in", index))
                    index += 1
                rebuilt.append(value)
            return tuple(rebuilt), kwargs

        def post(module, args_in, kwargs, output):
            key = open_keys[id(module)].pop()
            forward.post(grads[key]["path"], grads[key]["type"], grads[key]["rule"], grads[key]["names"], output)
            leaves = [v for _, v in flatten_outputs(output, tensors.is_native_tensor)]
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output = output.view_as(output)
                leaves = [output]
            for index, value in enumerate(v for v in leaves if isinstance(v, torch.Tensor) and v.requires_grad):
                value.register_hook(caught(key, "out", index))
            return output

        for path, module in net.named_modules():
            handles.append(module.register_forward_pre_hook(lambda m, a, kw, p=path: pre(m, a, kw, p),
                                                            with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
        net.eval()
        args = [a.detach().requires_grad_(True) * 1 if a.is_floating_point() else a for a in args]
        try:
            loss_of(net(*args)).backward()
        except NET_ERRORS as exc:
            raise BadRequest(f"recorded backward failed: {type(exc).__name__}: {exc}") from exc
        finally:
            for handle in handles:
                handle.remove()
            net.zero_grad(set_to_none=True)
        run = backward_run(grads, order, CallRecorder(_copied, tensors.is_native_tensor, sketch_size, seed))
        run.forward = forward.run
        return run

    def record_backward(self, inputs: Sequence[NamedArray], loss_of, options: RecordOptions) -> RecordResult:
        """Backward locate's recording (and the float64 copy's, when asked): see _record_backward."""
        args = [tensors.native_from_numpy(x, self.device) for x in inputs]
        self.runs = {"f32": self._record_backward(self.net, args, loss_of, options.sketch_size, options.sketch_seed)}
        self.runs["f32:forward"] = by_backward_key(self.runs["f32"].forward)  # what a backward isolate sends
        calls = tuple(self.runs["f32"].calls)
        self.reference = None
        if not options.float64_reference:
            return RecordResult(calls, (), "skipped, as asked (no-reference)")
        try:
            reference = copy.deepcopy(self.net).double()
            args64 = [a.double() if a.is_floating_point() else a for a in args]
            self.runs["f64"] = self._record_backward(reference, args64, loss_of, options.sketch_size,
                                                     options.sketch_seed)
            self.reference = reference
        except (BadRequest, RuntimeError, TypeError, ValueError, copy.Error) as exc:
            self.runs.pop("f64", None)
            return RecordResult(calls, (), f"the float64 copy of the torch net did not run its backward: {exc}")
        return RecordResult(calls, tuple(self.runs["f64"].calls))

    def record(self, inputs: Sequence[NamedArray], options: RecordOptions) -> RecordResult:
        """Run the net once with every module hooked (and its float64 copy when asked); keep the tensors."""
        args = [tensors.native_from_numpy(x, self.device) for x in inputs]
        self.runs = {"f32": self._record(self.net, args, options.sketch_size, options.sketch_seed)}
        calls = tuple(self.runs["f32"].calls)
        self.reference = None
        if not options.float64_reference:
            return RecordResult(calls, (), "skipped, as asked (no-reference)")
        try:
            self.reference = copy.deepcopy(self.net).double()
            args64 = [a.double() if a.is_floating_point() else a for a in args]
            self.runs["f64"] = self._record(self.reference, args64, options.sketch_size, options.sketch_seed)
        except (BadRequest, RuntimeError, TypeError, ValueError, copy.Error) as exc:
            # e.g. a forward that builds float32 tensors itself: judge without a floor rather than fail
            self.reference = None
            self.runs.pop("f64", None)
            return RecordResult(calls, (), f"the float64 copy of the torch net did not run: {exc}")
        return RecordResult(calls, tuple(self.runs["f64"].calls))

    def run_module_backward(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray],
                            grads: Sequence[NamedArray]) -> list[NamedArray]:
        """Replay one call of a backward Record: the module on these forward inputs (its recorded non-tensor
        arguments kept), then its backward from these gradients wrt its outputs; the gradients wrt its inputs."""
        net, run = (self.reference, "f64") if float64 else (self.net, "f32")
        if net is None or run not in self.runs or self.runs[run].forward is None:
            raise NotFound(f"no backward record to replay ({run}): run locate --backward first")
        try:
            module = net.get_submodule(path)
        except AttributeError:
            raise NotFound(f"the torch net has no module {path!r}") from None
        forward_key = forward_key_of(self.runs[run].forward, path, call)
        dtype = torch.float64 if float64 else None
        args = [tensors.native_from_numpy(x, self.device) for x in inputs]
        args = [a.to(dtype) if dtype and a.is_floating_point() else a for a in args]
        args = [a.detach().requires_grad_(True) if a.is_floating_point() else a for a in args]
        module.eval()
        try:
            replay, kwargs = replay_args({run: self.runs[run].forward}, run, forward_key, args)
            result = module(*replay, **kwargs)
            leaves = [v for _, v in flatten_outputs(result, tensors.is_native_tensor)
                      if isinstance(v, torch.Tensor) and v.requires_grad]
            goals = [tensors.native_from_numpy(g, self.device) for g in grads]
            goals = [g.to(leaf.dtype) for g, leaf in zip(goals, leaves)]
            torch.autograd.backward(leaves[:len(goals)], goals)
        except NET_ERRORS as exc:
            raise BadRequest(f"replaying the backward of {path}#{call} failed: {type(exc).__name__}: {exc}") from exc
        passed = tuple(a.grad for a in args if isinstance(a, torch.Tensor) and a.grad is not None)
        return CallRecorder(_copied, tensors.is_native_tensor, 0, 0).arrays(f"{path}#{call}", "out", passed)

    def run_module(self, path: str, call: int, float64: bool, inputs: Sequence[NamedArray]) -> list[NamedArray]:
        """Run one module on the tensors given, with its recorded non-tensor arguments; no grad, eval mode."""
        net, run = (self.reference, "f64") if float64 else (self.net, "f32")
        if net is None:
            raise NotFound("no float64 copy of the net: record with a float64 reference first")
        try:
            module = net.get_submodule(path)
        except AttributeError:
            raise NotFound(f"the torch net has no module {path!r}") from None
        args = [tensors.native_from_numpy(x, self.device) for x in inputs]
        if float64:
            args = [a.double() if a.is_floating_point() else a for a in args]
        key = f"{path}#{call}"
        module.eval()
        try:
            with torch.no_grad():
                replay, kwargs = replay_args(self.runs, run, key, args)
                result = module(*replay, **kwargs)
        except NET_ERRORS as exc:
            raise BadRequest(f"replaying {key} failed: {type(exc).__name__}: {exc}") from exc
        recorder = CallRecorder(_copied, tensors.is_native_tensor, 0, 0)
        return recorder.arrays(key, "out", result)


