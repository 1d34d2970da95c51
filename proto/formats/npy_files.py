"""Directories of saved ``.npy`` tensors: listing by header, safe loading, and served-root confinement.

Used on both ends: by a worker serving ``--serve-dir`` roots and by the coordinator reading local
directories. Only plain numeric arrays are read (``allow_pickle=False``); a directory lists the
``.npy`` files directly inside it, as TroubleShooter does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto import dtypes
from proto.codec import NamedArray
from proto.errors import MsparityError, NotFound, PermissionDenied

NPY_SUFFIX = ".npy"


class NpyFileError(MsparityError):
    """A file that is not a readable numeric .npy array; names the file."""


@dataclass(frozen=True)
class NpyEntry:
    """One .npy file of a directory, described from its header (no data read)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    ctime: float


def _header(handle, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(handle)
        shape, _fortran, dtype = np.lib.format._read_array_header(handle, version)
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise NpyFileError(f"{path}: not a .npy array file ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    if dtype.hasobject:
        raise NpyFileError(f"{path}: holds Python objects (a pickled array); only numeric arrays are read")
    return tuple(int(n) for n in shape), dtype


def _wire_dtype(dtype: np.dtype, path: Path) -> str:
    try:
        return dtypes.wire_dtype_from_numpy(dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype)
    except dtypes.UnknownDtypeError as exc:
        raise NpyFileError(f"{path}: {exc}") from None


def describe_npy(path: Path) -> NpyEntry:
    """The file's name, wire dtype, shape and size, from its header alone."""
    try:
        with open(path, "rb") as handle:
            shape, dtype = _header(handle, path)
            stat = os.fstat(handle.fileno())
    except FileNotFoundError:
        raise NpyFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NpyFileError(f"{path}: is a directory, not a .npy file") from None
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return NpyEntry(path.name, _wire_dtype(dtype, path), shape, nbytes, stat.st_ctime)


def load_npy(path: Path, name: str | None = None) -> NamedArray:
    """The array in a .npy file (numeric only; pickled object arrays are refused)."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise NpyFileError(f"{path}: no such file") from None
    except ValueError as exc:
        reason = "holds Python objects (a pickled array); only numeric arrays are read" if "pickle" in str(exc) else (
            f"not a .npy array file ({str(exc).splitlines()[0]})")
        raise NpyFileError(f"{path}: {reason}") from None
    except (OSError, EOFError) as exc:
        raise NpyFileError(f"{path}: cannot read ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise NpyFileError(f"{path}: an .npz archive, not a .npy array")
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return NamedArray(name or path.name, array, _wire_dtype(array.dtype, path))


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write array to path as .npy, atomically (a reader never sees half a file).

    No fsync: saves run inside training loops, and a crash leaves either the old file or none.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def list_npy_dir(directory: Path) -> list[NpyEntry]:
    """The .npy files directly inside directory, described by header, in name order."""
    if not directory.is_dir():
        raise NpyFileError(f"{directory}: not a directory (or it does not exist)")
    files = sorted(p for p in directory.iterdir() if p.suffix == NPY_SUFFIX and p.is_file())
    return [describe_npy(p) for p in files]


class ServedRoots:
    """The directories a worker was started with; every request is confined to them.

    A request names a directory relative to a root (``grads`` or ``root-name/grads``) or by a root's
    own absolute path (or a path under it). ``..`` components and symlinks that lead out are refused.
    """

    def __init__(self, roots: list[Path]):
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        for given, real in zip(roots, self.roots):
            if not real.is_dir():
                raise NpyFileError(f"--serve-dir {given}: not a directory (or it does not exist)")

    def _inside(self, real: Path) -> bool:
        return any(real == root or root in real.parents for root in self.roots)

    def resolve_dir(self, requested: str) -> Path:
        """The real directory a request names, if it lies inside a served root."""
        if not self.roots:
            raise PermissionDenied("this worker serves no directories; start it with --serve-dir DIR")
        if ".." in Path(requested).parts:
            raise PermissionDenied(f"{requested!r}: '..' is not allowed in a served path")
        candidates = [Path(requested)] if os.path.isabs(requested) else [root / requested for root in self.roots]
        for candidate in candidates:
            real = Path(os.path.realpath(candidate))
            if not self._inside(real):
                continue
            if real.is_dir():
                return real
        if os.path.isabs(requested) and not any(self._inside(Path(os.path.realpath(c))) for c in candidates):
            raise PermissionDenied(f"{requested!r} is outside the served directories ({self.describe()})")
        if any(os.path.lexists(c) for c in candidates):
            raise PermissionDenied(f"{requested!r} is not a directory inside the served directories ({self.describe()})")
        raise NotFound(f"{requested!r}: no such directory under the served directories ({self.describe()})")

    def resolve_file(self, directory: Path, name: str) -> Path:
        """A .npy file directly inside a resolved directory, if it really lies inside a root."""
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise PermissionDenied(f"{name!r}: a file name, not a path, is expected")
        if not name.endswith(NPY_SUFFIX):
            name += NPY_SUFFIX
        real = Path(os.path.realpath(directory / name))
        if not self._inside(real):
            raise PermissionDenied(f"{name!r} leads outside the served directories")
        if not real.is_file():
            raise NotFound(f"{directory / name}: no such .npy file")
        return real

    def list_dir(self, requested: str) -> tuple[Path, list[NpyEntry]]:
        """The directory a request names and its .npy files; symlinks that lead out are left out."""
        directory = self.resolve_dir(requested)
        files = sorted(p for p in directory.iterdir() if p.suffix == NPY_SUFFIX)
        inside = [p for p in files if self._inside(Path(os.path.realpath(p))) and p.is_file()]
        return directory, [describe_npy(p) for p in inside]

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots)
