"""Read a torch.save state dict (zip or legacy format) without importing torch.

The pickle inside is loaded by a restricted unpickler that resolves only the globals a state dict
needs, each to an inert stand-in; any other global raises UntrustedPickleError before it can run.
Tensors are built lazily: specs() reads no tensor bytes, read() holds one storage and its copy.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from coordinator.errors import MsparityError
from proto import dtypes
from proto.adapter import TensorSpec
from proto.codec import NamedArray
from proto.errors import one_line

__all__ = ["PthFormatError", "UntrustedPickleError", "PthReader", "read_pth"]

_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_MAGIC_BYTES = b"\x8a\x0a" + _LEGACY_MAGIC.to_bytes(10, "little")  # its LONG1 opcode
_LEGACY_PROTOCOL = 1001


class PthFormatError(MsparityError):
    """The file is not a readable torch state dict; the one-line message names the file and the fix."""


class UntrustedPickleError(PthFormatError):
    """The pickle names a global outside the state-dict allow-list; nothing of it was run."""


class _Inert:
    """Base of the stand-ins: a pickle may not set their state (BUILD)."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"the pickle tried to set the state of a {type(self).__name__[1:]}")


class _StorageType(_Inert):
    __slots__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = dtype


class _DType(_Inert):
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Storage(_Inert):
    """Bytes [byte_offset, byte_offset + nbytes) of the root storage ``key`` (root_nbytes long)."""

    __slots__ = ("key", "dtype", "root_nbytes", "byte_offset", "nbytes")

    def __init__(self, key: str, dtype: str, root_nbytes: int, byte_offset: int, nbytes: int):
        self.key, self.dtype, self.root_nbytes = key, dtype, root_nbytes
        self.byte_offset, self.nbytes = byte_offset, nbytes


