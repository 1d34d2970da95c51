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

Transforms act on one tensor; fused -> separate weights (one q/k/v tensor split into three) need a
map entry per part and are not expressible in TroubleShooter's one-to-one ``[name_map, value_map]``.
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
OPERATIONS = ("identity", "transpose", "squeeze", "unsqueeze", "reshape")


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
        if op in ("unsqueeze", "reshape") and not args:
            raise TransformError(f"value transform {text!r}: {op} needs its axes or shape, e.g. {op}(2)")
        if op == "identity" and args:
            raise TransformError(f"value transform {text!r}: identity takes no arguments")
        steps.append(Step(op, args))
    return tuple(steps)


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
