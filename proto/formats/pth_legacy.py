"""torch's legacy (non-zip) ``.pth`` format, read without torch.

Written by ``torch.save(..., _use_new_zipfile_serialization=False)`` and by torch < 1.6.

The file is a run of pickles followed by raw storage bytes (torch/serialization.py ``_legacy_save``):
the magic number, the protocol version, a sys_info dict, the object itself (storages as persistent ids
``('storage', storage_type, root_key, location, numel, view_metadata)``), the sorted list of storage
keys, then per key an int64 little-endian element count and that many little-endian elements.

Every pickle goes through pth's restricted unpickler, read exactly (no read-ahead) and capped at
MAX_PICKLE_BYTES, so neither a refused class nor a forged length gets anywhere. The storages are only
scanned here (their file offsets recorded); PthReader maps the file and reads one tensor at a time.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import BinaryIO

from proto import dtypes
from proto.formats.pth import (
    MAX_PICKLE_BYTES,
    PthFormatError,
    UntrustedPickleError,
    _RestrictedUnpickler,
    _state_dict,
    _Storage,
    _StorageType,
    _TensorRef,
)

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
# the magic number as each pickle protocol writes it (torch.save's pickle_protocol, default 2)
_MAGIC_PICKLES = tuple(pickle.dumps(MAGIC_NUMBER, protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1))
_HEAD_BYTES = 512  # enough for any magic pickle and for a tar header's "ustar" mark at 257
_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, RecursionError)


def is_legacy(file: BinaryIO, path: Path) -> bool:
    """Whether the file starts with the legacy magic number; refuses torch's oldest (tar) format."""
    file.seek(0)
    head = file.read(_HEAD_BYTES)
    file.seek(0)
    if head[257:262] == b"ustar":
        raise PthFormatError(f"{path}: a tar archive (torch's oldest .pth format) is not supported; "
                             "re-save it with torch.save(state_dict, path) from a newer torch")
    return head.startswith(_MAGIC_PICKLES)


class _PickleStream:
    """The file's leading pickles, read exactly where the unpickler asks and no further than the file's end
    or MAX_PICKLE_BYTES, whichever comes first: a forged length reads nothing past them."""

    def __init__(self, file: BinaryIO, path: Path, size: int):
        self._file, self._path, self._size = file, path, size
        self.pos = 0

    def _check(self, n: int) -> None:
        if self.pos + n > min(self._size, MAX_PICKLE_BYTES):
            if self.pos + n > self._size:
                raise PthFormatError(f"{self._path}: truncated legacy checkpoint (its pickle runs past the end)")
            raise PthFormatError(f"{self._path}: legacy checkpoint's pickles exceed {MAX_PICKLE_BYTES} bytes; "
                                 "too large for a state dict")

    def read(self, n: int) -> bytes:
        self._check(n)
        data = self._file.read(n)
        self.pos += len(data)
        return data

    def readline(self) -> bytes:
        line = self._file.readline(min(self._size, MAX_PICKLE_BYTES) - self.pos + 1)
        self._check(len(line))
        self.pos += len(line)
        return line


class _LegacyUnpickler(_RestrictedUnpickler):
    """The restricted unpickler, with legacy storage ids: 6-tuples whose storages may be views of a root."""

    def __init__(self, file, path: Path):
        super().__init__(file, path)
        self.roots: dict[str, tuple[str, int]] = {}  # root storage key -> (wire dtype, element count)

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and pid and pid[0] == "module":
            raise UntrustedPickleError(f"{self._path}: refused to unpickle a module class: the file holds more "
                                       "than tensors (a pickled model?); save net.state_dict() instead")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise PthFormatError(f"{self._path}: unexpected storage reference {pid!r:.80}")
        dtype, key, numel = pid[1].dtype, str(pid[2]), int(pid[4])
        if numel < 0:
            raise PthFormatError(f"{self._path}: storage {key} has a negative size")
        if self.roots.setdefault(key, (dtype, numel)) != (dtype, numel):
            raise PthFormatError(f"{self._path}: storage {key} is referenced with two types or sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _Storage(key, dtype, numel)
        if not (isinstance(view, tuple) and len(view) == 3):
            raise PthFormatError(f"{self._path}: unexpected storage view {view!r:.80}")
        offset, size = int(view[1]), int(view[2])
        if offset < 0 or size < 0 or offset + size > numel:
            raise PthFormatError(f"{self._path}: storage view {view[0]} runs outside storage {key}")
        return _Storage(key, dtype, size, offset)


def _load(unpickler: _RestrictedUnpickler, path: Path, what: str):
    try:
        return unpickler.load()
    except PthFormatError:
        raise
    except _CORRUPT as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise PthFormatError(f"{path}: corrupt legacy checkpoint {what} ({detail})") from None


def load_index(file: BinaryIO, path: Path, key: str | None) -> tuple[dict[str, _TensorRef], dict[str, int]]:
    """The state dict's tensors and, per root storage key, the file offset of its bytes (nothing is read)."""
    size = file.seek(0, 2)
    file.seek(0)
    stream = _PickleStream(file, path, size)
    if _load(_RestrictedUnpickler(stream, path), path, "magic number") != MAGIC_NUMBER:
        raise PthFormatError(f"{path}: not a torch legacy checkpoint (wrong magic number)")
    version = _load(_RestrictedUnpickler(stream, path), path, "protocol version")
    if version != PROTOCOL_VERSION:
        raise PthFormatError(f"{path}: torch legacy protocol version {version!r:.20} is not supported "
                             f"(expected {PROTOCOL_VERSION})")
    sys_info = _load(_RestrictedUnpickler(stream, path), path, "sys_info")
    if not isinstance(sys_info, dict):
        raise PthFormatError(f"{path}: corrupt legacy checkpoint (sys_info is a {type(sys_info).__name__})")
    if sys_info.get("little_endian") is False:
        raise PthFormatError(f"{path}: written on a big-endian machine; re-save it there with "
                             "torch.save(state_dict, path) from torch >= 1.6")
    unpickler = _LegacyUnpickler(stream, path)
    top = _load(unpickler, path, "pickle")
    keys = _load(_RestrictedUnpickler(stream, path), path, "storage list")
    if not isinstance(keys, list):
        raise PthFormatError(f"{path}: corrupt legacy checkpoint (storage list is a {type(keys).__name__})")

    spans: dict[str, int] = {}
    pos = stream.pos
    for storage_key in map(str, keys):
        if storage_key not in unpickler.roots or storage_key in spans:
            raise PthFormatError(f"{path}: corrupt legacy checkpoint (unexpected storage {storage_key!r:.40})")
        dtype, numel = unpickler.roots[storage_key]
        file.seek(pos)
        header = file.read(8)
        count = int.from_bytes(header, "little", signed=True)
        end = pos + 8 + count * dtypes.numpy_dtype_from_wire(dtype).itemsize
        if len(header) < 8 or count < 0 or end > size:
            raise PthFormatError(f"{path}: truncated legacy checkpoint (storage {storage_key} runs past the end)")
        if count != numel:
            raise PthFormatError(f"{path}: corrupt legacy checkpoint (storage {storage_key} holds {count} "
                                 f"elements, its tensors expect {numel})")
        spans[storage_key] = pos + 8
        pos = end
    missing = unpickler.roots.keys() - spans.keys()
    if missing:
        raise PthFormatError(f"{path}: corrupt legacy checkpoint (no data for storage {sorted(missing)[0]})")
    return _state_dict(top, path, key), spans