class _TensorRef(_Inert):
    __slots__ = ("storage", "offset", "size", "stride", "dtype")

    def __init__(self, storage, offset, size, stride, dtype: str):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor was rebuilt from something that is not a storage")
        self.storage, self.offset, self.size, self.stride, self.dtype = storage, offset, size, stride, dtype


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, size, stride, getattr(storage, "dtype", ""))


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    if not isinstance(dtype, _DType):
        raise pickle.UnpicklingError("_rebuild_tensor_v3 without a dtype")
    return _TensorRef(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError("a Parameter was rebuilt from something that is not a tensor")
    return data


_ALLOWED: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): lambda dims=(): tuple(dims),
    ("torch.storage", "UntypedStorage"): _StorageType("uint8"),
    ("torch", "UntypedStorage"): _StorageType("uint8"),
}
_ALLOWED.update({("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()})
_ALLOWED.update({("torch", name): _DType(name) for name in dtypes.WIRE_DTYPES})


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, reader: PthReader):
        super().__init__(file)
        self._reader = reader

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UntrustedPickleError(
                f"{self._reader.label}: refused to unpickle '{module}.{name}' — the file holds more than "
                "tensors (a pickled model?); save net.state_dict() instead, or pass trust_pickle=True / "
                "--trust-pickle to load it on a pt worker")
        return found

    def persistent_load(self, pid):
        return self._reader._storage_from_pid(pid)


def _ints(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"{what} {value!r} is not a tuple of non-negative ints")
    return tuple(value)


class PthReader:
    """A torch ``.pth`` state dict, opened lazily; use as a context manager."""

    def __init__(self, path, key: str | None = None):
        self.path = Path(path)
        self.label = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._file = None
        self._prefix = ""  # "<root>/data/" of a zip
        self._big = False
        self._roots: dict[str, tuple[int, int]] = {}  # storage key -> (root nbytes, itemsize)
        self._legacy_offsets: dict[str, int] = {}
        try:
            self._refs = self._select(self._open(), key)
            for name, ref in self._refs.items():
                self._check(name, ref)
        except BaseException:
            self.close()
            raise

    def _fail(self, what: str) -> PthFormatError:
        return PthFormatError(one_line(f"{self.label}: {what}"))

    def _open(self):
        try:
            with open(self.path, "rb") as f:
                head = f.read(64)
        except OSError as exc:
            raise self._fail(f"cannot open ({exc.strerror or exc})") from None
        if head.startswith(b"PK"):
            return self._open_zip()
        if head.startswith(b"\x80") and _LEGACY_MAGIC_BYTES in head[:16]:
            return self._open_legacy()
        kind = "empty" if not head else "a .npy array" if head.startswith(b"\x93NUMPY") else "unrecognised data"
        raise self._fail(f"not a torch .pth file ({kind}: neither torch.save's zip format nor its legacy "
                         "format); save the state dict with torch.save(net.state_dict(), path)")

    def _unpickle(self, f, what: str):
        try:
            return _Unpickler(f, self).load()
        except PthFormatError:
            raise
        except Exception as exc:
            raise self._fail(f"cannot unpickle {what} ({type(exc).__name__}: {exc}); the file is damaged "
                             "or not written by torch.save") from None

    def _open_zip(self):
        try:
            self._zip = zipfile.ZipFile(self.path)
            names = self._zip.namelist()
            pkls = sorted((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), key=lambda n: n.count("/"))
            if not pkls:
                raise self._fail("zip archive without <root>/data.pkl, so not written by torch.save; re-save it "
                                 "with torch.save(net.state_dict(), path)")
            root = pkls[0][: -len("data.pkl")]
            self._prefix = root + "data/"
            if root + "byteorder" in names:
                order = self._zip.read(root + "byteorder").strip()
                if order not in (b"little", b"big"):
                    raise self._fail(f"unknown byteorder {order!r} in the archive; re-save it with torch.save")
                self._big = order == b"big"
            else:
                self._big = sys.byteorder == "big"
            data = self._zip.read(pkls[0])
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise self._fail(f"truncated or damaged zip archive ({exc}); re-save or re-download it") from None
        return self._unpickle(io.BytesIO(data), "data.pkl")

    def _open_legacy(self):
        f = self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        if self._unpickle(f, "the magic number") != _LEGACY_MAGIC or \
                self._unpickle(f, "the protocol version") != _LEGACY_PROTOCOL:
            raise self._fail("unsupported legacy torch.save format; re-save it with torch.save defaults")
        sys_info = self._unpickle(f, "sys_info")
        self._big = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
        obj = self._unpickle(f, "the saved object")
        keys = self._unpickle(f, "the storage keys")
        if not isinstance(keys, list):
            raise self._fail("damaged legacy file (storage key list missing); re-save it with torch.save")
        offset, end = f.tell(), self.path.stat().st_size
        for key in keys:
            f.seek(offset)
            header = f.read(8)
            numel = int.from_bytes(header, "big" if self._big else "little", signed=True)
            nbytes, itemsize = self._roots.get(key, (end, 1))
            if len(header) < 8 or offset + 8 + nbytes > end:
                raise self._fail(f"legacy file truncated or damaged at storage {key!r}; re-save it with torch.save")
            if numel * itemsize != nbytes:
                raise self._fail(f"legacy storage {key!r} holds {numel} elements, not the {nbytes} bytes its "
                                 "tensors need; re-save the file")
            self._legacy_offsets[key] = offset + 8
            offset += 8 + nbytes
        return obj

    def _storage_from_pid(self, pid) -> _Storage:
        if not isinstance(pid, tuple) or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        kind, stype, key, _location, numel, *view = pid
        kind = kind.decode("ascii") if isinstance(kind, bytes) else kind
        if kind != "storage" or not isinstance(stype, _StorageType) or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        itemsize = dtypes.numpy_dtype_from_wire(stype.dtype).itemsize
        key, root_nbytes = str(key), numel * itemsize
        if self._roots.setdefault(key, (root_nbytes, itemsize))[0] != root_nbytes:
            raise pickle.UnpicklingError(f"storage {key!r} is given two sizes")
        if not view or view[0] is None:
            return _Storage(key, stype.dtype, root_nbytes, 0, root_nbytes)
        # a legacy storage view: (view_key, offset, size) in elements of the root storage
        if not isinstance(view[0], tuple) or len(view[0]) != 3:
            raise pickle.UnpicklingError(f"unexpected storage view {view[0]!r:.80}")
        start, count = _ints(view[0][1:], "storage view")
        if start + count > numel:
            raise pickle.UnpicklingError(f"a view of storage {key!r} reaches past its end")
        return _Storage(key, stype.dtype, root_nbytes, start * itemsize, count * itemsize)

    def _select(self, obj, key: str | None) -> dict[str, _TensorRef]:
        if key is not None:
            if not isinstance(obj, dict) or key not in obj:
                keys = ", ".join(map(repr, obj)) if isinstance(obj, dict) else "none"
                raise self._fail(f"no top-level key {key!r} (top-level keys: {keys}); pass one of them as key=")
            obj = obj[key]
        where = f"[{key!r}]" if key is not None else ""
        if isinstance(obj, _TensorRef):
            raise self._fail(f"holds a single tensor{where}, not a state dict; save {{'name': tensor}} instead")
        if not isinstance(obj, dict):
            raise self._fail(f"holds a {type(obj).__name__}{where}, not a state dict; save net.state_dict()")
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, _TensorRef)}
        if tensors:
            return tensors
        nested = [k for k, v in obj.items() if isinstance(v, dict) and any(isinstance(t, _TensorRef) for t in v.values())]
        if nested:
            keys = ", ".join(map(repr, obj))
            raise self._fail(f"the top level{where} is a checkpoint, not a state dict (keys: {keys}); pass "
                             f"key={nested[0]!r} to read the tensors under it")
        raise self._fail(f"holds no tensors{where}; save net.state_dict() with torch.save")

    def _check(self, name: str, ref: _TensorRef) -> None:
        """Refuse a tensor whose view reaches past its storage or whose storage bytes have the wrong size."""
        try:
            itemsize = dtypes.numpy_dtype_from_wire(ref.dtype).itemsize
            size, stride = _ints(ref.size, "size"), _ints(ref.stride, "stride")
            (offset,) = _ints((ref.offset,), "storage offset")
        except (ValueError, dtypes.UnknownDtypeError) as exc:
            raise self._fail(f"tensor {name!r}: {exc}; the file is damaged") from None
        storage = ref.storage
        elements, rest = divmod(storage.nbytes, itemsize)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if len(size) != len(stride) or rest or (math.prod(size) and last >= elements):
            raise self._fail(f"tensor {name!r}: size {list(size)}, stride {list(stride)} at offset {offset} do "
                             f"not fit its storage of {elements} {ref.dtype} elements; the file is damaged")
        if self._zip is not None:
            try:
                found = self._zip.getinfo(self._prefix + storage.key).file_size
            except KeyError:
                raise self._fail(f"tensor {name!r}: storage entry {self._prefix + storage.key!r} is missing from "
                                 "the archive; re-save the file") from None
            if found != storage.root_nbytes:
                raise self._fail(f"tensor {name!r}: storage entry {self._prefix + storage.key!r} holds {found} "
                                 f"bytes, not the {storage.root_nbytes} its header says; re-save the file")

    def _storage_bytes(self, name: str, storage: _Storage) -> bytes:
        try:
            if self._zip is not None:
                data = self._zip.read(self._prefix + storage.key)
            else:
                self._file.seek(self._legacy_offsets[storage.key] + storage.byte_offset)
                data = self._file.read(storage.nbytes)
        except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
            raise self._fail(f"tensor {name!r}: cannot read its storage ({exc}); the file is damaged") from None
        if len(data) != (storage.root_nbytes if self._zip is not None else storage.nbytes):
            raise self._fail(f"tensor {name!r}: its storage is truncated; the file is damaged")
        return data

    def specs(self) -> list[TensorSpec]:
        """Name, dtype and shape of every tensor, in file order, without reading tensor bytes."""
        return [TensorSpec(name, ref.dtype, tuple(ref.size)) for name, ref in self._refs.items()]

    def read(self, name: str) -> NamedArray:
        """One tensor as a C-contiguous little-endian array (bfloat16 as uint16 bits)."""
        if self._zip is None and self._file is None:
            raise self._fail(f"cannot read tensor {name!r}: the reader is closed")
        ref = self._refs.get(name)
        if ref is None:
            shown = ", ".join(list(self._refs)[:8]) + (", ..." if len(self._refs) > 8 else "")
            raise self._fail(f"no tensor {name!r}; the file has {len(self._refs)}: {shown}")
        dtype = dtypes.numpy_dtype_from_wire(ref.dtype)
        if not math.prod(ref.size):
            return NamedArray(name, np.zeros(tuple(ref.size), dtype), ref.dtype)
        file_dtype = dtype.newbyteorder(">" if self._big else "<")
        data = self._storage_bytes(name, ref.storage)
        start = ref.storage.byte_offset if self._zip is not None else 0
        base = np.frombuffer(data, file_dtype, ref.storage.nbytes // dtype.itemsize, start)[ref.offset:]
        strides = tuple(s * dtype.itemsize for s in ref.stride)
        view = np.lib.stride_tricks.as_strided(base, tuple(ref.size), strides, writeable=False)
        return NamedArray(name, np.array(view, dtype=dtype, order="C"), ref.dtype)  # the one copy

    def __iter__(self) -> Iterator[NamedArray]:
        """Every tensor in file order, one in memory at a time."""
        for name in list(self._refs):
            yield self.read(name)

    def __len__(self) -> int:
        return len(self._refs)

    def close(self) -> None:
        for handle in (self._zip, self._file):
            if handle is not None:
                handle.close()
        self._zip = self._file = None

    def __enter__(self) -> PthReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_pth(path, key: str | None = None) -> dict[str, NamedArray]:
    """Every tensor of a torch state dict file, by name, in file order."""
    with PthReader(path, key) as reader:
        return {tensor.name: tensor for tensor in reader}
