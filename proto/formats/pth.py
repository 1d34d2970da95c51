"""torch ``.pth`` state dicts without torch (LAYER_FACTS.md section 3).

A restricted unpickler admits only torch's tensor-rebuild functions and storage types, mapped to
inert stand-ins; anything else (a pickled nn.Module, a code-executing reduce) is refused before it
is called. Tensors are read lazily from the zip's storage entries, one at a time.
"""

from __future__ import annotations

import io
import mmap
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto import dtypes
from proto.adapter import TensorSpec
from proto.codec import NamedArray
from proto.errors import MsparityError

# torch storage class name -> wire dtype
WIRE_FROM_STORAGE = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": dtypes.BFLOAT16, "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "UInt16Storage": "uint16", "UInt32Storage": "uint32", "UInt64Storage": "uint64",
}
MAX_PICKLE_BYTES = 256 << 20


class PthFormatError(MsparityError):
    """A .pth that cannot be read as a state dict; names the file (and tensor) and what to do."""


class UntrustedPickleError(PthFormatError):
    """The pickle references something besides tensors; it was refused before running."""


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if module == "torch" and name in WIRE_FROM_STORAGE:
            return _StorageType(WIRE_FROM_STORAGE[name])
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise UntrustedPickleError(
                f"{self._path}: refused to unpickle '{module}.{name}': the file holds more than tensors "
                "(a pickled model?); save net.state_dict() instead, or load it on a pt worker if you trust it"
            )
        return allowed

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise PthFormatError(f"{self._path}: unexpected storage reference {pid!r:.80}")
        return _Storage(str(pid[2]), pid[1].dtype, int(pid[4]))


def _state_dict(top: object, path: Path, key: str | None) -> dict[str, _TensorRef]:
    if key is not None:
        if not isinstance(top, dict) or key not in top:
            keys = list(top) if isinstance(top, dict) else type(top).__name__
            raise PthFormatError(f"{path}: no entry {key!r} at the top level (it has {keys})")
        top = top[key]
    if not isinstance(top, dict):
        raise PthFormatError(f"{path}: holds a {type(top).__name__}, not a state dict")
    tensors = {str(k): v for k, v in top.items() if isinstance(v, _TensorRef)}
    if not tensors:
        nested = [str(k) for k, v in top.items() if isinstance(v, dict)]
        hint = f"; pick the state dict with key= / --pth-key (one of {nested})" if nested else ""
        raise PthFormatError(f"{path}: no tensors at the top level (keys {list(top)[:10]}){hint}")
    return tensors


