"""Whole activations from the slices ranks hold: a factory's ``"activations"`` declaration, applied to a recording.

In a tensor-parallel net a module's output may lie over the ranks as its weights do: a column-parallel layer's
output is split along its last dim, a row-parallel product before its all-reduce is a partial sum. Locate judges
whole tensors, so a factory that runs as one rank of a job declares them, by module / cell path::

    "activations": {"fc1": "shard(-1)",                                    # its outputs
                    "act": {"inputs": "shard(-1)", "outputs": "shard(-1)"},
                    "fc2.reduce": {"inputs": "partial"}}

``shard(D)``: the ranks' parts join along dim D in rank order; ``partial``: the whole is their sum;
``replicate`` (what is not declared): every rank holds all of it. A side's placement applies to each of its
tensors; a list places them one by one (``{"outputs": ["replicate", "shard(1)"]}``: an attention's whole output
and this rank's heads of its weights), tensors past its end replicated. After a recorded forward each rank sends the
declared calls' tensors to the others (the framework's own collective, in recording order: every rank records
the same calls), and keeps and summarises the whole ones, so every rank answers with whole tensors. In a
recorded backward the same declaration places the gradients: a slice's gradient is a slice, and the gradient
of a partial sum is whole on every rank already.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from proto.codec import NamedArray
from proto.errors import MsparityError
from proto.weights.shards import declared_dict
from proto.worker.module_records import summarize

REPLICATE, SHARD, PARTIAL = "replicate", "shard", "partial"
SIDES = ("inputs", "outputs")
Spec = tuple[str, int]  # (kind, dim)
Side = tuple[Spec, ...] | Spec  # one spec for every tensor of a side, or one per tensor (past the end: replicate)
Layout = dict[str, dict[str, Side]]  # path -> {"inputs": ..., "outputs": ...} (only the declared sides)
HEADER_SLOTS = 10  # ndim, up to 8 extents, byte count


def parse_activations(declared, paths: Sequence[str]) -> Layout:
    """A factory's ``"activations"`` -> {path: {side: (kind, dim)}}; a path the net lacks is an error."""
    if not declared:
        return {}
    declared_dict(declared, paths, "activations", "'shard(DIM)', 'partial' or {'inputs': ..., 'outputs': ...}",
                  "module", "give module paths as named_modules / cells_and_names list them")
    layout: Layout = {}
    for path, value in declared.items():
        sides = value if isinstance(value, dict) else {"outputs": value}
        extra = sorted(set(map(str, sides)) - set(SIDES))
        if extra:
            raise MsparityError(f"the factory's 'activations' of {path!r} has {', '.join(extra)}: give 'inputs' "
                                "and / or 'outputs'")
        layout[path] = {side: tuple(_spec(path, side, t) for t in text) if isinstance(text, (list, tuple))
                        else _spec(path, side, text) for side, text in sides.items()}
    return layout


def _spec(path: str, side: str, text) -> Spec:
    spec = str(text).replace(" ", "").lower()
    if spec in (REPLICATE, PARTIAL):
        return spec, 0
    if spec.startswith("shard(") and spec.endswith(")") and spec[6:-1].lstrip("-").isdigit():
        return SHARD, int(spec[6:-1])
    raise MsparityError(f"the factory's 'activations' place the {side} of {path!r} as {text!r}: write 'shard(DIM)', "
                        "'partial' or 'replicate'")


def whole(parts: Sequence[np.ndarray], spec: Spec, what: str) -> np.ndarray:
    """The whole tensor from every rank's part: shards joined along dim, partial sums added in rank order."""
    kind, dim = spec
    if kind == SHARD:
        try:
            return np.concatenate(parts, axis=dim)
        except ValueError as exc:  # numpy's AxisError is one too
            raise MsparityError(f"{what}: its parts {[list(p.shape) for p in parts]} do not join along dim {dim} "
                                f"as the factory's 'activations' declare ({exc})") from None
    if kind == PARTIAL:
        if any(p.shape != parts[0].shape for p in parts):
            raise MsparityError(f"{what}: declared 'partial' but the ranks hold shapes "
                                f"{[list(p.shape) for p in parts]}; partial sums have one shape")
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return total
    return parts[0]


