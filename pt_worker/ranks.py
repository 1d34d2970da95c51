"""The pt worker as one rank of a torchrun job: torch.distributed's process group (gloo on CPU, nccl for CUDA
devices), and the address swap over it; the placements torch's tensor parallelism gives parameters (DTensors)
and activations (a plan, ``activations_for_tp_plan``).

``parallelize_module`` hands plain local tensors from module to module, so nothing in the net tells locate that
a column-parallel projection's output is only this rank's slice of the last dim, or that a row-parallel one was
given a slice. The plan says so (torch's, or the one HuggingFace ships as ``config.base_model_tp_plan``), and
``activations_for_tp_plan`` turns it into the factory's "activations" (proto/worker/activation_layout.py)::

    plan = net.config.base_model_tp_plan        # {"layers.*.self_attn.q_proj": "colwise", ...}
    net = parallelize_module(net, mesh, ...)
    activations = activations_for_tp_plan(net, plan, inputs=example_inputs)

A declaration places what the recording sees: a module's inputs after the style's own input hook (a row-parallel
Linear always computes on a slice of its last dim, even when it was handed the whole tensor), its outputs after
its output hook. Modules between a column- and a row-parallel layer (a Llama MLP's ``act_fn``) are in no plan
but see slices too. Given the example ``inputs``, one traced forward (no gradients; every rank runs it, as every
rank builds the net) finds them by identity: a module whose every tensor input is exactly a declared slice (the
same tensor object, not a copy or a view of it) gets its inputs declared, and when its outputs keep that shape
(an activation function, a dropout), its outputs too, and the slices follow on. Anything else stays undeclared,
and locate refuses it by name; ``extra`` declares such modules by hand (patterns too; it wins over what was
derived), e.g. HuggingFace's eager attention, which returns its whole output and this rank's heads of its
weights: ``extra={"layers.*.self_attn": {"outputs": ["replicate", "shard(1)"]}}``.
"""

from __future__ import annotations

import datetime
import fnmatch
import functools
import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from proto.worker.rank_job import RankJoin

COLLECTIVE_TIMEOUT_ENV = "MSPARITY_COLLECTIVE_TIMEOUT_S"


def join_ranks(args) -> RankJoin | None:
    """Join the torchrun job this process was started in (WORLD_SIZE > 1); None for one process."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():  # a factory may have joined itself; the worker joins before building the net
        backend = "cpu:gloo,cuda:nccl" if (args.device or "").startswith("cuda") else "gloo"
        timeout = float(os.environ.get(COLLECTIVE_TIMEOUT_ENV, "600"))
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))

    def gather(data: bytes) -> list[bytes]:
        size = 512
        if len(data) > size:
            raise ValueError(f"an address of {len(data)} bytes: at most {size}")
        mine = torch.zeros(size, dtype=torch.uint8)
        mine[: len(data)] = torch.tensor(list(data), dtype=torch.uint8)
        every = [torch.zeros(size, dtype=torch.uint8) for _ in range(dist.get_world_size())]
        dist.all_gather(every, mine)
        return [bytes(item.numpy()).rstrip(b"\0") for item in every]

    def all_gather_int32(mine):
        rows = [torch.zeros(len(mine), dtype=torch.int32) for _ in range(dist.get_world_size())]
        dist.all_gather(rows, torch.from_numpy(mine))
        return torch.stack(rows).numpy()

    return RankJoin(dist.get_rank(), dist.get_world_size(), "torchrun", gather, all_gather_int32=all_gather_int32)


@functools.cache
def _dtensor_type():
    """torch's DTensor class (None on a torch without it), looked up once: _state asks for every entry."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without DTensor
        return None
    return DTensor


def local_tensor(value):
    """This rank's slice of a DTensor (a view: writing it writes the DTensor); anything else as it is."""
    dtensor = _dtensor_type()
    return value.to_local() if dtensor is not None and isinstance(value, dtensor) else value


