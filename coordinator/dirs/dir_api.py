"""TroubleShooter's directory-comparison API: compare_npy_dir, compare_grads_dir, compare_list_dir, compare_dict_dir.

Same names, parameters and defaults as TroubleShooter 1.0.18, so a script ports by changing its
import. They print the table like TroubleShooter and return the DirComparison (a value usable in
code; ``bool(result)`` is the verdict). Directories may be local paths, ``host:port:dir`` strings
naming a directory a worker serves, or TensorDir objects. ``num_processes`` is accepted and
ignored: comparison runs on threads (two compute, one reader per side).
"""

from __future__ import annotations

import os

from coordinator.dirs.dir_compare import DirComparison, compare_dirs
from coordinator.render.dir_report import TITLE, print_dir_comparison, write_csv
from proto.errors import UsageError

_KWARGS = {"title": str, "field_names": list, "frame_names": tuple}


def _check(rtol, atol, equal_nan, compare_shape, output_file, kwargs) -> None:
    for name, value, kind in (("rtol", rtol, (int, float)), ("atol", atol, (int, float)),
                              ("equal_nan", equal_nan, bool), ("compare_shape", compare_shape, bool)):
        if not isinstance(value, kind) or (kind != bool and isinstance(value, bool)):
            raise UsageError(f"{name} must be {'a number' if kind != bool else 'True or False'}, got {value!r}")
    for key, value in kwargs.items():
        if key not in _KWARGS:
            raise UsageError(f"unexpected keyword argument {key!r} (accepted: {', '.join(_KWARGS)})")
        if not isinstance(value, _KWARGS[key]):
            raise UsageError(f"{key} must be a {_KWARGS[key].__name__}, got {type(value).__name__}")
    if output_file is not None:
        folder = os.path.dirname(os.path.abspath(os.fspath(output_file)))
        if not os.path.isdir(folder):
            raise UsageError(f"output_file {output_file}: folder {folder} does not exist")


def _run(orig_dir, target_dir, rtol, atol, equal_nan, strategy, name_map_list, compare_shape, output_file,
         kwargs) -> DirComparison:
    _check(rtol, atol, equal_nan, compare_shape, output_file, kwargs)
    result = compare_dirs(orig_dir, target_dir, rtol=float(rtol), atol=float(atol), equal_nan=equal_nan,
                          strategy=strategy, name_map_list=name_map_list)
    print_dir_comparison(result, compare_shape, kwargs.get("title", TITLE))
    if output_file is not None:
        write_csv(output_file, result, compare_shape)
    return result


def compare_npy_dir(orig_dir, target_dir, rtol=1e-4, atol=1e-4, equal_nan=False, *, name_map_list=None,
                    compare_shape=False, output_file=None, num_processes=None, **kwargs) -> DirComparison:
    """Compare the .npy files of two directories, paired by name unless name_map_list is given."""
    return _run(orig_dir, target_dir, rtol, atol, equal_nan, "name", name_map_list, compare_shape, output_file,
                kwargs)


def compare_grads_dir(orig_dir, target_dir, rtol=1e-4, atol=1e-4, equal_nan=False, compare_shape=True,
                      output_file=None, num_processes=None) -> DirComparison:
    """Compare two gradient dumps, paired by shape edit distance (MindSpore's grads carry no names)."""
    return _run(orig_dir, target_dir, rtol, atol, equal_nan, "shape", None, compare_shape, output_file, {})


def compare_list_dir(orig_dir, target_dir, rtol=1e-4, atol=1e-4, equal_nan=False, compare_shape=False,
                     output_file=None, num_processes=None) -> DirComparison:
    """Compare two dumps of saved lists, paired by the last number in each file name."""
    return _run(orig_dir, target_dir, rtol, atol, equal_nan, "list", None, compare_shape, output_file, {})


def compare_dict_dir(orig_dir, target_dir, rtol=1e-4, atol=1e-4, equal_nan=False, compare_shape=False,
                     output_file=None, num_processes=None) -> DirComparison:
    """Compare two dumps of saved dicts, paired by file name."""
    return _run(orig_dir, target_dir, rtol, atol, equal_nan, "name", None, compare_shape, output_file, {})
