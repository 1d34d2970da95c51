"""torch ``.pth`` state dicts without torch (LAYER_FACTS.md section 3).

A restricted unpickler admits only torch's tensor-rebuild functions and storage types, mapped to
inert stand-ins; anything else (a pickled nn.Module, a code-executing reduce) is refused before it
is called. Tensors are read lazily from the zip's storage entries (or, for torch's legacy non-zip
format, from the storage bytes after the pickles: see pth_legacy), one at a time.
"""

from __future__ import annotations

import io
import math
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
from proto.codec import NamedArray, TensorSpec
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
    offset: int = 0  # legacy storage views: where this storage starts in its root storage, in elements


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


class _UnsupportedDtype(ValueError):
    """A tensor of a torch dtype the wire has no form for."""


@dataclass(frozen=True)
class _Dtype:
    wire: str | None  # None: a torch dtype with no wire form (float8)
    torch_name: str


# torch dtype name -> wire dtype, for _rebuild_tensor_v3 (torch >= 2.3 writes uint16/32/64 and float8 this way)
WIRE_FROM_TORCH_DTYPE = {
    "float32": "float32", "float64": "float64", "float16": "float16", "bfloat16": dtypes.BFLOAT16,
    "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
    "complex64": "complex64", "complex128": "complex128", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
}
UNSUPPORTED_TORCH_DTYPES = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu")


def _rebuild_tensor_v3(storage, storage_offset, size, stride, _requires_grad=False, _hooks=None, dtype=None, *_ignored):
    """torch's rebuild for an untyped (byte) storage read as ``dtype``."""
    if not isinstance(dtype, _Dtype) or not isinstance(storage, _Storage):
        raise ValueError(f"_rebuild_tensor_v3 with dtype {dtype!r:.40}")
    if dtype.wire is None:
        raise _UnsupportedDtype(f"a torch.{dtype.torch_name} tensor: msparity has no {dtype.torch_name} on the wire; "
                         "convert it (e.g. .to(torch.float32)) before saving")
    itemsize = dtypes.numpy_dtype_from_wire(dtype.wire).itemsize
    typed = _Storage(storage.key, dtype.wire, storage.numel // itemsize, storage.offset // itemsize)
    return _rebuild_tensor(typed, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,  # torch < 0.4 (legacy files)
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="utf-8")  # as torch.load: Python 2 str pickles as text
        self._path = path

    def find_class(self, module: str, name: str):
        if module == "torch" and name in WIRE_FROM_STORAGE:
            return _StorageType(WIRE_FROM_STORAGE[name])
        if (module, name) == ("torch.storage", "UntypedStorage"):
            return _StorageType("uint8")  # bytes; _rebuild_tensor_v3 says what they hold
        if module == "torch" and (name in WIRE_FROM_TORCH_DTYPE or name in UNSUPPORTED_TORCH_DTYPES):
            return _Dtype(WIRE_FROM_TORCH_DTYPE.get(name), name)
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
    for name, ref in tensors.items():
        _check_ref(path, name, ref)
    if not tensors:
        nested = [str(k) for k, v in top.items() if isinstance(v, dict)]
        hint = f"; pick the state dict with key= / --pth-key (one of {nested})" if nested else ""
        raise PthFormatError(f"{path}: no tensors at the top level (keys {list(top)[:10]}){hint}")
    return tensors


MAX_VIEW_BYTES = 1 << 30  # a view larger than its storage (stride 0) may claim this much before it is refused


def _check_ref(path: Path, name: str, ref: _TensorRef) -> None:
    """Refuse a crafted or damaged view before anything is allocated for it."""
    if len(ref.shape) != len(ref.stride) or any(n < 0 for n in ref.shape) or any(s < 0 for s in ref.stride):
        raise PthFormatError(f"{path}: tensor {name!r}: size {list(ref.shape)} / stride {list(ref.stride)} is not a "
                             "tensor (negative or mismatched); the file is damaged")
    count = math.prod(ref.shape)
    nbytes = count * dtypes.numpy_dtype_from_wire(ref.storage.dtype).itemsize
    if count > ref.storage.numel and nbytes > MAX_VIEW_BYTES:
        raise PthFormatError(f"{path}: tensor {name!r}: a {nbytes / 2**30:.1f} GiB view of a {ref.storage.numel}-element "
                             "storage (stride 0); the file is damaged or crafted")


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _tensor_from_storage(path: Path, name: str, ref: _TensorRef, raw, big_endian: bool = False) -> NamedArray:
    """One tensor from its storage's bytes: a read-only view of them when it is the whole storage in C order,
    else a C-contiguous copy (views of a shared storage are resolved)."""
    storage = ref.storage
    np_dtype = dtypes.numpy_dtype_from_wire(storage.dtype)
    if len(raw) != storage.numel * np_dtype.itemsize:
        raise PthFormatError(f"{path}: tensor {name!r}: storage holds {len(raw)} bytes, "
                             f"expected {storage.numel * np_dtype.itemsize}")
    count = int(np.prod(ref.shape, dtype=np.int64))
    extent = ref.offset + 1 + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride)) if count else 0
    if count and (ref.offset < 0 or extent > storage.numel or min(ref.stride, default=0) < 0):
        raise PthFormatError(f"{path}: tensor {name!r}: view runs outside its storage")
    flat = np.frombuffer(raw, dtype=np_dtype.newbyteorder(">") if big_endian else np_dtype)
    if not count:
        return NamedArray(name, np.empty(ref.shape, np_dtype), storage.dtype)
    if ref.offset == 0 and count == storage.numel and ref.stride == _c_strides(ref.shape) and not big_endian:
        return NamedArray(name, flat.reshape(ref.shape), storage.dtype)  # read-only view of the mapped file
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset:], shape=ref.shape, strides=tuple(s * np_dtype.itemsize for s in ref.stride))
    return NamedArray(name, np.array(view, dtype=np_dtype, order="C"), storage.dtype)