def dtensor_placements(state: dict) -> dict[str, tuple[str, int]]:
    """Each DTensor entry's placement over a 1-D mesh of every rank in order: Shard(d) or Replicate."""
    dtensor = _dtensor_type()
    found = {}
    for name, value in state.items():
        if dtensor is None or not isinstance(value, dtensor):
            continue
        mesh, placements = value.device_mesh, value.placements
        ranks = mesh.mesh.flatten().tolist()
        if mesh.ndim != 1 or ranks != list(range(len(ranks))):
            raise ValueError(f"{name}: a DTensor on a {mesh.ndim}-D mesh of ranks {ranks}: msparity joins tensors "
                             "split over one mesh dimension of every rank in order")
        placement = placements[0]
        if placement.is_shard():
            found[name] = ("shard", placement.dim % max(value.ndim, 1))
        elif placement.is_replicate():
            found[name] = ("replicate", 0)
        else:
            raise ValueError(f"{name}: a DTensor holding partial sums ({placement}); msparity reads whole or split "
                             "tensors")
    return found

# HuggingFace's names for the styles whose hooks work as torch's do (transformers.integrations.tensor_parallel.
# ParallelInterface), as the (inputs, outputs) the recording sees; a row-parallel Embedding's inputs are whole ids.
# Its other names (sequence_parallel, gather, local_*, ...) differ from torch's styles of the same idea: extra=.
HF_STYLES = {
    "colwise": ("replicate", "shard(-1)"),           # ColwiseParallel()
    "colwise_rep": ("replicate", "replicate"),       # ColwiseParallel(output_layouts=Replicate())
    "rowwise": ("shard(-1)", "replicate"),           # RowwiseParallel()
    "rowwise_rep": ("shard(-1)", "replicate"),       # RowwiseParallel(input_layouts=Replicate()): sliced by its hook
    "replicate": ("replicate", "replicate"),
}
Declaration = dict[str, str]  # {"inputs": spec, "outputs": spec}, replicated sides left out


def activations_for_tp_plan(model: nn.Module, plan: Mapping[str, object], *, prefix: str = "",
                            inputs: Sequence | None = None,
                            extra: Mapping[str, object] | None = None) -> dict[str, Declaration]:
    """The ``"activations"`` of a net split by ``plan``: {module path: {"inputs": ..., "outputs": ...}}.

    ``plan`` maps module paths or patterns (``*`` matches one dotted component, as in torch's and HuggingFace's
    plans: ``"layers.*.mlp.down_proj"``) to a HuggingFace style name (``"colwise"``, ``"rowwise"``,
    ``"colwise_rep"``, ...) or a torch ``ColwiseParallel`` / ``RowwiseParallel`` / ``SequenceParallel``, whose
    ``input_layouts`` / ``output_layouts`` are honoured (``ColwiseParallel(output_layouts=Replicate())``: a whole
    output). ``prefix`` is where the plan's paths start in ``model`` (``"model"`` for HuggingFace's base plan on
    a ``LlamaForCausalLM``). With ``inputs`` (the factory's example inputs), the modules fed only declared slices
    are found by one traced forward (see the module docstring). ``extra`` adds or overrides declarations by hand.
    A pattern that matches no module, or a style it cannot read, is an error."""
    paths = {path: module for path, module in model.named_modules()}
    declared: dict[str, Declaration] = {}
    for pattern, style in plan.items():
        full = f"{prefix}.{pattern}" if prefix else pattern
        matched = [path for path in paths if _matches(full, path)]
        if not matched:
            raise ValueError(f"the tensor-parallel plan's {full!r} matches no module of the "
                             f"{type(model).__name__} (its modules: {', '.join(list(paths)[1:6])}, ...)")
        for path in matched:
            declared[path] = _declaration(*_style_specs(style, paths[path], full))
    declared = {path: sides for path, sides in declared.items() if sides}
    if inputs is not None:
        declared.update(_fed_by_slices(model, inputs, declared))
    for pattern, value in (extra or {}).items():
        matched = [path for path in paths if _matches(pattern, path)]
        if not matched:
            raise ValueError(f"extra's {pattern!r} matches no module of the {type(model).__name__}")
        for path in matched:
            declared[path] = dict(value) if isinstance(value, Mapping) else {"outputs": value}
    return declared


