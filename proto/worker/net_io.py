"""How a net's inputs and outputs are named on the wire, the same for both frameworks."""

from __future__ import annotations

from collections.abc import Iterator


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


def flatten_outputs(value: object, is_tensor, prefix: str = "output") -> Iterator[tuple[str, object]]:
    """Yield (name, leaf) for every tensor leaf in a nested output; None leaves are skipped.

    Names: "output" for a single tensor, "output.0", "output.1" for sequences, "output.key" for
    dicts, nested with dots. Both workers use this, so the same structure gets the same names.
    """
    if value is None:
        return
    if is_tensor(value):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from flatten_outputs(item, is_tensor, f"{prefix}.{key}")
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from flatten_outputs(item, is_tensor, f"{prefix}.{index}")
    else:
        yield prefix, value  # a Python number or numpy value; the adapter turns it into an array
