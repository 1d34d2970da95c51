"""Value transforms a weight map may name: a small declarative grammar, never an import path.

A transform is ``identity``, an operation with integer arguments, or several joined by ``|``
(applied left to right):

| transform | does | e.g. |
|---|---|---|
| ``identity`` | nothing | Linear -> Dense |
| ``transpose`` / ``transpose(1,0,...)`` | permute axes (no arguments: reverse a 2-d matrix) | a matmul weight kept as (in, out) |
| ``squeeze(2,3)`` | drop size-1 axes | a 1x1 Conv2d (out, in, 1, 1) ported as a Dense (out, in) |
| ``unsqueeze(2)`` | insert a size-1 axis | a Conv1d (out, in, k) -> MindSpore's (out, in, 1, k) |
| ``reshape(64,3,1,1)`` | reshape (one -1 allowed) | |
| ``expand_dims_axis2`` | ``unsqueeze(2)``, the name msparity and TroubleShooter maps used first | |
| ``slice(0,32,64)`` | keep indices 32..63 of axis 0 | one part of a fused tensor |
| ``split(0)`` / ``split(0,32,8,8)`` | one torch tensor feeds several MindSpore ones, cut along an axis (equal parts, or these sizes) | a fused qkv -> separate q, k, v |
| ``concat(0)`` | several torch tensors feed one MindSpore tensor, joined along an axis in the map's order | separate q, k, v -> a fused qkv |

``split`` and ``concat`` end a chain (``transpose|concat(0)`` joins transposed parts) and go beyond
TroubleShooter's one-to-one format: a split entry's name map value is the list of MindSpore names,
and every torch part of a concat names the same MindSpore tensor. A plan resolves them into one
mapping per pair: ``slice(axis,start,stop)`` for a split's parts, ``into(axis,start,stop)`` (this
torch tensor fills those indices of the MindSpore one) for a concat's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from proto.errors import MsparityError

ALIASES = {"expand_dims_axis2": "unsqueeze(2)"}
# TroubleShooter map files store transforms as importable dotted paths; the known ones are recognised.
TS_TRANSFORM_PATHS: dict[str, str] = {
    "troubleshooter.migrator.mapping_relation.weight_adapter.trans_conv1d_weight_value": "expand_dims_axis2",
}
_STEP = re.compile(r"^\s*([a-z_]+)\s*(?:\(\s*(-?\d+(?:\s*,\s*-?\d+)*)?\s*\))?\s*$")
OPERATIONS = ("identity", "transpose", "squeeze", "unsqueeze", "reshape", "slice", "split", "concat", "into")
JOINS = ("split", "concat", "into")  # the steps that relate one tensor to several: a chain's last step only


class TransformError(MsparityError):
    """A transform text outside the grammar, or one that does not fit the tensor's shape."""


@dataclass(frozen=True)
class Step:
    op: str
    args: tuple[int, ...] = ()

    def shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape a tensor of ``shape`` has after this step (TransformError when it does not fit)."""
        probe = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=shape, strides=(0,) * len(shape))
        return tuple(self.apply(probe).shape)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The step applied to array (a view where numpy gives one)."""
        try:
            if self.op == "identity":
                return array
            if self.op == "transpose":
                return np.transpose(array, self.args or None)
            if self.op == "squeeze":
                return np.squeeze(array, axis=self.args or None)
            if self.op == "unsqueeze":
                return np.expand_dims(array, self.args)
            if self.op == "slice":
                axis, start, stop = self.args
                if not 0 <= start < stop <= array.shape[axis]:
                    raise ValueError(f"indices {start}..{stop} are outside the axis' {array.shape[axis]}")
                return array[(slice(None),) * (axis % array.ndim) + (slice(start, stop),)]
            if self.op == "into":
                return array  # the part itself: where it goes in the joined tensor is the plan's to place
            if self.op in ("split", "concat"):
                raise TransformError(f"{self.text()} relates several tensors: a weight plan resolves it first")
            return np.reshape(array, self.args)
        except ValueError as exc:  # numpy's AxisError is a ValueError too
            raise TransformError(f"{self.text()} does not fit shape {list(array.shape)}: {exc}") from None

    def text(self) -> str:
        return f"{self.op}({','.join(map(str, self.args))})" if self.args else self.op