def _matches(pattern: str, path: str) -> bool:
    """torch's parallelize_module rule: the same number of dotted components, each matching by fnmatch."""
    atoms, names = pattern.split("."), path.split(".")
    return len(atoms) == len(names) and all(fnmatch.fnmatchcase(n, a) for a, n in zip(atoms, names))


def _declaration(inputs: str, outputs: str) -> Declaration:
    return {side: spec for side, spec in (("inputs", inputs), ("outputs", outputs)) if spec != "replicate"}


def _style_specs(style, module: nn.Module, where: str) -> tuple[str, str]:
    """(inputs, outputs) of one module under one style, as the recording sees them."""
    if isinstance(style, str):
        if style not in HF_STYLES:
            raise ValueError(f"the tensor-parallel plan gives {where!r} the style {style!r}; known: "
                             f"{', '.join(HF_STYLES)} (or a torch ParallelStyle); declare others with extra=")
        ins, outs = HF_STYLES[style]
        return ("replicate" if style.startswith("rowwise") and isinstance(module, nn.Embedding) else ins), outs
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, SequenceParallel

    if isinstance(style, ColwiseParallel):  # computes on the whole input: desired_input_layouts is Replicate
        return "replicate", _spec(style.output_layouts[0], where)
    if isinstance(style, RowwiseParallel):  # a Linear computes on a slice of the last dim, an Embedding on all ids
        return ("replicate" if isinstance(module, nn.Embedding) else "shard(-1)"), _spec(style.output_layouts[0],
                                                                                         where)
    if isinstance(style, SequenceParallel):
        spec = _spec(style.sequence_sharding[0], where)
        return spec, spec
    raise ValueError(f"the tensor-parallel plan gives {where!r} a {type(style).__name__}: only ColwiseParallel, "
                     "RowwiseParallel and SequenceParallel are read; declare its activations with extra=")


def _spec(placement, where: str) -> str:
    """A DTensor placement as an activation spec: Shard(d) -> shard(d), Replicate, Partial."""
    if placement.is_shard():
        return f"shard({placement.dim})"
    if placement.is_replicate():
        return "replicate"
    if placement.is_partial():
        return "partial"
    raise ValueError(f"the tensor-parallel plan places {where!r} as {placement}: not a Shard, Replicate or Partial")


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def _fed_by_slices(model: nn.Module, inputs: Sequence, declared: Mapping[str, Declaration]) -> dict[str, Declaration]:
    """The modules outside ``declared`` whose every tensor input is a declared slice, found in one forward."""
    slices: dict[int, tuple[torch.Tensor, str]] = {}  # id -> (the tensor, kept alive so no id is reused; its spec)
    found: dict[str, Declaration] = {}

    def hook(path, module, args, kwargs, output):
        outputs = _tensors(output)
        if path in declared:
            spec = declared[path].get("outputs")
            if isinstance(spec, str) and spec.startswith("shard"):
                slices.update((id(t), (t, spec)) for t in outputs)
            return
        given = _tensors((args, kwargs))
        specs = {slices[id(t)][1] for t in given if id(t) in slices and slices[id(t)][0] is t}
        if not given or len(specs) != 1 or not all(id(t) in slices for t in given):
            return
        spec = specs.pop()
        if outputs and all(t.shape == given[0].shape for t in outputs):  # elementwise: the slice goes on
            found[path] = {"inputs": spec, "outputs": spec}
            slices.update((id(t), (t, spec)) for t in outputs)
        else:
            found[path] = {"inputs": spec}

    handles = [module.register_forward_hook(lambda m, a, kw, out, p=path: hook(p, m, a, kw, out), with_kwargs=True)
               for path, module in model.named_modules()]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    return found