class PthReader:
    """Reads a zip-format torch .pth state dict tensor by tensor; ``specs()`` reads no tensor data."""

    def __init__(self, path: str | Path, key: str | None = None):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise PthFormatError(f"{self.path}: no such file") from None
        except zipfile.BadZipFile:
            raise PthFormatError(
                f"{self.path}: not a torch zip checkpoint (truncated, another format, or torch's legacy "
                "format: re-save it with torch.save(state_dict, path) from torch >= 1.6)"
            ) from None
        except OSError as exc:
            raise PthFormatError(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            self._tensors = self._load_index(key)
            self._last_range: tuple[int, int] | None = None
            self._raw = open(self.path, "rb")
            self._map = mmap.mmap(self._raw.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._zip.close()
            raise

    def _storage_bytes(self, info: zipfile.ZipInfo, name: str):
        """The storage's bytes: a zero-copy slice of the memory-mapped file for stored (uncompressed) entries."""
        if info.compress_type == zipfile.ZIP_STORED:
            header = self._map[info.header_offset : info.header_offset + 30]
            if header[:4] != b"PK\x03\x04":
                raise PthFormatError(f"{self.path}: tensor {name!r}: bad zip entry header")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            if start + info.file_size > len(self._map):
                raise PthFormatError(f"{self.path}: tensor {name!r}: storage runs past the end (truncated file?)")
            self._last_range = (start, info.file_size)
            return memoryview(self._map)[start : start + info.file_size]
        with self._zip.open(info) as handle:
            return handle.read()

    def _load_index(self, key: str | None) -> dict[str, _TensorRef]:
        pickles = [n for n in self._zip.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise PthFormatError(f"{self.path}: no data.pkl inside; not a torch checkpoint")
        self._root = pickles[0][: -len("data.pkl")]
        info = self._zip.getinfo(pickles[0])
        if info.file_size > MAX_PICKLE_BYTES:
            raise PthFormatError(f"{self.path}: data.pkl is {info.file_size} bytes; too large for a state dict")
        byteorder = f"{self._root}byteorder"
        self._big_endian = byteorder in self._zip.namelist() and self._zip.read(byteorder).strip() == b"big"
        try:
            top = _RestrictedUnpickler(io.BytesIO(self._zip.read(pickles[0])), self.path).load()
        except PthFormatError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                zipfile.BadZipFile, OSError) as exc:
            raise PthFormatError(f"{self.path}: corrupt data.pkl ({type(exc).__name__}: {exc})") from None
        return _state_dict(top, self.path, key)

    def specs(self) -> list[TensorSpec]:
        return [TensorSpec(name, ref.storage.dtype, ref.shape) for name, ref in self._tensors.items()]

    def read(self, name: str) -> NamedArray:
        """One tensor, as a C-contiguous copy (views of a shared storage are resolved)."""
        ref = self._tensors.get(name)
        if ref is None:
            raise PthFormatError(f"{self.path}: no tensor {name!r}")
        storage = ref.storage
        np_dtype = dtypes.numpy_dtype_from_wire(storage.dtype)
        entry = f"{self._root}data/{storage.key}"
        try:
            info = self._zip.getinfo(entry)
        except KeyError:
            raise PthFormatError(f"{self.path}: tensor {name!r}: storage {storage.key} is missing") from None
        if info.file_size != storage.numel * np_dtype.itemsize:
            raise PthFormatError(f"{self.path}: tensor {name!r}: storage holds {info.file_size} bytes, "
                                 f"expected {storage.numel * np_dtype.itemsize}")
        count = int(np.prod(ref.shape, dtype=np.int64))
        extent = ref.offset + 1 + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride)) if count else 0
        if count and (ref.offset < 0 or extent > storage.numel or min(ref.stride, default=0) < 0):
            raise PthFormatError(f"{self.path}: tensor {name!r}: view runs outside its storage")
        try:
            raw = self._storage_bytes(info, name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise PthFormatError(f"{self.path}: tensor {name!r}: cannot read its storage ({exc})") from None
        flat = np.frombuffer(raw, dtype=np_dtype.newbyteorder(">") if self._big_endian else np_dtype)
        if not count:
            return NamedArray(name, np.empty(ref.shape, np_dtype), storage.dtype)
        c_strides = tuple(int(s) for s in np.empty(ref.shape, dtype=np.int8).strides)
        if ref.offset == 0 and count == storage.numel and ref.stride == c_strides and not self._big_endian:
            return NamedArray(name, flat.reshape(ref.shape), storage.dtype)  # read-only view of the mapped file
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.shape, strides=tuple(s * np_dtype.itemsize for s in ref.stride))
        return NamedArray(name, np.array(view, dtype=np_dtype, order="C"), storage.dtype)

    def __iter__(self) -> Iterator[NamedArray]:
        """Tensors in file order; a consumed tensor's mapped pages leave this process's RSS."""
        for name in self._tensors:
            self._last_range = None
            tensor = self.read(name)
            mapped = self._last_range
            yield tensor
            if mapped is not None:
                self._release(*mapped)

    def _release(self, start: int, length: int) -> None:
        # The map is read-only and file-backed: dropped pages fault back in from the file if touched.
        aligned = start - start % mmap.PAGESIZE
        if hasattr(self._map, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED, aligned, length + start - aligned)

    def close(self) -> None:
        self._zip.close()
        try:
            self._map.close()
        except BufferError:
            pass  # arrays handed out still view the map; it is released with the last of them
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_pth(path: str | Path, key: str | None = None) -> dict[str, NamedArray]:
    """Every tensor of a .pth state dict, as copies (convenience; holds them all)."""
    with PthReader(path, key) as reader:
        return {t.name: NamedArray(t.name, np.array(t.array), t.dtype) for t in reader}