def parse(text: str) -> tuple[Step, ...]:
    """The steps of a transform text; TransformError names what is wrong."""
    if not isinstance(text, str):
        raise TransformError(f"a value transform must be a string, got {type(text).__name__}")
    text = ALIASES.get(text.strip(), text)
    steps = []
    for part in text.split("|"):
        match = _STEP.match(part)
        if not match or match.group(1) not in OPERATIONS:
            raise TransformError(f"value transform {text!r} is not one msparity knows: write "
                                 f"{' | '.join(OPERATIONS)} with integer arguments, e.g. squeeze(2,3) or "
                                 "transpose(1,0)|unsqueeze(2); transforms are named, never imported")
        op, args = match.group(1), tuple(int(a) for a in (match.group(2) or "").replace(" ", "").split(",") if a)
        if op in ("unsqueeze", "reshape", "split", "concat") and not args:
            raise TransformError(f"value transform {text!r}: {op} needs its axes or shape, e.g. {op}(0)")
        if op in ("slice", "into") and len(args) != 3:
            raise TransformError(f"value transform {text!r}: {op} takes (axis,start,stop), e.g. {op}(0,0,32)")
        if op == "concat" and len(args) != 1:
            raise TransformError(f"value transform {text!r}: concat takes one axis, e.g. concat(0)")
        if op == "split" and (len(args) == 2 or any(a <= 0 for a in args[1:])):
            raise TransformError(f"value transform {text!r}: split takes an axis, then two or more positive "
                                 "sizes, e.g. split(0) or split(0,32,8,8)")
        if op == "identity" and args:
            raise TransformError(f"value transform {text!r}: identity takes no arguments")
        steps.append(Step(op, args))
    if any(step.op in JOINS for step in steps[:-1]):
        raise TransformError(f"value transform {text!r}: split, concat and into end a chain, e.g. transpose|concat(0)")
    return tuple(steps)


def join_of(text: str) -> tuple[str, Step | None]:
    """(the one-tensor steps, the split/concat/into step ending the chain or None)."""
    steps = parse(text)
    if steps and steps[-1].op in JOINS:
        head = "|".join(step.text() for step in steps[:-1]) or "identity"
        return head, steps[-1]
    return text, None


def is_partial(text: str) -> bool:
    """Whether the transform relates a tensor to part of another (a split's slice, a concat's into)."""
    return any(step.op in ("slice", "into") for step in parse(text))


def ms_part(text: str, array: np.ndarray) -> np.ndarray:
    """The part of a joined MindSpore tensor that an ``...|into(axis,start,stop)`` mapping's torch tensor fills
    (the whole array for any other transform): what a comparison pairs with the converted torch part."""
    join = join_of(text)[1]
    if join is None or join.op != "into":
        return array
    axis, start, stop = join.args
    return array[(slice(None),) * (axis % array.ndim) + (slice(start, stop),)]


def resolved_split(text: str, shape, parts: int) -> list[str]:
    """A split transform for a torch tensor of ``shape`` as one ``...|slice(axis,start,stop)`` per part."""
    head, join = join_of(text)
    shape = transform_shape(head, shape)
    axis = join.args[0]
    if not -len(shape) <= axis < len(shape):
        raise TransformError(f"{text} does not fit shape {list(shape)}: no axis {axis}")
    axis %= len(shape)
    sizes = join.args[1:]
    if not sizes:
        if shape[axis] % parts:
            raise TransformError(f"{text}: axis {axis} of {list(shape)} does not split into {parts} equal parts")
        sizes = (shape[axis] // parts,) * parts
    if len(sizes) != parts or sum(sizes) != shape[axis]:
        raise TransformError(f"{text}: {parts} target(s) and sizes {list(sizes)} do not cut axis {axis} of "
                             f"{list(shape)}")
    starts = np.cumsum((0,) + tuple(sizes))
    prefix = "" if head == "identity" else head + "|"
    return [f"{prefix}slice({axis},{a},{b})" for a, b in zip(starts[:-1], starts[1:])]


def canonical(text: str) -> str:
    """The transform as msparity writes it (aliases kept: maps stay readable by TroubleShooter's names)."""
    if text in ALIASES or text == "identity":
        return text
    return "|".join(step.text() for step in parse(text))


def apply_transform(text: str, array: np.ndarray) -> np.ndarray:
    """array after the transform named by text."""
    for step in parse(text):
        array = step.apply(array)
    return array


def transform_shape(text: str, shape) -> tuple[int, ...]:
    """The shape a tensor of ``shape`` has after the transform (TransformError when it does not fit)."""
    shape = tuple(int(n) for n in shape)
    for step in parse(text):
        shape = step.shape(shape)
    return shape


def from_map_file(value: object, pt_name: str, source: str) -> str:
    """A map file's transform for pt_name, checked: ours, or a TroubleShooter dotted path we know."""
    if isinstance(value, str) and value in TS_TRANSFORM_PATHS:
        return TS_TRANSFORM_PATHS[value]
    try:
        return canonical(value)
    except TransformError as exc:
        raise MsparityError(f"{source}: {pt_name!r}: {exc}") from None
