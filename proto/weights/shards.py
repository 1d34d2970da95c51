"""Whole tensors from the slices ranks hold, and slices from whole tensors (numpy only).

A tensor placed ``shard(d)`` lies in rank order along dim d, one slice per rank (sizes may differ by one:
torch's split rounds up); ``replicate`` means every rank holds all of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from proto.codec import NamedArray
from proto.errors import MsparityError

REPLICATE, SHARD = "replicate", "shard"


def joined(parts: Sequence[NamedArray], placement: str, dim: int) -> NamedArray:
    """The whole tensor of one name from every rank's part: shards concatenated along dim, else rank 0's."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if placement != SHARD:
        for rank, part in enumerate(parts[1:], 1):
            if part.shape != first.shape or not np.array_equal(part.array, first.array,
                                                                    equal_nan=first.array.dtype.kind in "fc"):
                raise MsparityError(f"tensor {first.name!r} should be the same on every rank (it is not declared "
                                    f"'shard(DIM)') but rank {rank}'s differs from rank 0's: seed every rank alike "
                                    "when building the net, all-reduce the gradients of replicated parameters, or "
                                    "declare its placement (the factory's 'placements'; --layout for files saved "
                                    "one per rank)")
        return first
    if any(p.name != first.name for p in parts):
        raise MsparityError(f"the ranks streamed different tensors at one place: {', '.join(p.name for p in parts)}")
    try:
        whole = np.concatenate([p.array for p in parts], axis=dim)
    except ValueError as exc:
        raise MsparityError(f"tensor {first.name!r}: its shards {[list(p.shape) for p in parts]} do not join along "
                            f"dim {dim} ({exc})") from None
    return NamedArray(first.name, whole, first.dtype)


def split_sizes(local_shapes: Sequence[Sequence[int]], dim: int) -> list[int]:
    """Each rank's extent along dim, from the shapes the ranks listed."""
    return [int(shape[dim]) for shape in local_shapes]


def sliced(tensor: NamedArray, placement: str, dim: int, sizes: Sequence[int]) -> list[NamedArray]:
    """One part per rank: the slices of a whole tensor along dim by sizes, or the whole for every rank."""
    if placement != SHARD:
        return [tensor] * len(sizes)
    if tensor.array.ndim <= dim or tensor.shape[dim] != sum(sizes):
        raise MsparityError(f"tensor {tensor.name!r} of shape {list(tensor.shape)} cannot be split along dim {dim} "
                            f"into the ranks' slices {list(sizes)}: the two sides' nets have different sizes")
    bounds = np.cumsum([0, *sizes])
    index = [slice(None)] * tensor.array.ndim
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index[dim] = slice(int(start), int(stop))
        parts.append(NamedArray(tensor.name, np.ascontiguousarray(tensor.array[tuple(index)]), tensor.dtype))
    return parts


def whole_shape(local_shapes: Sequence[Sequence[int]], placement: str, dim: int) -> tuple[int, ...]:
    """The shape of the whole tensor the ranks' slices make."""
    shape = list(local_shapes[0])
    if placement == SHARD:
        shape[dim] = sum(split_sizes(local_shapes, dim))
    return tuple(shape)


def declared_dict(declared, known, key: str, values: str, noun: str, hint: str = "") -> dict:
    """A factory's ``key`` declaration checked: a dict whose every name is in ``known`` (``noun``: what it names)."""
    if not isinstance(declared, dict):
        raise MsparityError(f"the factory's {key!r} must be a dict of {noun} -> {values}, got a "
                            f"{type(declared).__name__}")
    known = set(known)
    unknown = sorted(str(n) for n in declared if n not in known)
    if unknown:
        raise MsparityError(f"the factory's {key!r} name {noun}s the net does not have: {', '.join(unknown[:8])}"
                            + (f" ({hint})" if hint else ""))
    return declared


def parse_placements(declared, names) -> dict[str, tuple[str, int]]:
    """A factory's (or a --layout file's) ``"placements"``: {tensor name: "replicate" | "shard(DIM)"} -> {name: (kind, dim)}.

    Tensors not named are replicated (each rank holds all of it); a name the net lacks is an error."""
    if not declared:
        return {}
    declared_dict(declared, names, "placements", "'replicate' or 'shard(DIM)'", "tensor")
    parsed = {}
    for name, text in declared.items():
        spec = str(text).replace(" ", "").lower()
        if spec == REPLICATE:
            parsed[name] = (REPLICATE, 0)
        elif spec.startswith("shard(") and spec.endswith(")") and spec[6:-1].lstrip("-").isdigit():
            parsed[name] = (SHARD, int(spec[6:-1]))
        else:
            raise MsparityError(f"the factory's placement of {name!r} is {text!r}: write 'replicate' or 'shard(DIM)'")
    return parsed
