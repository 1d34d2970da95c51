"""NetDifferenceFinder's inputs: TroubleShooter's ``inputs`` and ``auto_inputs`` forms, as named numpy cases."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import UsageError
from proto.worker.net_io import input_name


def _as_array(item, where: str) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return item
    if isinstance(item, (str, os.PathLike)):
        from proto.formats.npy_files import load_npy

        return load_npy(Path(item)).array
    if hasattr(item, "asnumpy"):  # mindspore.Tensor
        return item.asnumpy()
    if hasattr(item, "detach") and hasattr(item, "cpu"):  # torch.Tensor
        return item.detach().cpu().numpy()
    raise UsageError(f"{where}: inputs must be numpy arrays, .npy paths, torch or mindspore tensors; "
                     f"got {type(item).__name__}")


def _named(arrays: list[np.ndarray]) -> list[NamedArray]:
    named = []
    for index, array in enumerate(arrays):
        try:
            named.append(NamedArray(input_name(index), np.ascontiguousarray(array),
                                    dtypes.wire_dtype_from_numpy(array.dtype)))
        except dtypes.UnknownDtypeError as exc:
            raise UsageError(f"input {index}: {exc}") from None
    return named


def input_cases(inputs) -> list[list[NamedArray]]:
    """TroubleShooter's inputs forms: one item, a tuple of items (one case), or a list of tuples (cases)."""
    if isinstance(inputs, list):
        cases = []
        for i, case in enumerate(inputs):
            if not isinstance(case, tuple):
                case = (case,)
            cases.append(_named([_as_array(x, f"inputs[{i}]") for x in case]))
        return cases
    if isinstance(inputs, tuple):
        return [_named([_as_array(x, "inputs") for x in inputs])]
    if inputs is None:
        raise UsageError("compare: give inputs=... or auto_inputs=...")
    return [_named([_as_array(inputs, "inputs")])]


def auto_input_cases(auto_inputs, seed: int) -> list[list[NamedArray]]:
    """TroubleShooter's auto_inputs: ``((shape, dtype), ...)`` or ``{'input': ((shape, dtype), ...), 'num': N}``.

    Generated here once, from numpy's Generator(seed), and sent to both sides bit-identically.
    """
    if isinstance(auto_inputs, dict):
        if "input" not in auto_inputs or "num" not in auto_inputs:
            raise UsageError("auto_inputs as a dict needs the keys 'input' and 'num'")
        specs, num = auto_inputs["input"], auto_inputs["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 0:
            raise UsageError(f"auto_inputs['num'] must be a non-negative int, got {num!r}")
    elif isinstance(auto_inputs, tuple):
        specs, num = auto_inputs, 1
    else:
        raise UsageError(f"auto_inputs must be a tuple or a dict, got {type(auto_inputs).__name__}")
    for i, spec in enumerate(specs):
        if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], (tuple, list))):
            raise UsageError(f"auto_inputs input {i} must be ((shape...), dtype), got {spec!r}")
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(num):
        arrays = []
        for shape, dtype in specs:
            dtype = np.dtype(dtype)
            values = rng.standard_normal(tuple(shape))
            arrays.append(values.astype(dtype) if dtype.kind in "fc" else
                          rng.integers(0, 2 if dtype.kind == "b" else 100, tuple(shape)).astype(dtype))
        cases.append(_named(arrays))
    return cases
