"""File names for ``save`` (both workers): TroubleShooter's auto-id naming, framework-free.

``save(file, data, auto_id=True, suffix=None)`` writes one ``.npy`` per tensor:

    Tensor        -> {dir}/{id}_{name}_{suffix}.npy
    list / tuple  -> {dir}/{id}_{name}_{idx}_{suffix}.npy     (one file per item; nested: {idx}_{idx})
    dict          -> {dir}/{id}_{name}_{key}_{suffix}.npy     (insertion order)

``{id}_`` only with auto_id: a process-wide counter from 0, advanced once per call (every file of one
call shares it). ``_{suffix}`` only when suffix is given. ``file`` splits at its last separator into
the directory and the name, and one trailing ``.npy`` is dropped. ``file=None`` or ``''`` writes
``tensor_{shape}`` files into the current directory (``0_tensor_(2, 3).npy``). None items are skipped.
"""

from __future__ import annotations

import os
import threading

NPY_SUFFIX = ".npy"


class SaveCounter:
    """The process-wide id of save calls; one per process, shared by every save function."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0
        self.current = -1

    def take(self) -> int:
        with self._lock:
            self.current = self._next
            self._next += 1
            return self.current

    def reset(self, start: int = 0) -> None:
        with self._lock:
            self._next = start
            self.current = start - 1


COUNTER = SaveCounter()


def split_file(file) -> tuple[str, str]:
    """(directory prefix ending in a separator or '', name without one trailing '.npy')."""
    if not file:
        return "", ""
    if not isinstance(file, (str, os.PathLike)):
        raise TypeError(f"save: 'file' must be a str or path, got {type(file).__name__}")
    text = os.fspath(file)
    if text.endswith(("/", os.sep)):
        raise ValueError(f"save: 'file' must name a file, not a directory: {text!r}")
    cut = max(text.rfind("/"), text.rfind(os.sep)) + 1
    directory, name = text[:cut], text[cut:]
    if name.endswith(NPY_SUFFIX):
        name = name[: -len(NPY_SUFFIX)]
    return directory, name


def leaf_names(file, suffix, keypaths, shapes) -> tuple[str, list[str]]:
    """The directory prefix and each leaf's file stem (without ``{id}_`` and ``.npy``)."""
    directory, name = split_file(file)
    stems = []
    for keypath, shape in zip(keypaths, shapes):
        # no file name: "tensor_{shape}", then the keys, as TroubleShooter's guide shows 2_tensor_(2,)_x1_torch.npy
        stem = "_".join([name or f"tensor_{tuple(int(n) for n in shape)}", *(str(k) for k in keypath)])
        if suffix:
            stem = f"{stem}_{suffix}"
        stems.append(stem)
    return directory, stems


def npy_path(directory: str, stem: str, save_id: int | None) -> str:
    """The file a leaf goes to; creates its directory."""
    if directory:
        os.makedirs(directory, exist_ok=True)
    prefix = "" if save_id is None else f"{save_id}_"
    return f"{directory}{prefix}{stem}{NPY_SUFFIX}"
