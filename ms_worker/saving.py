"""TroubleShooter's ``save`` for MindSpore, in PyNative code and inside a GRAPH-mode ``construct`` on CPU.

Naming rules: proto/formats/save_names.py (shared with the torch side). Outside a compiled graph the tensors
are fetched with ``asnumpy()`` and written at once. While a graph compiles, this module is parsed by
the graph compiler: the container unrolls at compile time, a ``constexpr`` fixes the file names and
registers them under an integer key, and one CPU ``pyfunc`` Custom op per tensor writes its file
when the graph runs (``ops.TensorDump``, TroubleShooter's way, does not exist on CPU in Graph mode).
The op carries ``side_effect_io`` so it is kept, in program order, although nothing uses its output;
each run of the graph takes fresh ids.

Code the graph compiler parses (``save``, ``_flatten``, ``_graph_save``, ``_kernel_input``) keeps to
plain syntax and calls no os/numpy function; file work happens in constexprs and in the kernel.
"""

from __future__ import annotations

import threading

import mindspore as ms
import numpy as np
from mindspore import ops
from mindspore.ops import constexpr

from proto.formats.npy_files import save_npy
from proto.formats.save_names import COUNTER, leaf_names, npy_path

_TENSOR, _SCALAR, _EMPTY = 0, 1, 2
_PLANS: dict[int, tuple] = {}  # key -> (directory, stems, auto_id, kinds, shapes, dtypes); filled at compile time
_PLANS_LOCK = threading.Lock()


def _leaf_kind(shape) -> int:
    return _SCALAR if len(shape) == 0 else _EMPTY if 0 in shape else _TENSOR


def _numpy(tensor: ms.Tensor) -> np.ndarray:
    if tensor.dtype == ms.bfloat16:  # numpy has no bfloat16; float32 holds every bf16 value exactly
        tensor = tensor.astype(ms.float32)
    return tensor.asnumpy()


def _flatten(data, keypath):
    """(keypaths, leaves) in iteration order; None items are skipped. Parsed by the graph compiler."""
    if data is None:
        return (), ()
    if isinstance(data, (list, tuple)):
        keypaths, leaves = (), ()
        for i in range(len(data)):
            sub_keys, sub_leaves = _flatten(data[i], keypath + (i,))
            keypaths = keypaths + sub_keys
            leaves = leaves + sub_leaves
        return keypaths, leaves
    if isinstance(data, dict):
        keypaths, leaves = (), ()
        for k in data.keys():
            sub_keys, sub_leaves = _flatten(data[k], keypath + (k,))
            keypaths = keypaths + sub_keys
            leaves = leaves + sub_leaves
        return keypaths, leaves
    if not isinstance(data, ms.Tensor):
        raise TypeError("save: data must be a mindspore.Tensor or a list/tuple/dict of them")
    return (keypath,), (data,)


def _eager_save(file, data, auto_id, suffix) -> None:
    keypaths, leaves = _flatten(data, ())
    # fetch first: asnumpy() waits for pending graphs, whose own saves must take their ids before this one
    arrays = [_numpy(t) for t in leaves]
    directory, stems = leaf_names(file, suffix, keypaths, [a.shape for a in arrays])
    save_id = COUNTER.take() if auto_id else None
    for stem, array in zip(stems, arrays):
        save_npy(npy_path(directory, stem, save_id), array)


_kind = constexpr(_leaf_kind)


@constexpr
def _register(file, auto_id, suffix, keypaths, shapes, dtypes):
    """Compile time: name the files of one save call; return the key its kernels pass at run time."""
    if any(s is None or None in s or -1 in s for s in shapes):
        raise ValueError("save: tensors of dynamic shape cannot be saved inside a compiled graph on CPU; "
                         "return them from construct and save them outside")
    directory, stems = leaf_names(file, suffix, keypaths, shapes)
    with _PLANS_LOCK:
        key = len(_PLANS)
        _PLANS[key] = (directory, stems, bool(auto_id), tuple(_leaf_kind(s) for s in shapes),
                       tuple(tuple(s) for s in shapes), dtypes)
    return key


def _kernel_input(tensor):
    """What the pyfunc kernel takes for tensor: it rejects zero-size inputs, turns 0-d inputs into Python
    scalars, and CPU Reshape has no bfloat16 kernel."""
    kind = _kind(tensor.shape)
    if kind == _EMPTY:
        return _DUMMY
    if tensor.dtype == ms.bfloat16:
        tensor = tensor.astype(ms.float32)
    if kind == _SCALAR:
        return tensor.reshape((1,))
    return tensor


def _graph_writer(key, index, array):
    """Run time (pyfunc kernel): write leaf index of save call key; index -1 only takes an id.

    array views MindSpore memory that is reused later: it is written at once, never kept.
    """
    directory, stems, auto_id, kinds, shapes, dtypes = _PLANS[key]
    if auto_id and index <= 0:  # the first leaf (or the no-leaf marker) of a call takes the id
        COUNTER.take()
    if index >= 0:
        if kinds[index] == _EMPTY:
            array = np.empty(shapes[index], ms.dtype_to_nptype(dtypes[index]))
        elif kinds[index] == _SCALAR:
            array = np.asarray(array).reshape(())
        save_npy(npy_path(directory, stems[index], COUNTER.current if auto_id else None), array)
    return np.zeros((1,), np.int32)


_WRITER = ops.Custom(_graph_writer, out_shape=lambda *_: (1,), out_dtype=lambda *_: ms.int32, func_type="pyfunc")
_WRITER.add_prim_attr("side_effect_io", True)
_DUMMY = ms.Tensor(np.zeros((1,), np.int8))


def _graph_save(file, data, auto_id, suffix):
    keypaths, leaves = _flatten(data, ())
    shapes, dtypes = (), ()
    for t in leaves:
        shapes = shapes + (t.shape,)
        dtypes = dtypes + (t.dtype,)
    key = _register(file, auto_id, suffix, keypaths, shapes, dtypes)
    if not leaves:
        if auto_id:
            _WRITER(key, -1, _DUMMY)
    for i in range(len(leaves)):
        _WRITER(key, i, _kernel_input(leaves[i]))


def _probe():
    return 0


@constexpr(check=False)
def _is_none(value):
    return value is None


def _in_graph():
    """True while the graph compiler parses the caller (a function reaches a constexpr as None there),
    False in the Python interpreter; MindSpore's own _run_in_jit works the same way."""
    return _is_none(_probe)


def save(file, data, auto_id=True, suffix=None):
    """Save a Tensor, or a list/tuple/dict of Tensors, as .npy files named ``{id}_{name}_{idx-or-key}_{suffix}``."""
    if _in_graph():
        _graph_save(file, data, auto_id, suffix)
    else:
        _eager_save(file, data, auto_id, suffix)
