"""How a net's inputs and outputs are named on the wire, the same for both frameworks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

# What a framework raises when inputs do not fit the net (IndexError: an id past an embedding's end); a forward,
# a training step, a recorded forward or a replay failing with one is the caller's request, not the worker, failing.
NET_ERRORS = (RuntimeError, TypeError, ValueError, IndexError)


def as_input_list(inputs) -> list:
    """A factory's example inputs as a list: None -> [], one tensor -> [it], a sequence -> list."""
    if inputs is None:
        return []
    if isinstance(inputs, (tuple, list)):
        return list(inputs)
    return [inputs]


def input_name(index: int) -> str:
    """Wire name of the index-th positional input."""
    return f"input{index}"


def flatten_outputs(value: object, is_tensor, prefix: str = "output",
                    skipped: list[str] | None = None) -> Iterator[tuple[str, object]]:
    """Yield (name, leaf) for every tensor (or numpy array) leaf in a nested output.

    Names: "output" for a single tensor, "output.0", "output.1" for sequences, "output.key" for
    dicts (HF's ModelOutput is one) and "output.field" for dataclasses, nested with dots. Both
    workers use this, so the same structure gets the same names. Any other leaf (None, a number,
    a KV cache object) is not a tensor to compare: it is left out and, when ``skipped`` is given,
    named there as "NAME (TYPE)".
    """
    if is_tensor(value) or isinstance(value, np.ndarray):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from flatten_outputs(item, is_tensor, f"{prefix}.{key}", skipped)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from flatten_outputs(getattr(value, field.name), is_tensor, f"{prefix}.{field.name}", skipped)
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from flatten_outputs(item, is_tensor, f"{prefix}.{index}", skipped)
    elif skipped is not None:
        skipped.append(f"{prefix} ({'None' if value is None else type(value).__name__})")