def gather_arrays(all_gather: Callable[[np.ndarray], np.ndarray], array: np.ndarray, world: int) -> list[np.ndarray]:
    """Every rank's array of one place, by rank, over ``all_gather`` (int32 rows of one length in, [world, n] out).

    Two collectives: the shapes and sizes first, then the bytes padded to the largest."""
    array = np.ascontiguousarray(array)
    if array.ndim > HEADER_SLOTS - 2:
        raise MsparityError(f"an activation of {array.ndim} dims: at most {HEADER_SLOTS - 2} are gathered")
    header = np.zeros(HEADER_SLOTS, np.int32)
    header[0], header[1: 1 + array.ndim], header[-1] = array.ndim, array.shape, array.nbytes
    headers = all_gather(header).reshape(world, HEADER_SLOTS)
    longest = int(headers[:, -1].max())
    padded = np.zeros(max(4, (longest + 3) // 4 * 4), np.uint8)  # never an empty collective
    padded[: array.nbytes] = array.reshape(-1).view(np.uint8)
    rows = all_gather(padded.view(np.int32)).reshape(world, -1)
    parts = []
    for row, head in zip(rows, headers):
        shape = tuple(int(n) for n in head[1: 1 + int(head[0])])
        data = np.ascontiguousarray(row).view(np.uint8)[: int(head[-1])]
        parts.append(data.view(array.dtype).reshape(shape))
    return parts


def whole_run(run, layout: Layout, gather: Callable[[np.ndarray], list[np.ndarray]], backward: bool,
              sketch_size: int, seed: int):
    """The recorded run with each declared call's tensors made whole (and summarised again), in place; the run.

    ``gather(array)`` is every rank's array of the same place (a collective: each rank walks the same calls in the
    same order). In a backward run a call's inputs are the gradients wrt its outputs and the other way round."""
    for index, call in enumerate(run.calls):
        declared = layout.get(call.path)
        if not declared or call.key not in run.tensors:
            continue
        ins, outs = run.tensors[call.key]
        in_spec = declared.get("outputs" if backward else "inputs")
        out_spec = declared.get("inputs" if backward else "outputs")
        shapes: dict[str, list] = {"inputs": [], "outputs": []}
        ins = _made_whole(ins, in_spec, gather, backward, f"{call.key}'s inputs", shapes["inputs"])
        outs = _made_whole(outs, out_spec, gather, backward, f"{call.key}'s outputs", shapes["outputs"])
        run.tensors[call.key] = (ins, outs)
        run.rank_shapes[call.key] = shapes
        run.calls[index] = dataclasses.replace(
            call, inputs=tuple(summarize(t.name, t.array, sketch_size, seed, t.dtype) for t in ins),
            outputs=tuple(summarize(t.name, t.array, sketch_size, seed, t.dtype) for t in outs))
    return run


def spec_of(side: Side | None, index: int) -> Spec | None:
    """The placement of a side's tensor ``index``: the side's one spec, or its list's entry (None past its end)."""
    if not side:
        return None
    if isinstance(side[0], str):
        return side
    return side[index] if index < len(side) else None


def _made_whole(tensors: list[NamedArray], side: Side | None, gather, backward: bool, what: str,
                shapes: list) -> list[NamedArray]:
    made = []
    for index, t in enumerate(tensors):
        spec = spec_of(side, index)
        if spec is None or spec[0] == REPLICATE or (backward and spec[0] == PARTIAL):
            shapes.append(None)  # the gradient of a partial sum is the same on every rank
            made.append(t)
            continue
        parts = gather(t.array)
        shapes.append([p.shape for p in parts])
        made.append(NamedArray(t.name, whole(parts, spec, f"{what} {t.name}"), t.dtype))
    return made


def local_part(tensor: NamedArray, spec: Spec | None, rank: int, shapes: list | None) -> NamedArray:
    """This rank's part of a whole tensor a replay is given, as the recording held it: its slice (``shapes``: each
    rank's recorded shape), or for a partial sum the whole on rank 0 and zeros elsewhere (their sum is the whole)."""
    if spec is None or spec[0] == REPLICATE or shapes is None:
        return tensor
    if spec[0] == PARTIAL:
        return tensor if rank == 0 else NamedArray(tensor.name, np.zeros_like(tensor.array), tensor.dtype)
    dim = spec[1] % tensor.array.ndim
    extents = [int(shape[dim]) for shape in shapes]
    if sum(extents) != tensor.array.shape[dim]:
        raise MsparityError(f"{tensor.name}: a replay was given shape {list(tensor.shape)}, but the recorded slices "
                            f"along dim {dim} add up to {sum(extents)}")
    start = sum(extents[:rank])
    index = [slice(None)] * tensor.array.ndim
    index[dim] = slice(start, start + extents[rank])
    return NamedArray(tensor.name, np.ascontiguousarray(tensor.array[tuple(index)]), tensor.dtype)


def local_inputs(run, key: str, layout: Layout, path: str, rank: int, inputs: Sequence[NamedArray]) -> list[NamedArray]:
    """A replay's whole inputs cut into this rank's parts by the module's declared input placement."""
    side = layout.get(path, {}).get("inputs")
    shapes = run.rank_shapes.get(key, {}).get("inputs", []) if run is not None else []
    return [local_part(x, spec_of(side, i), rank, shapes[i] if i < len(shapes) else None)
            for i, x in enumerate(inputs)]


def whole_outputs(outputs: Sequence[NamedArray], layout: Layout, path: str, gather) -> list[NamedArray]:
    """A replay's outputs on this rank made whole by the module's declared output placement (a collective)."""
    spec = layout.get(path, {}).get("outputs")
    shapes: list = []
    return _made_whole(list(outputs), spec, gather, False, f"the replay of {path!r}'s outputs", shapes)