class PthReader:
    """Reads a torch .pth state dict (zip, or torch's legacy non-zip format) tensor by tensor;
    ``specs()`` reads no tensor data."""

    def __init__(self, path: str | Path, key: str | None = None):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._legacy_spans: dict[str, int] = {}  # legacy format: root storage key -> file offset of its bytes
        self._last_range: tuple[int, int] | None = None
        try:
            self._raw = open(self.path, "rb")
        except FileNotFoundError:
            raise PthFormatError(f"{self.path}: no such file") from None
        except OSError as exc:
            raise PthFormatError(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            try:
                self._zip = zipfile.ZipFile(self._raw)
            except zipfile.BadZipFile:
                self._tensors = self._load_legacy_index(key)
            except OSError as exc:
                raise PthFormatError(f"{self.path}: cannot read ({exc.strerror})") from None
            else:
                self._tensors = self._load_index(key)
            self._map = mmap.mmap(self._raw.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._close_files()
            raise

    def _load_legacy_index(self, key: str | None) -> dict[str, _TensorRef]:
        from proto.formats import pth_legacy  # the rare path; it builds on this module

        if not pth_legacy.is_legacy(self._raw, self.path):
            raise PthFormatError(f"{self.path}: not a torch zip checkpoint nor a legacy one (truncated, or another "
                                 "format)")
        tensors, self._legacy_spans = pth_legacy.load_index(self._raw, self.path, key)
        return tensors

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
        except _UnsupportedDtype as exc:
            raise PthFormatError(f"{self.path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                zipfile.BadZipFile, OSError, RecursionError, MemoryError) as exc:
            raise PthFormatError(f"{self.path}: corrupt data.pkl ({type(exc).__name__}: {exc})") from None
        return _state_dict(top, self.path, key)

    def specs(self) -> list[TensorSpec]:
        return [TensorSpec(name, ref.storage.dtype, ref.shape) for name, ref in self._tensors.items()]

    def read(self, name: str) -> NamedArray:
        """One tensor: a read-only view of the mapped file where it is a whole storage, else a C-contiguous copy."""
        ref = self._tensors.get(name)
        if ref is None:
            raise PthFormatError(f"{self.path}: no tensor {name!r}")
        storage = ref.storage
        if self._zip is None:  # legacy: the storage's bytes lie in the file at a scanned offset, little-endian
            itemsize = dtypes.numpy_dtype_from_wire(storage.dtype).itemsize
            start, length = self._legacy_spans[storage.key] + storage.offset * itemsize, storage.numel * itemsize
            self._last_range = (start, length) if length else None
            return _tensor_from_storage(self.path, name, ref, memoryview(self._map)[start : start + length])
        try:
            info = self._zip.getinfo(f"{self._root}data/{storage.key}")
        except KeyError:
            raise PthFormatError(f"{self.path}: tensor {name!r}: storage {storage.key} is missing") from None
        try:
            raw = self._storage_bytes(info, name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise PthFormatError(f"{self.path}: tensor {name!r}: cannot read its storage ({exc})") from None
        return _tensor_from_storage(self.path, name, ref, raw, self._big_endian)

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

    def _close_files(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._raw.close()

    def close(self) -> None:
        try:
            self._map.close()
        except BufferError:
            pass  # arrays handed out still view the map; it is released with the last of them
        self._close_files()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_pth(path: str | Path, key: str | None = None) -> dict[str, NamedArray]:
    """Every tensor of a .pth state dict, as copies (convenience; holds them all)."""
    with PthReader(path, key) as reader:
        return {t.name: NamedArray(t.name, np.array(t.array), t.dtype) for t in reader}
