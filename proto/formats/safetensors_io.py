"""safetensors files, streamed: read through a memory map, written tensor by tensor.

The format (8-byte little-endian header length, a JSON header of dtype/shape/data_offsets, then
the raw bytes) is small and specified; we implement it here rather than use the safetensors
package because its numpy API cannot hold bfloat16 and its writer needs every tensor in memory
at once. Files are checked against the package in the tests.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from proto import dtypes
from proto.codec import NamedArray, TensorSpec
from proto.errors import MsparityError
from proto.formats.atomic import atomic_binary

ST_FROM_WIRE = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16", "int32": "I32",
    "uint32": "U32", "int64": "I64", "uint64": "U64", "float16": "F16", dtypes.BFLOAT16: "BF16",
    "float32": "F32", "float64": "F64", "complex64": "C64",
}
WIRE_FROM_ST = {st: wire for wire, st in ST_FROM_WIRE.items()}
MAX_HEADER_BYTES = 100 << 20


class SafetensorsFormatError(MsparityError):
    """A .safetensors file that cannot be read; names the file and tensor."""


def write_safetensors(path: str | Path, specs: list[TensorSpec], tensors: Iterable[NamedArray],
                      metadata: dict[str, str] | None = None) -> int:
    """Write tensors (which must arrive in specs' order, with specs' shapes) atomically; returns the count."""
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for spec in specs:
        nbytes = int(np.prod(spec.shape, dtype=np.int64)) * dtypes.numpy_dtype_from_wire(spec.dtype).itemsize
        header[spec.name] = {"dtype": ST_FROM_WIRE[spec.dtype], "shape": list(spec.shape),
                             "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # align the data to 8 bytes, as the reference writer does
    count = 0
    with atomic_binary(path) as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for spec, tensor in zip(specs, tensors):
            if (tensor.name, tensor.dtype, tensor.shape) != (spec.name, spec.dtype, tuple(spec.shape)):
                raise SafetensorsFormatError(f"{path}: tensor {tensor.name!r} does not match its announced spec")
            array = np.asarray(tensor.array, order="C")
            handle.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")
            count += 1
        if count != len(specs):
            raise SafetensorsFormatError(f"{path}: {len(specs) - count} announced tensor(s) never arrived")
    return count


def _check_no_overlap(entries: dict[str, tuple[str, tuple[int, ...], int, int]]) -> None:
    """Two tensors may not share bytes (the reference reader refuses that too)."""
    spans = sorted((begin, end, name) for name, (_, _, begin, end) in entries.items() if end > begin)
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise ValueError(f"tensors {first!r} and {second!r} overlap in the data section")


class SafetensorsReader:
    """Reads a .safetensors file; tensors are read-only views of the memory-mapped file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise SafetensorsFormatError(f"{self.path}: cannot read ({exc.strerror})") from None
        size = self.path.stat().st_size
        try:
            if size < 8:
                raise ValueError("shorter than its header length")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            (header_len,) = struct.unpack("<Q", self._map[:8])
            if header_len > min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header length {header_len} does not fit the file")
            try:
                header = json.loads(self._map[8 : 8 + header_len])
            except RecursionError:
                raise ValueError("its header nests too deeply to be a tensor table") from None
            if not isinstance(header, dict):
                raise ValueError(f"its header is a JSON {type(header).__name__}, not an object of tensors")
            self._data_start = 8 + header_len
            self.metadata = header.pop("__metadata__", None) or {}
            if not isinstance(self.metadata, dict):
                raise ValueError("its __metadata__ is not an object")
            self._entries = {name: self._entry(name, info, size - self._data_start) for name, info in header.items()}
            _check_no_overlap(self._entries)
        except (ValueError, KeyError, TypeError) as exc:
            self._file.close()
            raise SafetensorsFormatError(f"{self.path}: not a safetensors file ({exc})") from None

    def _entry(self, name: str, info: dict, data_size: int) -> tuple[str, tuple[int, ...], int, int]:
        if not isinstance(info, dict):
            raise ValueError(f"tensor {name!r}: its entry is not an object")
        wire = WIRE_FROM_ST.get(info["dtype"])
        if wire is None:
            raise ValueError(f"tensor {name!r} has dtype {info['dtype']!r}, which msparity does not read")
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
        expected = int(np.prod(shape, dtype=np.int64)) * dtypes.numpy_dtype_from_wire(wire).itemsize
        if end - begin != expected or begin < 0 or end > data_size:
            raise ValueError(f"tensor {name!r}: offsets {begin}..{end} do not fit shape {list(shape)} of {wire}")
        return wire, shape, begin, end

    def specs(self) -> list[TensorSpec]:
        return [TensorSpec(name, wire, shape) for name, (wire, shape, _, _) in self._entries.items()]

    def read(self, name: str) -> NamedArray:
        if name not in self._entries:
            raise SafetensorsFormatError(f"{self.path}: no tensor {name!r}")
        wire, shape, begin, end = self._entries[name]
        raw = memoryview(self._map)[self._data_start + begin : self._data_start + end]
        return NamedArray(name, np.frombuffer(raw, dtype=dtypes.numpy_dtype_from_wire(wire)).reshape(shape), wire)

    def __iter__(self) -> Iterator[NamedArray]:
        for name in self._entries:
            yield self.read(name)

    def close(self) -> None:
        try:
            self._map.close()
        except BufferError:
            pass  # arrays handed out still view the map; it goes with the last of them
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
